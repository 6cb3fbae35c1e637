"""Parallel, isolated autograding of a class (``make grade``).

Modules:

* :mod:`.sandbox`   -- runs each student kernel inside bubblewrap with a memory limit;
* :mod:`.execute`   -- nbgrader preprocessors: a per-notebook time budget, the integrity checks
  around graded test cells, and feedback scrubbed of hidden tests;
* :mod:`.intake`    -- reads, validates and repairs submitted notebooks before grading;
* :mod:`.gradebook` -- registers assignments and merges per-worker gradebooks into the course's;
* :mod:`.worker`    -- a worker process that autogrades one submission at a time in its own course copy;
* :mod:`.pool`      -- schedules submissions over N workers with a time limit per submission;
* :mod:`.summary`   -- the summary table and the list of submissions that could not be graded.
"""
