"""Shared test settings."""

from __future__ import annotations

import pytest
import torch
from nbgrader_harness import ROOT, make_course


@pytest.fixture
def one_thread():
    """Tiny tensors: one thread is fastest, and does not thrash when a busy machine runs other jobs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Seconds each notebook test took in make test (two workers, one torch thread per process). pytest-xdist hands out
# the shared batches first (the biggest first), then single tests in collection order: the long notebooks go to the
# front of that order, so they start early and the thousands of short tests fill the gaps at the end, instead of a
# notebook starting last while the other worker sits idle.
NOTEBOOK_SECONDS = {"ch01b": 205, "ch02c": 170, "ch03b": 152, "ch02b": 135, "ch04b": 95, "ch02a": 90, "ch05b": 90,
                    "ch05a": 50, "ch01a": 27, "ch03a": 17, "ch04a": 16}


def pytest_collection_modifyitems(config, items):
    def order(item) -> float:
        if item.nodeid.startswith("tests/notebooks/test_notebooks.py::test_notebook_runs_in_quick_mode["):
            return -NOTEBOOK_SECONDS.get(item.callspec.id[:5], 60)
        return -1 if item.get_closest_marker("slow") else 0

    items.sort(key=order)  # stable: the rest keeps its order


@pytest.fixture(scope="session")
def released_course(tmp_path_factory):
    """Every assignment of solutions/ released once (``nbgrader generate_assignment``) into one temporary course.

    tests/notebooks/test_release.py compares its releases with assignments/, and tests/grading/test_autograder.py
    submits and grades in it: both modules are in the ``autograder`` xdist group, so one worker releases the six
    assignments once instead of twice (about 70 s of nbgrader runs).
    """
    assignments = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
    return make_course(tmp_path_factory.mktemp("released"), *assignments)
