"""Where the course lives. The repository URL is written here and nowhere else.

Notebook badges and Colab install cells are generated from these constants by
``python -m course_lib.tools.sync_notebooks``; a test fails when a notebook
disagrees with them, so a fork changes one line and re-runs that command.
"""

REPO_SLUG = "midl-course/medical-imaging-deep-learning"  # GitHub owner/name
REPO_URL = f"https://github.com/{REPO_SLUG}"
BRANCH = "main"

# What the Colab setup cell runs; a no-op everywhere else. The ``samples`` extra brings the packages that
# ship real sample data (a chest DICOM, chest X-ray label tables, fluorescence nuclei).
COLAB_INSTALL = f"pip install --quiet 'course_lib[samples] @ git+{REPO_URL}@{BRANCH}'"


def colab_badge(notebook_path: str) -> str:
    """Markdown for an "Open in Colab" badge of a notebook in this repository.

    Parameters
    ----------
    notebook_path : str
        Path relative to the repository root, e.g. ``"notebooks/ch02_segmentation_metrics.ipynb"``.
    """
    url = f"https://colab.research.google.com/github/{REPO_SLUG}/blob/{BRANCH}/{notebook_path}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"
