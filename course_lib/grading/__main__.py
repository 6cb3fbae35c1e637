"""``python -m course_lib.grading``: the same as ``python -m course_lib.grading.grade_all``."""

import sys

from course_lib.grading.grade_all import main

if __name__ == "__main__":
    sys.exit(main())
