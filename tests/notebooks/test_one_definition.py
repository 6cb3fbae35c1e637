"""One definition per idea: each assignment's reference solution and course_lib compute the same thing.

The reference solutions are executed from ``solutions/`` (the ``imports`` cell, then every solution cell) and run
side by side with the library function of the same idea on the same inputs: CycleGAN's step with and without the
identity term (and the default the chapter trains with), the losses it uses, the erased / hallucinated rates, and
chapter 5's gradient reversal, RRR, GradMask and ActDiff (the outside of the ROI filled from the next image).
"""

from __future__ import annotations

import copy
import inspect
import re
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest
import torch
from nbgrader_harness import ROOT
from torch import nn

from course_lib.confounders import actdiff, gradient_reversal, gradmask, rrr
from course_lib.confounders.models import MLP
from course_lib.tools.cell_names import defined_names
from course_lib.tools.exercises import find_exercises
from course_lib.translation import bias, cyclegan, experiment, losses


def solution_namespace(assignment: str) -> dict:
    """The names the assignment's reference solution defines: its ``imports`` cell, then its solution cells."""
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    namespace: dict = {"__name__": f"solution_{assignment}"}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and (meta.get("grade_id") == "imports"
                                         or (meta.get("solution") and not meta.get("grade"))):
            exec(compile(cell.source, f"{assignment}:{meta['grade_id']}", "exec"), namespace)
    return namespace


@pytest.fixture
def ch04(one_thread):
    return solution_namespace("ch04_cyclegan")


@pytest.fixture
def ch05(one_thread):
    return solution_namespace("ch05_right_reasons")


def _four_nets(ns: dict, seed: int) -> list[nn.Module]:
    torch.manual_seed(seed)
    return [ns["small_generator"](), ns["small_generator"](), ns["small_discriminator"](), ns["small_discriminator"]()]


def _optimisers(nets: list[nn.Module]) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    return (torch.optim.SGD([*nets[0].parameters(), *nets[1].parameters()], lr=0.05),
            torch.optim.SGD([*nets[2].parameters(), *nets[3].parameters()], lr=0.05))


@pytest.mark.parametrize("lambda_cycle, lambda_identity", [(10.0, 0.0), (10.0, 0.5), (5.0, 0.3)])
def test_ch04_step_is_the_course_step(ch04, lambda_cycle, lambda_identity):
    mine = _four_nets(ch04, seed=7)
    course = copy.deepcopy(mine)
    gen = torch.Generator().manual_seed(8)
    real_f, real_t = torch.rand(3, 1, 16, 16, generator=gen) * 2 - 1, torch.rand(3, 1, 16, 16, generator=gen) * 2 - 1
    got = ch04["cyclegan_training_step"](*mine, *_optimisers(mine), real_f, real_t, lambda_cycle=lambda_cycle,
                                         lambda_identity=lambda_identity)
    want = cyclegan.cyclegan_step(SimpleNamespace(g=course[0], h=course[1], d_t=course[2], d_f=course[3]),
                                  *_optimisers(course), real_f, real_t, lambda_cycle=lambda_cycle,
                                  lambda_identity=lambda_identity)
    pairs = {"gan": "gan", "cycle": "cycle", "generator": "g_total", "discriminator": "d"}
    if lambda_identity > 0:  # the course skips the term (and reports 0.0) when its weight is 0
        pairs["identity"] = "identity"
    for name, course_name in pairs.items():
        assert got[name] == pytest.approx(want[course_name], rel=1e-5, abs=1e-6), (name, got, want)
    for net_mine, net_course in zip(mine, course, strict=True):
        for p, q in zip(net_mine.parameters(), net_course.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_ch04_step_defaults_are_the_chapter_settings(ch04):
    params = inspect.signature(ch04["cyclegan_training_step"]).parameters
    assert params["lambda_cycle"].default == losses.LAMBDA_CYCLE
    # the chapter translates FLAIR -> T1 without the identity term (FLAIR and T1 invert intensities), in both modes
    chapter = {experiment.QUICK.translator.lambda_identity, experiment.FULL.translator.lambda_identity}
    assert chapter == {params["lambda_identity"].default} == {0.0}


def test_ch04_losses_and_rates_are_the_course_ones(ch04):
    gen = torch.Generator().manual_seed(3)
    real, fake = torch.randn(2, 1, 5, 5, generator=gen), torch.randn(2, 1, 5, 5, generator=gen)
    torch.testing.assert_close(ch04["lsgan_discriminator_loss"](real, fake),
                               losses.lsgan_discriminator_loss(real, fake))
    torch.testing.assert_close(ch04["lsgan_generator_loss"](fake), losses.lsgan_generator_loss(fake))
    torch.manual_seed(4)
    g, h = nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1)
    f, t = torch.rand(3, 1, 8, 8, generator=gen), torch.rand(3, 1, 8, 8, generator=gen)
    torch.testing.assert_close(ch04["cycle_consistency_loss"](g, h, f, t),
                               losses.cycle_consistency_loss(h(g(f)), f) + losses.cycle_consistency_loss(g(h(t)), t))
    rng = np.random.default_rng(5)
    for truth in (rng.random(40) < 0.3, np.zeros(5, bool), np.ones(5, bool)):
        called = rng.random(len(truth)) < 0.5
        mine, course = ch04["bias_rates"](called, truth), bias.bias_rates(called, truth)
        np.testing.assert_allclose(mine, (course.erased, course.hallucinated))


class _Split(nn.Module):
    """features (B, C, H, W) -> (B, 5) and head (B, 5) -> (B, 2), no normalisation layer."""

    def __init__(self, channels: int):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(channels, 3, 3, padding=1), nn.Tanh(), nn.Flatten(),
                                      nn.Linear(3 * 36, 5), nn.Tanh())
        self.head = nn.Linear(5, 2)

    def forward(self, x):
        return self.head(self.features(x))


@pytest.mark.parametrize("batch, channels", [(4, 1), (3, 2), (1, 1)])
def test_ch05_actdiff_fills_the_outside_as_the_course_does(ch05, batch, channels):
    torch.manual_seed(batch)
    model = _Split(channels)
    x, y = torch.rand(batch, channels, 6, 6), torch.randint(0, 2, (batch,))
    roi = torch.rand(batch, 1, 6, 6) > 0.4
    total, penalty = ch05["actdiff_loss"](model, x, y, roi, 0.7)
    want_total, _, want_penalty = actdiff.actdiff_loss(model, x, y, roi, 0.7)  # the course's default fill
    torch.testing.assert_close(penalty, want_penalty)
    torch.testing.assert_close(total, want_total)
    blanked = actdiff.actdiff_loss(model, x, y, roi, 0.7, fill="zeros")[2]
    assert batch == 1 or not torch.isclose(penalty, blanked), "the assignment blanks the outside, the course does not"


def test_ch05_gradient_penalties_and_reversal_are_the_course_ones(ch05):
    torch.manual_seed(0)
    model = MLP(36, 2, hidden=8)
    x, y, roi = torch.rand(5, 1, 6, 6), torch.tensor([0, 1, 1, 0, 1]), torch.rand(5, 1, 6, 6) > 0.5
    for mine, course in ((ch05["rrr_loss"], rrr.rrr_loss), (ch05["gradmask_loss"], gradmask.gradmask_loss)):
        total, penalty = mine(model, x, y, roi, 3.0)
        want_total, _, want_penalty = course(model, x, y, roi, 3.0)
        torch.testing.assert_close(penalty, want_penalty)
        torch.testing.assert_close(total, want_total)
    features = torch.rand(4, 3, requires_grad=True)
    (ch05["grad_reverse"](features, 0.4) ** 2).sum().backward()
    mine_grad, features.grad = features.grad, None
    (gradient_reversal.grad_reverse(features, 0.4) ** 2).sum().backward()
    torch.testing.assert_close(mine_grad, features.grad)
    for progress in (0.0, 0.1, 0.5, 1.0):
        assert ch05["lambda_schedule"](progress, 2.0) == pytest.approx(gradient_reversal.lambda_schedule(progress, 2.0))


# --- a notebook exercise and an assignment question do not ask the same thing twice -----------------------------
# Names are compared word by word, after spelling out abbreviations and dropping words that name no idea. Any shared
# word flags the pair; a flagged pair passes only when it is listed here with what makes the two questions
# different. A listed pair that no longer shares a word fails too, so the list stays the list of real neighbours.
_SPELLED_OUT = {"d": "discriminator", "g": "generator", "counts": "count", "discriminators": "discriminator",
                "probabilities": "probability", "cells": "cell", "thresholds": "threshold"}
_NO_IDEA = {"my", "from", "of", "to", "per", "with", "by", "in", "on", "at", "the", "a", "loss", "one", "step",
            "train", "training", "epoch", "image", "score", "target", "probability"}
DIFFERENT_QUESTIONS = {
    ("reader_f1", "f1_score"): "ch01b asks for the leave-one-out majority reference; the F1 itself is given",
    ("reader_f1", "bootstrap_f1_ci"): "ch01b scores one reader on the full set; the assignment resamples patients",
    ("measured_receptive_field", "receptive_field"): "ch02a measures it with a gradient probe on a built network; "
                                                     "the assignment computes it from the layer list",
    ("balanced_sampler", "balanced_accuracy"): "a sampler's class weights versus a metric: different ideas",
    ("multiclass_soft_dice_loss", "soft_dice_loss"): "softmax over C classes with one-hot targets and a per-class "
                                                     "mean; the assignment's is the binary sigmoid loss",
    ("multiclass_soft_dice_loss", "dice"): "a differentiable loss over softmax outputs versus the metric on masks",
    ("multiclass_soft_dice_loss", "mean_dice"): "a differentiable loss versus a data set's mean of the metric",
    ("multiclass_soft_dice_loss", "heldout_dice"): "a differentiable loss versus scoring a trained net's test masks",
    ("count_components", "count_from_density"): "ch03a counts the connected components of a mask; the assignment "
                                                "sums a density map",
    ("redundant_count_target", "count_from_density"): "building a target from dots versus summing a prediction",
    ("update_discriminators", "lsgan_discriminator_loss"): "ch04a uses the loss (given) inside the update with "
                                                           "history pools; the assignment asks for the loss",
}


def _idea_words(name: str) -> set[str]:
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name).lower().split("_")
    return {_SPELLED_OUT.get(w, w) for w in words if w} - _NO_IDEA


def _notebook_exercise_names() -> dict[str, str]:
    names = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for exercise in find_exercises(nbformat.read(path, as_version=4), path.name):
            names |= {n: path.stem for n in exercise.names if not n.isupper()}
    return names


def _assignment_question_names() -> dict[str, str]:
    names = {}
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("solution") and not meta.get("grade"):
                names |= {n: path.stem for n in defined_names(cell.source) if not n.startswith("_")}
    return names


def test_idea_words_flag_the_overlaps_this_test_exists_for():
    # the duplicates once found by reading: each pair shares a word once abbreviations are spelled out
    for notebook_name, assignment_name in [("lsgan_d_loss", "lsgan_discriminator_loss"),
                                           ("cycle_loss", "cycle_consistency_loss"),
                                           ("dice_from_counts", "dice"), ("counts_from_output", "count_from_density")]:
        assert _idea_words(notebook_name) & _idea_words(assignment_name), (notebook_name, assignment_name)


def test_no_notebook_exercise_asks_an_assignment_question_again():
    notebook, assignment = _notebook_exercise_names(), _assignment_question_names()
    assert len(notebook) >= 33 and len(assignment) >= 25, (len(notebook), len(assignment))
    flagged = {(n, a) for n in notebook for a in assignment if _idea_words(n) & _idea_words(a)}
    unexplained = sorted(flagged - set(DIFFERENT_QUESTIONS))
    assert not unexplained, (
        "a notebook exercise shares an idea word with an assignment question: make one of them worked code, or add "
        "the pair to DIFFERENT_QUESTIONS with what makes the questions different: "
        + "; ".join(f"{notebook[n]}:{n} vs {assignment[a]}:{a}" for n, a in unexplained))
    stale = sorted(set(DIFFERENT_QUESTIONS) - flagged)
    assert not stale, f"DIFFERENT_QUESTIONS lists pairs that no longer share a word (or no longer exist): {stale}"
