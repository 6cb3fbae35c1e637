"""The grading guard: calling the course's reference, directly, aliased or wrapped, is caught."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.metrics import dice as reference_dice
from course_lib.tools.guard import assert_own_work, reference_calls

MASK = np.array([[1, 0], [1, 1]], dtype=bool)  # (2, 2): 3 foreground pixels


def own_dice(pred, target):
    # 2|A∩B| / (|A| + |B|), written out: identical masks give 2*3 / (3+3) = 1
    return 2 * np.sum(pred & target) / (np.sum(pred) + np.sum(target))


def wrapped_dice(pred, target):
    return float(reference_dice(pred, target))


aliased_dice = reference_dice


def test_own_work_passes_and_returns_the_result():
    assert assert_own_work(own_dice, MASK, MASK, forbidden=("course_lib.metrics",)) == 1.0


@pytest.mark.parametrize("student", [wrapped_dice, aliased_dice], ids=["wrapped", "aliased"])
def test_calling_the_reference_fails_naming_it(student):
    with pytest.raises(AssertionError, match=r"calls the course's reference implementation \(course_lib\.metrics"):
        assert_own_work(student, MASK, MASK, forbidden="course_lib.metrics")


def test_allowed_modules_stay_usable():
    # numpy is not forbidden: a student may use it freely
    _, called = reference_calls(own_dice, MASK, MASK, forbidden="course_lib.metrics")
    assert called == []


def test_profiler_is_restored_even_when_the_student_raises():
    import sys

    def broken(*_):
        raise RuntimeError("student bug")

    with pytest.raises(RuntimeError, match="student bug"):
        assert_own_work(broken, forbidden="course_lib")
    assert sys.getprofile() is None


@pytest.mark.parametrize("forbidden", [(), [""], None])
def test_empty_forbidden_is_rejected(forbidden):
    with pytest.raises((ValueError, TypeError), match="forbidden"):
        reference_calls(own_dice, MASK, MASK, forbidden=forbidden)


def test_fn_must_be_callable():
    with pytest.raises(TypeError, match="`fn` must be callable"):
        reference_calls(42, forbidden="course_lib")
