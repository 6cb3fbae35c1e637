"""Two-view models: shapes, missing views, HeMIS statistics, AuxLoss formula, view dropout, gradients, saliency."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from course_lib.chest_xray import (
    MODELS,
    AuxLoss,
    HeMIS,
    auxloss_loss,
    densenet121,
    drop_views,
    hemis_moments,
    make_model,
    masked_bce_with_logits,
    small_cnn,
)
from course_lib.chest_xray import backbones as backbones_module
from course_lib.chest_xray.saliency import view_saliency

L = 5
# [pa, lateral] per study: complete, PA only, lateral only, none (never in the data, must not crash)
PRESENT = torch.tensor([[True, True], [True, False], [False, True], [False, False]])


def _batch(b: int = 4, size: int = 32, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    present = PRESENT[torch.arange(b) % 4]
    keep = present.float()[:, :, None, None, None]
    return {"pa": torch.rand(b, 1, size, size, generator=g) * keep[:, 0],
            "lateral": torch.rand(b, 1, size, size, generator=g) * keep[:, 1], "present": present,
            "labels": (torch.rand(b, L, generator=g) < 0.5).float(), "label_mask": torch.ones(b, L)}


def _model(name: str, **kwargs):
    torch.manual_seed(0)
    return make_model(name, L, width=4, **kwargs)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("train", [False, True])
def test_every_model_gives_finite_logits_for_every_presence_pattern(name, train, one_thread):
    model = _model(name).train(train)
    batch = _batch(8)
    logits = model(batch["pa"], batch["lateral"], batch["present"])
    assert logits.shape == (8, L)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", MODELS)
def test_a_missing_view_content_is_ignored(name, one_thread):
    # a reader might leave garbage in a missing view: the models must not read it
    model = _model(name).eval()
    batch = _batch(4)
    garbage_pa = torch.where(batch["present"][:, 0, None, None, None], batch["pa"], torch.rand_like(batch["pa"]))
    garbage_lat = torch.where(batch["present"][:, 1, None, None, None], batch["lateral"],
                              torch.rand_like(batch["lateral"]))
    torch.testing.assert_close(model(garbage_pa, garbage_lat, batch["present"]),
                               model(batch["pa"], batch["lateral"], batch["present"]))


@pytest.mark.parametrize("name", ["stacked", "hemis", "dualnet", "auxloss"])
def test_fusions_use_both_views(name, one_thread):
    model = _model(name).eval()
    both = torch.ones(4, 2, dtype=torch.bool)
    pa, lateral = torch.rand(4, 1, 32, 32), torch.rand(4, 1, 32, 32)
    out = model(pa, lateral, both)
    assert not torch.allclose(out, model(pa, torch.rand_like(lateral), both)), "the lateral must matter"
    assert not torch.allclose(out, model(torch.rand_like(pa), lateral, both)), "the PA must matter"


def test_single_view_models_read_only_their_view(one_thread):
    pa_model, lat_model = _model("pa").eval(), _model("lateral").eval()
    both = torch.ones(2, 2, dtype=torch.bool)
    x, y = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(pa_model(x, y, both), pa_model(x, torch.rand_like(y), both))
    torch.testing.assert_close(lat_model(x, y, both), lat_model(torch.rand_like(x), y, both))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hemis_moments_equal_numpy_over_present_views(seed):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(6, 2, 3, 4, 4)).astype(np.float32)  # (B, V, C, h, w)
    present = np.array([[1, 1], [1, 0], [0, 1], [1, 1], [0, 0], [1, 0]], bool)
    mean, var = hemis_moments(torch.from_numpy(features), torch.from_numpy(present))
    for b in range(6):
        views = features[b, present[b]]  # (n_present, C, h, w)
        expected_mean = views.mean(axis=0) if len(views) else np.zeros((3, 4, 4))
        expected_var = views.var(axis=0, ddof=0) if len(views) else np.zeros((3, 4, 4))  # HeMIS: 0 for one view
        np.testing.assert_allclose(mean[b].numpy(), expected_mean, atol=1e-6)
        np.testing.assert_allclose(var[b].numpy(), expected_var, atol=1e-6)


def test_hemis_moments_reject_mismatched_present():
    with pytest.raises(ValueError, match="present"):
        hemis_moments(torch.zeros(2, 2, 3), torch.ones(2, 3, dtype=torch.bool))


def test_hemis_with_one_view_sees_zero_variance(one_thread):
    # same PA features whether the lateral is missing or PA is given alone: the front end sees (f_pa, 0)
    model = HeMIS(L, width=4).eval()
    pa = torch.rand(2, 1, 32, 32)
    only_pa = torch.tensor([[True, False], [True, False]])
    out = model(pa, torch.rand(2, 1, 32, 32), only_pa)
    f = model.branches["pa"](pa)
    x = model.merge(torch.cat([f, torch.zeros_like(f)], dim=1))
    torch.testing.assert_close(out, model.classifier(model.pool(model.front(x))))


def _bce(logits, labels):  # the textbook formula, independent of torch's fused version
    p = torch.sigmoid(logits)
    return -(labels * torch.log(p) + (1 - labels) * torch.log(1 - p))


def test_masked_bce_counts_known_labels_only():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    mask = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    expected = (_bce(logits, labels) * mask).sum() / mask.sum()  # 4 known entries
    torch.testing.assert_close(masked_bce_with_logits(logits, labels, mask), expected)
    torch.testing.assert_close(masked_bce_with_logits(logits, labels, mask, reduction="none"),
                               _bce(logits, labels) * mask)
    assert masked_bce_with_logits(logits, labels, torch.zeros_like(mask)).item() == 0.0
    expected = F.binary_cross_entropy_with_logits(logits, labels)
    torch.testing.assert_close(masked_bce_with_logits(logits, labels), expected)


def test_auxloss_equals_the_hand_formula():
    g = torch.Generator().manual_seed(0)
    b = 6
    out = {k: torch.randn(b, L, generator=g) for k in ("joint", "pa", "lateral")}
    out["present"] = torch.tensor([[1, 1], [1, 0], [0, 1], [1, 1], [1, 0], [1, 1]], dtype=torch.bool)
    labels = (torch.rand(b, L, generator=g) < 0.4).float()
    mask = (torch.rand(b, L, generator=g) < 0.8).float()
    joint = (_bce(out["joint"], labels) * mask).sum() / mask.sum()
    has_pa, has_lat = out["present"][:, 0], out["present"][:, 1]
    l_pa = (_bce(out["pa"], labels) * mask)[has_pa].sum() / mask[has_pa].sum()  # only studies with a PA
    l_lat = (_bce(out["lateral"], labels) * mask)[has_lat].sum() / mask[has_lat].sum()
    torch.testing.assert_close(auxloss_loss(out, labels, mask), joint + 0.3 * l_pa + 0.3 * l_lat)
    torch.testing.assert_close(auxloss_loss(out, labels, mask, weight=0.0), joint)


def test_auxloss_model_loss_and_fallback(one_thread):
    model = AuxLoss(L, width=4).eval()
    batch = _batch(4)
    out = model.forward_all(batch["pa"], batch["lateral"], batch["present"])
    torch.testing.assert_close(model.loss(batch), auxloss_loss(out, batch["labels"], batch["label_mask"]))
    logits = model(batch["pa"], batch["lateral"], batch["present"])
    torch.testing.assert_close(logits[0], out["joint"][0])  # complete study: joint head
    torch.testing.assert_close(logits[1], out["pa"][1])  # PA only: the PA head
    torch.testing.assert_close(logits[2], out["lateral"][2])  # lateral only: the lateral head
    model.fallback = False
    torch.testing.assert_close(model(batch["pa"], batch["lateral"], batch["present"]), out["joint"])


def test_auxloss_rejects_incomplete_outputs():
    with pytest.raises(ValueError, match="forward_all"):
        auxloss_loss({"joint": torch.zeros(1, 1)}, torch.zeros(1, 1))


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_view_dropout_never_drops_both_nor_a_lone_view(p):
    present = PRESENT[:3].repeat(2000, 1)  # complete, PA only, lateral only; (6000, 2)
    kept = drop_views(present, p, torch.Generator().manual_seed(1))
    assert kept.any(dim=1).all(), "a study must keep a view"
    assert not (kept & ~present).any(), "dropout must not invent views"
    torch.testing.assert_close(kept[1::3], present[1::3])  # single-view studies untouched
    torch.testing.assert_close(kept[2::3], present[2::3])
    complete = kept[0::3]
    dropped = ~complete.all(dim=1)
    assert abs(dropped.float().mean().item() - p) < 0.03
    if p > 0:  # PA and lateral are dropped about equally often
        assert abs((~complete[:, 0]).float().mean().item() - p / 2) < 0.03


def test_view_dropout_only_in_training(one_thread):
    torch.manual_seed(0)
    model = make_model("dualnet", L, width=4, view_dropout=1.0)
    reference = make_model("dualnet", L, width=4, view_dropout=0.0)
    reference.load_state_dict(model.state_dict())
    batch = _batch(4)
    args = (batch["pa"], batch["lateral"], batch["present"])
    torch.testing.assert_close(model.eval()(*args), reference.eval()(*args))


@pytest.mark.parametrize("name", MODELS)
def test_gradients_reach_every_parameter(name, one_thread):
    model = _model(name).train()
    batch = _batch(8)
    batch["present"] = torch.ones(8, 2, dtype=torch.bool)
    model.loss(batch).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, f"no gradient reaches {missing}"


@pytest.mark.parametrize("name", MODELS)
def test_saliency_has_image_shape_and_is_zero_for_a_missing_view(name, one_thread):
    model = _model(name).train()
    batch = _batch(4)
    s_pa, s_lat = view_saliency(model, batch["pa"], batch["lateral"], batch["present"], label=1)
    assert model.training, "view_saliency must restore the model's mode"
    assert s_pa.shape == s_lat.shape == (4, 1, 32, 32)
    assert (s_pa >= 0).all() and (s_lat >= 0).all()
    for k, s in enumerate((s_pa, s_lat)):
        missing = ~batch["present"][:, k]
        assert (s[missing] == 0).all(), "a missing view cannot have influenced the prediction"
        reads = name in ("stacked", "hemis", "dualnet", "auxloss") or name == ("pa", "lateral")[k]
        if reads:
            assert (s[~missing].flatten(1).sum(dim=1) > 0).all(), "a view the model reads must have saliency"


def test_saliency_rejects_a_bad_label():
    batch = _batch(2)
    with pytest.raises(ValueError, match="label"):
        view_saliency(_model("pa"), batch["pa"], batch["lateral"], batch["present"], label=L)


@pytest.mark.parametrize("pa_shape, lat_shape, present_shape, match", [
    ((2, 1, 32), (2, 1, 32), (2, 2), "pa"),
    ((2, 1, 32, 32), (2, 1, 16, 16), (2, 2), "same shape"),
    ((2, 1, 32, 32), (2, 1, 32, 32), (2, 3), "present"),
    ((2, 1, 32, 32), (2, 1, 32, 32), (3, 2), "present"),
])
def test_bad_shapes_raise(pa_shape, lat_shape, present_shape, match):
    model = _model("dualnet")
    with pytest.raises(ValueError, match=match):
        model(torch.zeros(pa_shape), torch.zeros(lat_shape), torch.ones(present_shape, dtype=torch.bool))


def test_bad_values_raise():
    model = _model("hemis")
    x = torch.zeros(2, 1, 32, 32)
    with pytest.raises(TypeError, match="floating"):
        model(x.long(), x, torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="0/1"):
        model(x, x, torch.full((2, 2), 2))
    with pytest.raises(TypeError, match="Tensor"):
        model(x.numpy(), x, torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="name"):
        make_model("triplenet", L)
    with pytest.raises(ValueError, match="view_dropout"):
        make_model("pa", L, view_dropout=0.5)
    with pytest.raises(ValueError, match="backbone"):
        make_model("dualnet", L, backbone="resnet")
    with pytest.raises(ValueError, match="reduction"):
        masked_bce_with_logits(torch.zeros(1, 1), torch.zeros(1, 1), reduction="avg")
    with pytest.raises(ValueError, match="label_mask"):
        masked_bce_with_logits(torch.zeros(2, 2), torch.zeros(2, 2), torch.ones(2, 1))


def test_present_may_be_given_as_numbers(one_thread):
    model = _model("hemis").eval()
    batch = _batch(4)
    torch.testing.assert_close(model(batch["pa"], batch["lateral"], batch["present"].float()),
                               model(batch["pa"], batch["lateral"], batch["present"]))


def test_small_backbone_interface():
    net = small_cnn(L, in_channels=2, width=4)
    x = torch.rand(3, 2, 64, 64)
    assert net(x).shape == (3, L)
    assert net.features(x).shape == (3, 32, 4, 4)  # 8 * width channels, 64 / 16 px
    assert net.forward_features(x).shape == (3, net.num_features)
    early, late, channels = net.split()
    assert channels == 8 and early(x).shape == (3, 8, 8, 8)  # "stage2": 2 * width, 64 / 8 px
    torch.testing.assert_close(net.classifier(net.pool(late(early(x)))), net(x))


def test_densenet121_is_chexnet_shaped(one_thread):
    net = densenet121(L).eval()
    x = torch.rand(1, 1, 64, 64)
    assert net(x).shape == (1, L) and net.num_features == 1024
    early, _, channels = net.split()
    assert channels == 256 and early(x).shape == (1, 256, 4, 4)  # transition2: 1/16 of the side
    model = make_model("hemis", L, backbone="densenet121").eval()
    assert model(x, x, torch.tensor([[True, False]])).shape == (1, L)


@pytest.mark.parametrize("in_channels", [1, 2])
def test_imagenet_first_layer_answers_a_grey_image_like_rgb(monkeypatch, in_channels):
    # no download in tests: stand in random "ImageNet" weights, keep the adaptation under test
    torch.manual_seed(0)
    rgb = torchvision.models.densenet121(weights=None)
    monkeypatch.setattr(backbones_module, "tv_densenet121", lambda weights=None: rgb)
    net = densenet121(L, in_channels, weights="imagenet")
    grey = torch.rand(1, 1, 32, 32)
    normalised = (grey - 0.449) / 0.226
    expected = F.conv2d(normalised.repeat(1, 3, 1, 1), rgb.features.conv0.weight, stride=2, padding=3)
    got = net.features.conv0(net.features.normalize(grey.repeat(1, in_channels, 1, 1)))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="weights"):
        densenet121(L, weights="chexpert")
