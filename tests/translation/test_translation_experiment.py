"""The bias sweep's plumbing on a tiny budget (not its result: that is the notebook's), settings, and figures."""

from __future__ import annotations

import dataclasses

import matplotlib
import numpy as np
import pytest

from course_lib.translation.cyclegan import TranslatorConfig
from course_lib.translation.experiment import (
    FULL,
    QUICK,
    BiasSweep,
    BiasSweepSettings,
    run_bias_sweep,
    settings,
    summarise,
)
from course_lib.translation.figures import plot_bias_curves, translation_grid
from course_lib.translation.synthetic_brain import brain_slices

matplotlib.use("Agg")

TINY = BiasSweepSettings(fractions=(0.0, 1.0), seeds=(0, 1), image_size=16, n_source=8, n_target=8,
                         n_classifier_train=16, n_classifier_val=8, n_test=8, n_val=8, classifier_epochs=1,
                         translator=TranslatorConfig(width=2, n_blocks=0, d_width=2, steps=2, batch_size=2),
                         n_examples=4)


@pytest.fixture(scope="module")
def tiny_parts():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    sweep = BiasSweep(TINY)
    for fraction in TINY.fractions:
        for method in ("paired", "cyclegan"):
            sweep.run(method, fraction, progress=False)
    yield sweep
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_sweep(tiny_parts):
    return tiny_parts.result()


def test_run_bias_sweep_is_the_parts_in_order(tiny_sweep):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        whole = run_bias_sweep(TINY, progress=False)
    finally:
        torch.set_num_threads(threads)
    columns = ["method", "fraction", "seed", "erased", "hallucinated", "referee_erased", "referee_hallucinated",
               "image_error"]
    assert whole.runs[columns].equals(tiny_sweep.runs[columns])


def test_one_referee_per_seed_calibrated_on_the_faithful_translator(tiny_parts, tiny_sweep):
    from course_lib.translation.classifier import threshold_at_false_positive_rate, tumour_scores
    from course_lib.translation.cyclegan import translate

    table = tiny_sweep.referees
    assert list(table.seed) == list(TINY.seeds)
    first, second = (tiny_parts.referees[seed].model.head.weight.detach().numpy() for seed in TINY.seeds[:2])
    assert not np.allclose(first, second), "referee seed = translator seed: the referees differ"
    val = tiny_parts.pools["val"]
    for row in table.itertuples():
        generator = tiny_parts._faithful[row.seed][0]
        scores = tumour_scores(tiny_parts.referees[row.seed].model, translate(generator, val.flair))
        healthy = scores[~val.tumour]
        assert row.threshold == tiny_parts.referees[row.seed].threshold
        assert row.threshold == threshold_at_false_positive_rate(healthy, TINY.referee_false_positive_rate), (
            "the threshold comes from the faithful translator's healthy validation translations")
        assert (healthy > row.threshold).mean() == row.faithful_val_hallucinated <= TINY.referee_false_positive_rate


def test_the_faithful_control_is_the_paired_translator_at_the_source_share(tiny_parts):
    from course_lib.translation.cyclegan import translate

    flair = tiny_parts.pools["val"].flair
    cached = translate(tiny_parts._faithful[TINY.seeds[0]][0], flair)
    fresh = translate(tiny_parts._train("paired", TINY.source_fraction, TINY.seeds[0])[0], flair)
    np.testing.assert_array_equal(cached, fresh)


def test_one_row_per_translator_plus_the_referees_on_real_t1(tiny_sweep):
    runs = tiny_sweep.runs
    assert sorted(runs[runs.method == "real_t1"].seed) == sorted(TINY.seeds), "each referee reads the real T1"
    # both methods at every fraction: 2 fractions x 2 seeds each
    assert len(runs[runs.method == "cyclegan"]) == 4 and len(runs[runs.method == "paired"]) == 4
    assert set(runs[runs.method == "paired"].fraction) == {0.0, 1.0}, "the paired control at every target share"
    shares = ["erased", "hallucinated", "referee_erased", "referee_hallucinated"]
    assert runs[runs.method != "real_t1"][shares].apply(lambda v: v.between(0, 1)).all().all()
    real = runs[runs.method == "real_t1"]
    assert (real.tumour_error == 0).all() and (real.image_error == 0).all(), "the real T1 is its own truth"
    assert (real.erased == 0).all() and (real.hallucinated == 0).all() and (real.recovered == 1).all(), (
        "the truth measure's control")


def test_truth_thresholds_come_from_the_validation_subjects():
    from course_lib.translation.experiment import synthetic_pools

    pools = synthetic_pools(TINY)
    assert len(pools["val"]) == TINY.n_val
    seeds = {p.flair[0].tobytes() for p in pools.values()}
    assert len(seeds) == len(pools), "validation, test and training pools are different subjects"


def test_synthetic_pools_by_role_are_the_same_slices_and_refuse_unknown_roles():
    from course_lib.translation.experiment import synthetic_pools

    some = synthetic_pools(TINY, roles=("source", "val"))
    assert set(some) == {"source", "val"}, "only the roles asked for (a choice on validation never draws the test)"
    everything = synthetic_pools(TINY)
    np.testing.assert_array_equal(some["val"].flair, everything["val"].flair)
    with pytest.raises(ValueError, match="unknown roles"):
        synthetic_pools(TINY, roles=("val", "tset"))


def test_examples_hold_every_translator_of_the_first_seed(tiny_sweep):
    ex = tiny_sweep.examples
    assert ex["flair"].shape == ex["t1"].shape == ex["mask"].shape == (4, 16, 16)
    assert ex["tumour"].sum() == 2, "half tumour, half healthy examples"
    assert set(ex["translations"]) == {("paired", 0.0), ("paired", 1.0), ("cyclegan", 0.0), ("cyclegan", 1.0)}


def test_summary_and_figures(tiny_sweep):
    table = summarise(tiny_sweep.runs)
    assert set(table.method) == {"real_t1", "paired", "cyclegan"}
    assert (table.n_seeds == 2).all(), "every arm and the real T1 (one referee per seed) over both seeds"
    assert plot_bias_curves(table) is not None
    fig = translation_grid(tiny_sweep.examples, TINY.fractions)
    assert len(fig.axes) == 4 * 4  # rows: FLAIR, 0 %, 100 %, T1; 4 examples


def test_sweep_on_real_slices_splits_by_subject():
    # "real" slices: 30 subjects with 4 slices each (half of the subjects with tumours in every slice)
    base = brain_slices(120, 0.5, config=dataclasses.replace(TINY.brain, size=16), seed=3)
    real = dataclasses.replace(base, subject=np.repeat(np.arange(30), 4))
    from course_lib.translation.experiment import _pools_from_real

    pools = _pools_from_real(real, TINY)
    subjects = [set(p.subject) for p in pools.values()]
    assert sum(len(s) for s in subjects) == 30 and len(set.union(*subjects)) == 30, "every subject in one role only"


def test_settings_follow_the_mode(monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "quick")
    assert settings() is QUICK
    monkeypatch.setenv("COURSE_MODE", "full")
    assert settings() is FULL
    assert QUICK.fractions == (0.0, 0.5, 1.0) and len(QUICK.seeds) >= 3
    assert FULL.fractions == tuple(round(0.1 * k, 1) for k in range(11))
    with pytest.raises(dataclasses.FrozenInstanceError):
        QUICK.image_size = 64


def test_sweep_parts_refuse_an_unknown_method():
    sweep = BiasSweep.__new__(BiasSweep)  # no data needed to check the argument
    with pytest.raises(ValueError, match="`method` must be 'cyclegan' or 'paired', got 'pix2pix'"):
        sweep.run("pix2pix", 0.5)
