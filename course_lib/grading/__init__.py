"""The course's grader (``make grade``, ``make grade-me``): parallel, isolated autograding of a class.

For instructors only: it needs the ``grading`` extra (``pip install .[grading]``: nbgrader, JupyterHub, nh3),
which a student's ``pip install .`` does not install. Student kernels import only ``course_lib.tools.guard``.

Modules:

* :mod:`.grade_all` -- the command line (``python -m course_lib.grading``): what to grade, the summary;
* :mod:`.sandbox`   -- runs each student kernel inside bubblewrap with a memory limit;
* :mod:`.execute`   -- nbgrader's Execute with a per-notebook time budget and the integrity checks
  around graded test cells;
* :mod:`.feedback`  -- what the student reads back: hidden tests scrubbed;
* :mod:`.intake`    -- reads, validates and repairs submitted notebooks before grading;
* :mod:`.gradebook` -- registers assignments and merges per-worker gradebooks into the course's;
* :mod:`.worker`    -- a worker process that autogrades one submission at a time in its own course copy;
* :mod:`.pool`      -- schedules submissions over N workers with a time limit per submission;
* :mod:`.summary`   -- the summary table and the list of submissions that could not be graded;
* ``hub/``          -- the students' nbgrader config on JupyterHub and the hub's proxy (npm).
"""
