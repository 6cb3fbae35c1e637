"""Synthetic FLAIR-like / T1-like slices: shapes, fractions, determinism, contrasts, and the sampling helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from course_lib.translation.experiment import draw_with_fraction, summarise
from course_lib.translation.synthetic_brain import BrainConfig, brain_slices, unpaired_domains


def test_shapes_ranges_and_exact_tumour_fraction():
    data = brain_slices(20, 0.3, seed=0)
    assert data.flair.shape == data.t1.shape == data.mask.shape == (20, 32, 32)
    assert data.flair.dtype == data.t1.dtype == np.float32 and data.mask.dtype == bool
    assert 0 <= data.flair.min() and data.t1.max() <= 1
    assert data.tumour.sum() == 6  # round(20 * 0.3)
    assert np.array_equal(data.mask.any(axis=(1, 2)), data.tumour), "a mask exactly on the tumour slices"
    assert np.array_equal(data.subject, np.arange(20))


def test_same_seed_same_slices_other_seed_other_subjects():
    a, b, c = brain_slices(5, 0.4, seed=3), brain_slices(5, 0.4, seed=3), brain_slices(5, 0.4, seed=4)
    assert np.array_equal(a.flair, b.flair) and np.array_equal(a.mask, b.mask)
    assert not np.allclose(a.t1, c.t1)


def test_contrasts_tumour_bright_in_flair_dark_in_t1():
    data = brain_slices(30, 1.0, config=BrainConfig(size=48), seed=1)
    brain = data.t1 > 0.3  # head pixels
    normal = brain & ~data.mask
    # FLAIR: lesion and oedema brighter than the normal head; T1: darker (hypo-intense)
    assert data.flair[data.mask].mean() > data.flair[normal].mean() + 0.2
    assert data.t1[data.mask].mean() < data.t1[normal].mean() - 0.05
    # CSF is dark in both (suppressed in FLAIR): the darkest brain pixels match across contrasts
    inside = data.flair > 0.02
    assert np.corrcoef(data.flair[inside], data.t1[inside])[0, 1] < 0.9, "two contrasts, not one image twice"


def test_anatomy_varies_between_subjects():
    data = brain_slices(10, 0.0, seed=2)
    head_area = (data.t1 > 0.3).sum(axis=(1, 2))
    assert head_area.std() > 10, "head size must vary"
    assert len({tuple(np.round(im[::4, ::4], 1).ravel()) for im in data.t1}) == 10


def test_unpaired_domains_have_their_own_fractions_and_subjects():
    source, target = unpaired_domains(20, 10, source_fraction=0.5, target_fraction=1.0, seed=0)
    assert source.tumour.mean() == 0.5 and target.tumour.mean() == 1.0
    assert not any(np.allclose(s, t) for s in source.t1 for t in target.t1), "no subject in both domains"


@pytest.mark.parametrize(("n", "fraction", "match"), [
    (0, 0.5, "`n` must be a positive int, got 0"),
    (4, 1.5, r"`tumour_fraction` must lie in \[0, 1\], got 1.5"),
])
def test_bad_arguments_are_refused(n, fraction, match):
    with pytest.raises(ValueError, match=match):
        brain_slices(n, fraction)


def test_draw_with_fraction_gets_the_share_and_reuses_slices_only_when_needed():
    pool = brain_slices(20, 0.5, seed=5)  # 10 tumour, 10 healthy slices
    rng = np.random.default_rng(0)
    drawn = draw_with_fraction(pool, 8, 0.25, rng)
    assert len(drawn) == 8 and drawn.tumour.sum() == 2
    assert len(np.unique(drawn.subject)) == 8, "enough slices: no repeats"
    all_tumour = draw_with_fraction(pool, 16, 1.0, rng)
    assert all_tumour.tumour.all() and len(np.unique(all_tumour.subject)) <= 10  # only 10 tumour slices exist
    with pytest.raises(ValueError, match="the pool has no tumour slices to draw 2 from"):
        draw_with_fraction(pool.subset(~pool.tumour), 4, 0.5, rng)
    with pytest.raises(ValueError, match=r"`fraction` must lie in \[0, 1\], got -0.1"):
        draw_with_fraction(pool, 4, -0.1, rng)


def test_summarise_gives_mean_and_sample_sd_per_method_and_fraction():
    runs = pd.DataFrame({"method": ["real_t1", "cyclegan", "cyclegan", "cyclegan"],
                         "fraction": [np.nan, 0.0, 0.0, 0.0], "seed": [0, 0, 1, 2],
                         "erased": [0.0, 0.2, 0.4, 0.6], "hallucinated": [0.0, 0.1, 0.1, 0.1],
                         "tumour_error": [0.0, 0.3, 0.3, 0.3], "image_error": [0.0, 0.1, 0.1, 0.1]})
    table = summarise(runs).set_index("method")
    assert table.loc["cyclegan", "erased_mean"] == pytest.approx(0.4)
    assert table.loc["cyclegan", "erased_sd"] == pytest.approx(0.2)  # sqrt(((0.2)^2 + 0 + (0.2)^2) / 2)
    assert table.loc["cyclegan", "n_seeds"] == 3
    assert np.isnan(table.loc["real_t1", "fraction"]) and np.isnan(table.loc["real_t1", "erased_sd"])
