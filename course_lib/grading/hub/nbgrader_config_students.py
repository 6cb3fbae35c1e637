"""nbgrader configuration for every student's server on a JupyterHub that runs this course.

Install it once as ``/etc/jupyter/nbgrader_config.py`` on the machine (or in the image) that runs the
single-user servers; students then need no course folder and no configuration of their own. The course
folder's own ``nbgrader_config.py`` (the instructor's) is read after this file and wins where both set
a value. README, "Deploying on JupyterHub", says where each piece goes; the round-trip test
(tests/grading/test_jupyterhub_roundtrip.py) uses exactly this file.

Environment variables:
    NBGRADER_EXCHANGE   the shared exchange (default /srv/nbgrader/exchange); the course folder's
                        config reads the same variable, so one setting serves instructors and students.
    JUPYTERHUB_USER     set by JupyterHub in every single-user server: the student's hub name.
"""

import os

c = get_config()  # noqa: F821 — injected by traitlets when nbgrader loads this file

c.CourseDirectory.course_id = "medical-imaging-dl"
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE", "/srv/nbgrader/exchange")
# Fetched assignments land in ~/medical-imaging-dl/<assignment>/, apart from any other course.
c.Exchange.path_includes_course = True
# Submissions are named after the hub user, not the Unix user: container spawners run every student as
# "jovyan", and a hub may map its user names to other Unix names. The instructor's course config resets
# this to "*" (all students) for collecting and grading.
if os.environ.get("JUPYTERHUB_USER"):
    c.CourseDirectory.student_id = os.environ["JUPYTERHUB_USER"]
