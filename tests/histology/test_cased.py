"""Tests of course_lib.histology.cased: candidate patches, the CASED sampler and its use with ``fit``.

Statistical tests use fixed seeds and tolerances of several standard errors, so they are deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from course_lib.histology.cased import (
    CASEDSampler,
    PatchDataset,
    adaptive_compute_loss,
    extract_candidates,
)
from course_lib.histology.synthetic_lesions import LesionConfig, make_lesion_images
from course_lib.metrics import lesion_detection_scores
from course_lib.training import fit

LABELS = np.array([1, 1, 0, 0, 0, 0, 0, 0])  # 2 positives, 6 negatives


def make_sampler(**kwargs) -> CASEDSampler:
    defaults = {"num_samples": 8, "batch_size": 8, "pos_fraction": 0.25, "curriculum_epochs": 2,
                "smoothing": 0.0, "seed": 0}
    return CASEDSampler(LABELS, **{**defaults, **kwargs})


# --------------------------------------------------------------------------- candidates


@pytest.fixture(scope="module")
def nodules():
    """Nodule-like data: 8 images of 96x96 with < 0.1 % lesion pixels."""
    images, masks = make_lesion_images(8, LesionConfig(size=96, fg_fraction=0.0008, radius=(2.0, 3.0)), seed=1)
    assert 0 < masks.mean() < 0.001
    return images, masks


def test_candidate_labels_match_brute_force(nodules):
    images, masks = nodules
    c = extract_candidates(masks, 16, stride=8, per_lesion=3, seed=0)
    # grid: ((96 - 16) / 8 + 1)^2 = 121 patches per image, listed first
    assert (~c.centred).sum() == 8 * 121 and not c.centred[: 8 * 121].any()
    brute = [masks[i, 0, y:y + 16, x:x + 16].any() for i, (y, x) in zip(c.image_index, c.top_left, strict=True)]
    assert np.array_equal(c.labels, np.array(brute, dtype=np.int64))
    assert c.labels[c.centred].all(), "every lesion-centred patch must contain its lesion"
    assert c.top_left.min() >= 0 and c.top_left.max() <= 96 - 16


def test_lesion_centred_patches_per_lesion(nodules):
    _, masks = nodules
    from scipy import ndimage

    n_lesions = sum(ndimage.label(m[0])[1] for m in masks)
    c = extract_candidates(masks, 16, per_lesion=5)
    assert c.centred.sum() == 5 * n_lesions
    assert len(extract_candidates(masks, 16, per_lesion=0)) == (~c.centred).sum()


def test_patch_dataset_crops(nodules):
    images, masks = nodules
    c = extract_candidates(masks, 16, stride=16)
    x, y, i = PatchDataset(images, masks, c)[37]
    k, (r, col) = c.image_index[37], c.top_left[37]
    assert i == 37 and x.shape == y.shape == (1, 16, 16)  # (C, p, p)
    assert torch.equal(x, torch.from_numpy(images[k, :, r:r + 16, col:col + 16]))
    assert torch.equal(y, torch.from_numpy(masks[k, :, r:r + 16, col:col + 16]))


# --------------------------------------------------------------------------- sampler


def test_curriculum_schedule():
    s = make_sampler(pos_fraction=0.25, curriculum_epochs=3)
    # s_e = 1 - min(e / 3, 1) * (1 - 0.25): 1, 0.75, 0.5, then 0.25 for ever
    assert [s.positive_share(e) for e in range(6)] == [1.0, 0.75, 0.5, 0.25, 0.25, 0.25]
    assert make_sampler(curriculum_epochs=0).positive_share(0) == 0.25
    assert make_sampler(pos_fraction=None, curriculum_epochs=0).positive_share(0) == pytest.approx(2 / 8)


def test_first_epoch_draws_lesion_patches_only():
    s = make_sampler(num_samples=40)
    assert set(iter(s)) <= {0, 1}


def test_epoch_advances_with_every_pass():
    s = make_sampler()
    assert s.epoch == 0
    list(s)
    list(s)
    assert s.epoch == 2 and len(list(s)) == 8 == len(s)


def test_probabilities_proportional_to_updated_losses():
    s = make_sampler(curriculum_epochs=0)  # share 0.25 positive from the start
    s.update([2, 3, 4, 5, 6, 7], [4.0, 2.0, 1.0, 1.0, 0.0, 0.0])
    s.update(torch.tensor([0, 1]), torch.tensor([3.0, 1.0]))
    p = s.probabilities()
    # negatives: 0.75 * loss / 8; positives: 0.25 * loss / 4
    assert p[2:] == pytest.approx(0.75 * np.array([4, 2, 1, 1, 0, 0]) / 8)
    assert p[:2] == pytest.approx(0.25 * np.array([3, 1]) / 4)
    assert p.sum() == pytest.approx(1.0)


def test_smoothing_and_unseen_patches():
    s = make_sampler(curriculum_epochs=0, smoothing=0.2, initial_loss=1.0)
    s.update([2], [5.0])  # negatives now (5, 1, 1, 1, 1, 1): the unseen keep the initial loss 1
    p = s.probabilities()[2:] / 0.75
    assert p == pytest.approx(0.8 * np.array([5, 1, 1, 1, 1, 1]) / 10 + 0.2 / 6)


def test_non_adaptive_is_uniform_within_class():
    s = make_sampler(curriculum_epochs=0, adaptive=False)
    s.update([2], [100.0])
    assert s.probabilities()[2:] == pytest.approx(np.full(6, 0.75 / 6))


@pytest.mark.parametrize(("epoch", "n_pos"), [(0, 16), (1, 10), (2, 4), (5, 4)])
def test_every_batch_is_stratified(epoch, n_pos):
    # batch 16, pos_fraction 0.25, 2 curriculum epochs: shares 1, 0.625, 0.25 -> 16, 10, 4 positives
    s = make_sampler(num_samples=160, batch_size=16)
    s.epoch = epoch
    batches = np.array(list(s)).reshape(10, 16)
    assert ((batches < 2).sum(axis=1) == n_pos).all()


def test_draw_frequencies_follow_losses():
    """20 000 draws: each patch's frequency within its class is within 5 standard errors of its probability."""
    s = make_sampler(num_samples=20_000, batch_size=100, curriculum_epochs=0, pos_fraction=0.5, seed=3)
    s.update(np.arange(8), [1.0, 3.0, 6.0, 3.0, 1.0, 0.0, 1.0, 1.0])
    counts = np.bincount(np.array(list(s)), minlength=8)
    assert counts[:2].sum() == 10_000 and counts[2:].sum() == 10_000  # exact stratification
    expected = np.r_[np.array([1, 3]) / 4, np.array([6, 3, 1, 0, 1, 1]) / 12]  # within-class probabilities
    freq = counts / 10_000
    se = np.sqrt(expected * (1 - expected) / 10_000)
    assert np.all(np.abs(freq - expected) <= 5 * se + 1e-12), (freq, expected)
    assert counts[5] == 0, "a patch with zero loss and no smoothing is never drawn"


def test_updates_shape_the_next_batch_within_an_epoch():
    s = make_sampler(num_samples=64, batch_size=8, curriculum_epochs=0, pos_fraction=0.0)
    it = iter(s)
    first = [next(it) for _ in range(8)]
    assert set(first) <= set(range(2, 8))
    s.update([2, 3, 4, 5, 6], [0.0] * 5)  # only negative 7 is still hard
    assert set(it) == {7}


def test_same_seed_same_draws():
    a, b = make_sampler(seed=5, curriculum_epochs=0), make_sampler(seed=5, curriculum_epochs=0)
    assert list(a) == list(b)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": [1, 1, 1]}, "both positives"),
        ({"labels": [[0, 1]]}, r"shape \(N,\)"),
        ({"labels": [0, 2]}, "binary"),
        ({"num_samples": 0}, "`num_samples` must be a positive int"),
        ({"batch_size": 2.5}, "`batch_size` must be a positive int"),
        ({"pos_fraction": 1.5}, "`pos_fraction` must lie in"),
        ({"curriculum_epochs": -1}, "`curriculum_epochs` must be an int >= 0"),
        ({"smoothing": 2.0}, "smoothing"),
    ],
)
def test_bad_sampler_arguments_raise(kwargs, match):
    args = {"labels": LABELS, "num_samples": 8, "batch_size": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        CASEDSampler(args.pop("labels"), **args)


@pytest.mark.parametrize(
    ("indices", "losses", "match"),
    [
        ([0, 1], [1.0], r"`indices` \(shape \(2,\)\) and `losses` \(shape \(1,\)\)"),
        ([8], [1.0], r"`indices` must lie in \[0, 8\)"),
        ([0], [-1.0], "finite and >= 0"),
        ([0], [np.nan], "finite and >= 0"),
    ],
)
def test_bad_updates_raise(indices, losses, match):
    with pytest.raises(ValueError, match=match):
        make_sampler().update(indices, losses)


def test_bad_candidate_arguments_raise(nodules):
    _, masks = nodules
    with pytest.raises(ValueError, match=r"`patch_size` must be an int in \[1, 96\]"):
        extract_candidates(masks, 100)
    with pytest.raises(ValueError, match=r"\(n, H, W\) or \(n, 1, H, W\)"):
        extract_candidates(masks[0, 0], 16)
    with pytest.raises(ValueError, match="binary"):
        extract_candidates(masks * 0.5, 16)


# --------------------------------------------------------------------------- with fit


def test_fit_with_cased_sampler_updates_losses(nodules):
    images, masks = nodules
    c = extract_candidates(masks, 16, stride=16)
    sampler = CASEDSampler(c.labels, num_samples=32, batch_size=16, curriculum_epochs=1, seed=0)

    def per_patch_bce(logits, target):  # (B, 1, p, p) -> (B,)
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=(1, 2, 3))

    model = torch.nn.Conv2d(1, 1, 3, padding=1)
    loader = DataLoader(PatchDataset(images, masks, c), batch_size=16, sampler=sampler)
    history = fit(model, loader, compute_loss=adaptive_compute_loss(sampler, per_patch_bce), epochs=2,
                  seed=0, device="cpu", progress=False, monitor=None)
    assert history.epochs == 2 and sampler.epoch == 2
    seen = sampler.losses != 1.0
    assert seen.any() and np.all(sampler.losses[seen] < 5), "the sampler must hold the BCE of the patches it drew"
    # a batch without indices (e.g. whole validation images) returns the loss and does not touch the sampler
    before = sampler.losses.copy()
    loss = adaptive_compute_loss(sampler, per_patch_bce)(model, (torch.zeros(2, 1, 16, 16), torch.zeros(2, 1, 16, 16)))
    assert loss.ndim == 0 and np.array_equal(before, sampler.losses)


def test_lesion_detection_scores_hand_case():
    true = np.zeros((2, 10, 10), bool)
    true[0, 1:3, 1:3] = true[0, 6:8, 6:8] = True  # 2 lesions in image 0, none in image 1
    pred = np.zeros_like(true)
    pred[0, 1:3, 1:3] = True  # first lesion exactly
    pred[1, 4:6, 4:6] = pred[1, 0, 9] = True  # two false alarms in image 1
    s = lesion_detection_scores(pred, true)
    # recall 1 / 2; 2 false positives over 2 images; Dice 2 * 4 / (9 predicted + 8 true pixels)
    assert (s["recall"], s["fp_per_image"], s["n_lesions"]) == (0.5, 1.0, 2)
    assert s["dice"] == pytest.approx(8 / 17)
    # one blob over both lesions: its centroid (4, 4) is sqrt(8) = 2.8 px from either lesion: a false alarm
    blob = np.zeros_like(true)
    blob[0, 1:8, 1:8] = True
    s = lesion_detection_scores(blob, true)
    assert (s["recall"], s["fp_per_image"]) == (0.0, 0.5)
    # within 3 px it is a hit, but one detection hits one lesion only (the nearest): recall 1 / 2
    assert lesion_detection_scores(blob, true, tolerance=3)["recall"] == 0.5
