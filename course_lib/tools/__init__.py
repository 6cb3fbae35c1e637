"""Command-line tools of the course (run with ``python -m course_lib.tools.<name>``)."""
