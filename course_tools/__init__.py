"""Teacher tooling (grading, release checks). Notebooks never import this package."""
