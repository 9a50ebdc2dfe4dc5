"""Self-checks of the lecture notebooks' ungraded exercises: each runs the
student's code (a function, or a ``%%writefile`` module) in real child processes
and says in plain words what is still wrong, or that it is right. They never
raise on a wrong answer (the committed notebooks keep the starter code and still
run top to bottom), and they stop every process they start.

- :mod:`helpers.exercises.review` — lecture 00 (the traffic light);
- :mod:`helpers.exercises.producer_consumer` — lecture 01 (sentinels, a polling
  consumer, ``task_done``);
- :mod:`helpers.exercises.pipes` — lecture 02 (a square server, reading until EOF);
- :mod:`helpers.exercises.shared_state` — lecture 03 (a counter that loses nothing).

Lectures 04–06 check their exercises in the notebook itself (the check is short
and needs no process of its own). The homework checks are a different package:
:mod:`hwcheck`.
"""
