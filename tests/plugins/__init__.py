"""pytest plugins of the course's test suite (loaded by the root conftest.py):
``start_methods`` (--start-methods) and ``leftovers`` (no process or shared-memory
segment outlives a test file)."""
