"""Where the course lives. The repository URL is written here and nowhere else.

Notebook badges and Colab setup cells are generated from these constants by
``python -m course_lib.tools.sync_notebooks``; a test fails when a notebook
disagrees with them, so a fork changes one line and re-runs that command.

What a setup cell installs is :data:`PACKAGE_SPEC` unless the environment variable
:data:`SPEC_VARIABLE` (``COURSE_LIB_SPEC``) names another pip requirement: a fork, a branch, a wheel file.
``tests/packaging`` sets it to a freshly built wheel and runs the cell as Colab would.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

REPO_SLUG = "midl-course/medical-imaging-deep-learning"  # GitHub owner/name
REPO_URL = f"https://github.com/{REPO_SLUG}"
BRANCH = "main"

# The pip requirement the Colab setup cell installs. The ``samples`` extra brings the packages that ship real
# sample data (a chest DICOM, chest X-ray label tables, fluorescence nuclei).
PACKAGE_SPEC = f"course_lib[samples] @ git+{REPO_URL}@{BRANCH}"
SPEC_VARIABLE = "COURSE_LIB_SPEC"
COLAB_INSTALL = f"pip install --quiet '{PACKAGE_SPEC}'"  # the same as a shell command, for the README

# The notebooks' second cell, written by sync_notebooks. It cannot import course_lib (it installs it), so the
# override of PACKAGE_SPEC is spelled out here; package_spec() below is the same rule for Python callers.
SETUP_CELL = f"""\
# Setup: on Colab this installs course_lib; anywhere else it does nothing.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    # {SPEC_VARIABLE}, when set, says what to install instead: a fork, a branch, a wheel file.
    spec = os.environ.get("{SPEC_VARIABLE}") or "{PACKAGE_SPEC}"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", spec], check=True)  # colab-install"""


def package_spec(environ: Mapping[str, str] | None = None) -> str:
    """The pip requirement a setup cell installs: ``COURSE_LIB_SPEC`` when set and not empty, else :data:`PACKAGE_SPEC`.

    Parameters
    ----------
    environ : mapping of str to str, optional
        The environment to read (default ``os.environ``).

    Examples
    --------
    >>> package_spec({"COURSE_LIB_SPEC": "/tmp/course_lib-0.1.0-py3-none-any.whl"})
    '/tmp/course_lib-0.1.0-py3-none-any.whl'
    >>> package_spec({}) == PACKAGE_SPEC
    True
    """
    environ = os.environ if environ is None else environ
    return environ.get(SPEC_VARIABLE) or PACKAGE_SPEC


def colab_badge(notebook_path: str) -> str:
    """Markdown for an "Open in Colab" badge of a notebook in this repository.

    Parameters
    ----------
    notebook_path : str
        Path relative to the repository root, e.g. ``"notebooks/ch02_segmentation_metrics.ipynb"``.
    """
    url = f"https://colab.research.google.com/github/{REPO_SLUG}/blob/{BRANCH}/{notebook_path}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"
