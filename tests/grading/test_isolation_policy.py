"""The grader's isolation policy, without grading: no sandbox means no grading unless asked for by name, the
summary says so, the kernel's environment is an allowlist, and a student's links and special files are never read.

The torture suite (``test_grading_torture.py``) checks the same rules on a graded class.
"""

from __future__ import annotations

import os

import pytest

from course_lib.grading import files, grade_all, sandbox, summary
from course_lib.grading.pool import Outcome

NO_BWRAP = (False, "bwrap is not installed (apt-get install bubblewrap)")


@pytest.fixture
def no_sandbox(monkeypatch):
    monkeypatch.setattr(sandbox, "available", lambda: NO_BWRAP)
    monkeypatch.delenv("GRADER_SANDBOX", raising=False)
    return monkeypatch


@pytest.mark.parametrize("mode", [None, "auto", "require"])
def test_without_the_sandbox_grading_is_refused_unless_off_is_asked_for(no_sandbox, mode):
    if mode:
        no_sandbox.setenv("GRADER_SANDBOX", mode)
    with pytest.raises(RuntimeError, match="refusing to grade without the sandbox.*GRADER_SANDBOX=off"):
        sandbox.check()


def test_off_grades_unisolated_and_says_so(no_sandbox):
    no_sandbox.setenv("GRADER_SANDBOX", "off")
    assert sandbox.check().startswith(sandbox.UNISOLATED)


def test_a_self_learner_grades_their_own_work_unisolated_with_the_warning(no_sandbox):
    assert sandbox.check(own_work=True).startswith(sandbox.UNISOLATED)
    no_sandbox.setenv("GRADER_SANDBOX", "require")
    with pytest.raises(RuntimeError, match="refusing"):
        sandbox.check(own_work=True)


def test_make_grade_refuses_before_touching_the_course(no_sandbox, tmp_path, capsys):
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    (tmp_path / "solutions" / "a1").mkdir(parents=True)
    (tmp_path / "solutions" / "a1" / "a1.ipynb").write_text("{}")
    (tmp_path / "submitted" / "s1" / "a1").mkdir(parents=True)
    (tmp_path / "submitted" / "s1" / "a1" / "a1.ipynb").write_text("{}")
    assert grade_all.main(["--course-dir", str(tmp_path), "--no-progress"]) == 1
    assert "GRADER_SANDBOX=off" in capsys.readouterr().err
    assert not (tmp_path / "gradebook.db").exists() and not (tmp_path / "autograded").exists()


def test_the_summary_repeats_that_grading_was_not_isolated():
    table = summary.rows([Outcome("s1", "a1", "graded")], {("s1", "a1"): (1.0, 2.0, False)}, {"a1": 2.0})
    unisolated = summary.render(table, f"{sandbox.UNISOLATED} (GRADER_SANDBOX=off): ...").splitlines()
    assert sandbox.UNISOLATED in unisolated[0] and sandbox.UNISOLATED in unisolated[-1]
    assert sandbox.UNISOLATED not in summary.render(table, "bubblewrap sandbox")


def test_the_summary_says_which_points_are_graded_by_hand():
    table = summary.rows([Outcome("me", "a1", "graded")], {("me", "a1"): (19.0, 21.0, False)}, {"a1": 21.0})
    assert "a1: 2 of its 21 points are written answers, graded by hand" in summary.render(table, "", {"a1": 2.0})
    assert "graded by hand" not in summary.render(table, "", {})


def test_the_kernel_environment_is_an_allowlist():
    inherited = {"JUPYTERHUB_API_TOKEN": "secret", "AWS_SECRET_ACCESS_KEY": "secret", "PATH": "/home/me/bin",
                 "LANG": "C.UTF-8", "COURSE_MODE": "quick", "NBGRADER_EXECUTION": "autograde", "HOME": "/home/me"}
    env = sandbox.kernel_env(inherited, "/kernel/home")
    assert "secret" not in env.values()
    assert env["LANG"] == "C.UTF-8" and env["COURSE_MODE"] == "quick" and env["NBGRADER_EXECUTION"] == "autograde"
    assert env["HOME"] == "/kernel/home" and "/home/me" not in env["PATH"] and env["OMP_NUM_THREADS"] == "1"


@pytest.mark.parametrize("make", ["symlink", "hardlink", "fifo", "symlinked_folder"])
def test_a_student_file_is_read_only_if_it_is_a_plain_file_of_its_own(tmp_path, make):
    secret = tmp_path / "solution.ipynb"
    secret.write_text("SOLUTION")
    path = tmp_path / "student.ipynb"
    if make == "symlink":
        path.symlink_to(secret)
    elif make == "hardlink":
        os.link(secret, path)
    elif make == "fifo":
        os.mkfifo(path)  # opening it for reading would block a grader that follows it
    else:
        path.symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(files.NotRegular, match="symbolic link|hard link|fifo"):
        files.read_regular(path)
    copied = tmp_path / "copy"
    folder = tmp_path / "folder"
    folder.mkdir()
    os.rename(path, folder / path.name)
    (folder / "mine.txt").write_text("MINE")
    skipped = files.copy_regular_tree(folder, copied)
    assert [p.name for p in copied.iterdir()] == ["mine.txt"] and len(skipped) == 1, skipped
