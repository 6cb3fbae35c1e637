"""`make test` relies on pytest-xdist's ``--dist loadgroup``: every test of an ``xdist_group`` runs on one worker,
so a module fixture that grades a whole batch (the autograder, the torture suite) is built once. With pytest 9 and
xdist 3.8 the group mark is silently ignored and both workers build the batch; this test catches that."""

from __future__ import annotations

import subprocess
import sys

GROUPED = '''
import os, pathlib, pytest
pytestmark = pytest.mark.xdist_group("shared_batch")

@pytest.fixture(scope="module")
def batch():
    pathlib.Path(os.environ["MARKS"], os.environ.get("PYTEST_XDIST_WORKER", "main")).touch()

@pytest.mark.parametrize("case", range(24))
def test_case(batch, case):
    pass
'''
LOOSE = '''
import time, pytest

@pytest.mark.parametrize("case", range(24))
def test_other(case):
    time.sleep(0.02)
'''


def test_a_group_runs_on_one_worker(tmp_path):
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    (tmp_path / "test_loose.py").write_text(LOOSE)
    marks = tmp_path / "marks"
    marks.mkdir()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup", "-p",
                             "no:cacheprovider", "--rootdir", str(tmp_path), "-c", "/dev/null", str(tmp_path)],
                            cwd=tmp_path, env={"MARKS": str(marks), "PATH": ""}, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    workers = sorted(p.name for p in marks.iterdir())
    assert len(workers) == 1, f"the group's module fixture ran on {workers}: --dist loadgroup ignored the group"
