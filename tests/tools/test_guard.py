"""The grading guard: calling the course's reference, directly, aliased or wrapped, is caught."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.metrics import dice as reference_dice
from course_lib.tools.guard import assert_own_work, plain, reference_calls

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


# ---- what the watch cannot see fails too (issue 19: calling the reference unseen) -----------------------------
def _in_thread(pred, target):
    import threading

    out = {}
    worker = threading.Thread(target=lambda: out.setdefault("v", reference_dice(pred, target)))
    worker.start()
    worker.join()
    return out["v"]


def _in_executor(pred, target):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(reference_dice, pred, target).result()


def _in_raw_thread(pred, target):
    import _thread
    import time

    out = []
    _thread.start_new_thread(lambda: out.append(reference_dice(pred, target)), ())
    while not out:
        time.sleep(0.001)
    return out[0]


def _hook_switched_off(pred, target):
    import sys

    hook = sys.getprofile()
    sys.setprofile(None)
    try:
        return reference_dice(pred, target)
    finally:
        sys.setprofile(hook)


@pytest.mark.parametrize("student, reason", [
    # threads started with threading are watched as well (threading.setprofile), a raw _thread one is refused
    (_in_thread, "calls the course's reference"), (_in_executor, "calls the course's reference"),
    (_in_raw_thread, "started a thread"),
    (_hook_switched_off, r"switched off the guard \(sys.setprofile\)")], ids=["thread", "executor", "_thread", "off"])
def test_calling_the_reference_where_the_guard_cannot_see_fails(student, reason):
    with pytest.raises(AssertionError, match=reason):
        assert_own_work(student, MASK, MASK, forbidden="course_lib.metrics")


def test_a_thread_of_the_notebook_alive_before_the_test_fails_it():
    import threading

    trigger, out = threading.Event(), []
    waiting = threading.Thread(target=lambda: trigger.wait() and out.append(reference_dice(MASK, MASK)))
    waiting.start()
    try:
        with pytest.raises(AssertionError, match="another thread of the notebook's was alive"):
            assert_own_work(lambda: trigger.set() or 1.0, forbidden="course_lib.metrics")
    finally:
        trigger.set()
        waiting.join()
    assert assert_own_work(own_dice, MASK, MASK, forbidden="course_lib.metrics") == 1.0


# ---- answers that lie fail: only plain values reach the comparisons ------------------------------------------
class AlwaysEqual:
    def __eq__(self, other):
        return True

    def __array_function__(self, func, types, args, kwargs):
        return True


class LyingFloat(float):
    def __eq__(self, other):
        return True

    def item(self):
        return self


def _lying_tensor():
    import torch

    class Lying(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return True

    return torch.zeros(3).as_subclass(Lying)


@pytest.mark.parametrize("answer, named", [
    (AlwaysEqual(), "AlwaysEqual"), (LyingFloat(0.0), "LyingFloat"), ((1.0, [AlwaysEqual()]), "AlwaysEqual"),
    (np.array([AlwaysEqual()], dtype=object), "dtype object")], ids=["array_function", "float", "nested", "object"])
def test_an_answer_that_is_not_plain_fails_naming_its_type(answer, named):
    with pytest.raises(AssertionError, match=f"not a plain value: it holds .*{named}"):
        assert_own_work(lambda: answer, forbidden="course_lib.metrics")


def test_a_tensor_subclass_with_torch_function_fails():
    import torch

    lying = _lying_tensor()
    assert torch.allclose(lying, torch.ones(3)) is True  # what it would do to a test
    with pytest.raises(AssertionError, match="Lying"):
        plain(lying)


def test_plain_values_pass_unchanged():
    import torch

    value = {"loss": torch.zeros(()), "curve": [np.float32(1.0), np.arange(3)], "n": (2, None, True),
             "layer": torch.nn.Conv2d(1, 1, 3)}
    assert plain(value) is value
    hooked = torch.nn.Linear(2, 2)
    hooked.register_forward_hook(lambda *a: torch.ones(2))
    with pytest.raises(AssertionError, match="hooks"):
        plain(hooked)


def test_tqdm_monitor_of_a_course_training_bar_is_not_a_foreign_thread():
    from tqdm import tqdm
    from tqdm._monitor import TMonitor

    from course_lib.tools.guard import foreign_threads

    class StudentBar(tqdm):  # a student's own bar class: its monitor would call the student's methods
        pass

    course_monitor, student_monitor = TMonitor(tqdm, 60), TMonitor(StudentBar, 60)
    try:
        names = foreign_threads()
        # both are named "tqdm_monitor": only the student's class's monitor is listed
        assert names.count(student_monitor.name) == 1
    finally:
        course_monitor.exit(), student_monitor.exit()
