"""Tests of course_lib.config (modes, data folder, seeds) and course_lib.training.fit (on the CPU)."""

from __future__ import annotations

import collections
import copy
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib import config
from course_lib.training import History, fit, predict, to_device


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No course variables from the caller (``make test`` exports COURSE_MODE=quick), and global
    torch state that seed_everything changes is put back afterwards."""
    for name in ("COURSE_MODE", "NBGRADER_EXECUTION", "COURSE_DATA", "COURSE_DEVICE", "COURSE_CHANNELS_LAST"):
        monkeypatch.delenv(name, raising=False)
    # setenv then delenv: monkeypatch remembers the original (possibly unset) value and restores it,
    # undoing seed_everything's os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ...)
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    benchmark = torch.backends.cudnn.benchmark
    yield
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
    torch.backends.cudnn.benchmark = benchmark


# --------------------------------------------------------------------------- config.mode


@pytest.mark.parametrize("value, expected", [("quick", "quick"), ("full", "full"), (" Full ", "full"),
                                             ("QUICK", "quick")])
def test_mode_from_course_mode(monkeypatch, value, expected):
    monkeypatch.setenv("COURSE_MODE", value)
    assert config.mode() == expected
    assert config.is_quick() == (expected == "quick")
    assert config.pick("small", "large") == ("small" if expected == "quick" else "large")


@pytest.mark.parametrize("course_mode", [None, "full", "quick", "nonsense"])
def test_nbgrader_execution_forces_quick(monkeypatch, course_mode):
    if course_mode is not None:
        monkeypatch.setenv("COURSE_MODE", course_mode)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # even on a GPU
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert config.is_autograding()
    assert config.mode() == "quick"
    assert config.pick(1, 100) == 1


@pytest.mark.parametrize("cuda, expected", [(True, "full"), (False, "quick")], ids=["gpu", "cpu"])
def test_default_mode_follows_cuda(monkeypatch, cuda, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert not config.is_autograding()
    assert config.mode() == expected
    monkeypatch.setenv("NBGRADER_EXECUTION", "")  # set but empty does not count as autograding
    assert config.mode() == expected


@pytest.mark.parametrize("value", ["fast", "slow", "1"])
def test_invalid_course_mode_raises(monkeypatch, value):
    monkeypatch.setenv("COURSE_MODE", value)
    with pytest.raises(ValueError, match=rf"COURSE_MODE must be one of \('quick', 'full'\), got '{value}'"):
        config.mode()
    with pytest.raises(ValueError, match=r"COURSE_MODE must be one of"):
        config.pick(1, 2)


# --------------------------------------------------------------------------- config.data_dir / device


def test_data_dir_from_course_data(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    assert config.data_dir() == tmp_path
    assert config.data_dir("chestxray", "images") == tmp_path / "chestxray" / "images"
    assert not (tmp_path / "chestxray").exists()  # data_dir never creates folders


def test_data_dir_default_and_user_expansion(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config.data_dir() == tmp_path / "course_data"
    monkeypatch.setenv("COURSE_DATA", "~/elsewhere")
    assert config.data_dir("x") == tmp_path / "elsewhere" / "x"
    assert isinstance(config.data_dir(), Path)
    monkeypatch.setenv("COURSE_DATA", "")  # set but empty counts as unset, not as the current folder
    assert config.data_dir() == tmp_path / "course_data"


def test_device(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert config.device() == torch.device("cpu")
    monkeypatch.delenv("COURSE_DEVICE")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert config.device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.device() == torch.device("cuda")


# --------------------------------------------------------------------------- config.memory_format


@pytest.mark.parametrize(("value", "expected"), [(None, torch.preserve_format), ("1", torch.channels_last),
                                                 ("yes", torch.channels_last), ("0", torch.preserve_format)])
def test_memory_format_on_a_cpu_with_onednn(monkeypatch, value, expected):
    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch build has no oneDNN: the course keeps NCHW")
    if value is not None:
        monkeypatch.setenv("COURSE_CHANNELS_LAST", value)
    assert config.memory_format("cpu") == expected
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert config.memory_format() == expected  # default: the course device


def test_memory_format_without_onednn_on_cuda_and_bad_values(monkeypatch):
    assert config.memory_format("cuda") == torch.preserve_format  # the default, on every device
    monkeypatch.setenv("COURSE_CHANNELS_LAST", "1")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.backends.mkldnn, "enabled", False)
        assert config.memory_format("cpu") == torch.preserve_format  # torch's own kernels prefer NCHW
    assert torch.backends.mkldnn.enabled
    assert config.memory_format("cuda") == torch.channels_last  # a device type only: no GPU needed
    assert config.memory_format("mps") == torch.preserve_format
    monkeypatch.setenv("COURSE_CHANNELS_LAST", "maybe")
    with pytest.raises(ValueError, match="COURSE_CHANNELS_LAST must be 0 or 1, got 'maybe'"):
        config.memory_format("cpu")


@pytest.mark.parametrize("setting", [None, "0", "1"])
def test_memory_format_argument_decides_over_the_environment(monkeypatch, setting):
    if setting is not None:
        monkeypatch.setenv("COURSE_CHANNELS_LAST", setting)
    assert config.memory_format("cuda", channels_last=True) == torch.channels_last
    assert config.memory_format("cuda", channels_last=False) == torch.preserve_format
    assert config.memory_format("mps", channels_last=True) == torch.preserve_format  # only where it is native
    with pytest.raises(TypeError, match="`channels_last` must be True, False or None, got 1"):
        config.memory_format("cpu", channels_last=1)


# --------------------------------------------------------------------------- config.seed_everything


def _draws():
    # the legacy global NumPy generator on purpose: seed_everything seeds it for old notebook code
    return random.random(), np.random.rand(), torch.rand(1).item()  # noqa: NPY002


def test_seed_everything_reproduces_every_generator():
    config.seed_everything(123)
    first = _draws()
    g1 = config.seed_everything(123)
    assert _draws() == first
    g2 = config.seed_everything(123)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))
    assert isinstance(g1, torch.Generator) and g1.initial_seed() == 123
    config.seed_everything(124)
    assert _draws() != first


def test_seed_everything_deterministic_flags():
    config.seed_everything(0, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.benchmark is False
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_seed_everything_large_seed_and_bad_seed():
    config.seed_everything(2**40)  # NumPy only takes 32 bits: seeded with seed % 2**32
    with pytest.raises(TypeError, match=r"`seed` must be an int, got float"):
        config.seed_everything(1.5)
    with pytest.raises(TypeError, match=r"`seed` must be an int, got bool"):
        config.seed_everything(True)


# --------------------------------------------------------------------------- training.fit


def regression_loaders(n: int = 64, batch_size: int = 16, shuffle: bool = True):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.05 * torch.randn(n, 1, generator=g)  # (N, 3) -> (N, 1)
    train = DataLoader(TensorDataset(x[: n // 2], y[: n // 2]), batch_size=batch_size, shuffle=shuffle)
    val = DataLoader(TensorDataset(x[n // 2 :], y[n // 2 :]), batch_size=batch_size)
    return train, val


def small_mlp(init_seed: int = 0) -> nn.Module:
    torch.manual_seed(init_seed)  # fit seeds *after* the model exists, so seed its initialisation here
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Dropout(0.1), nn.Linear(8, 1))


def test_fit_loss_decreases_on_tiny_regression():
    train, val = regression_loaders()
    model = small_mlp()
    h = fit(model, train, nn.functional.mse_loss, epochs=40, lr=0.03, val_loader=val, seed=0,
            progress=False, device="cpu")
    assert isinstance(h, History) and h.epochs == 40
    assert set(h.metrics) == {"train_loss", "val_loss"}
    assert len(h["train_loss"]) == len(h["val_loss"]) == 40
    assert h["train_loss"][-1] < 0.1 * h["train_loss"][0]
    assert h["val_loss"][-1] < 0.1 * h["val_loss"][0]
    assert h.best_epoch == int(np.argmin(h["val_loss"]))
    assert h.seconds > 0 and not model.training  # left in eval mode


@pytest.mark.parametrize(("setting", "start", "trained"), [
    ("0", torch.contiguous_format, torch.contiguous_format),
    ("0", torch.channels_last, torch.channels_last),  # the default keeps the layout the caller chose
    ("1", torch.contiguous_format, torch.channels_last),
])
def test_fit_trains_convolutions_in_the_course_layout_and_computes_the_same_function(monkeypatch, setting, start,
                                                                                      trained):
    if trained == torch.channels_last and setting == "1" and not torch.backends.mkldnn.is_available():
        trained = torch.contiguous_format
    monkeypatch.setenv("COURSE_CHANNELS_LAST", setting)
    torch.manual_seed(0)
    x = torch.rand(16, 2, 8, 8)
    loader = DataLoader(TensorDataset(x, x.mean(dim=(1, 2, 3))[:, None]), batch_size=8)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(4 * 4 * 4, 1)).to(memory_format=start)
    fit(model, loader, nn.functional.mse_loss, epochs=2, lr=0.01, seed=0, progress=False, device="cpu")
    assert model[0].weight.is_contiguous(memory_format=trained)
    nchw = copy.deepcopy(model).to(memory_format=torch.contiguous_format)  # Flatten keeps NCHW order either way
    assert nchw[0].weight.is_contiguous()
    with torch.no_grad():
        torch.testing.assert_close(model(x), nchw(x), rtol=1e-5, atol=1e-6)


def test_fit_same_seed_same_history_and_weights():
    runs = []
    for _ in range(2):
        train, val = regression_loaders(shuffle=True)  # shuffling draws from the seeded global RNG
        model = small_mlp(init_seed=1)  # dropout also draws from it
        h = fit(model, train, nn.functional.mse_loss, epochs=5, val_loader=val, seed=7, progress=False,
                device="cpu")
        runs.append((h, model.state_dict()))
    (h1, w1), (h2, w2) = runs
    assert h1.metrics == h2.metrics and h1.best_epoch == h2.best_epoch
    assert w1.keys() == w2.keys()
    for key in w1:
        assert torch.equal(w1[key], w2[key]), key
    # and the check is not vacuous: another seed changes the shuffling/dropout and so the history
    train, val = regression_loaders(shuffle=True)
    h3 = fit(small_mlp(init_seed=1), train, nn.functional.mse_loss, epochs=5, val_loader=val, seed=8,
             progress=False, device="cpu")
    assert h3.metrics["train_loss"] != h1.metrics["train_loss"]


def _line_fit(monitor="val_loss", monitor_mode="min", epochs=20):
    """w * x fitted to y = 2x on the training set, validated against y = 1x.

    Full-batch gradient descent moves w monotonically from 0 towards 2,
    w_k = 2 (1 - (1 - 2 lr mean(x^2))^k), so it passes w = 1 — the best validation loss,
    (w - 1)^2 mean(x^2) — after about 9 epochs and then moves away again.
    """
    x = torch.linspace(-1, 1, 32)[:, None]  # (N, 1)
    train = [(x, 2 * x)]  # one full batch
    val = [(x, x)]
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def record_weight(m, loader, device):
        return {"w": m.weight.item()}

    h = fit(model, train, nn.functional.mse_loss, epochs=epochs, optimizer=opt, val_loader=val,
            evaluate=record_weight, monitor=monitor, monitor_mode=monitor_mode, progress=False, device="cpu")
    return model, h, float((x**2).mean())


def test_fit_restores_best_epoch_on_val_loss():
    model, h, mean_x2 = _line_fit()
    w = np.array(h["w"])  # weight after each epoch
    assert np.all(np.diff(w) > 0) and w[-1] > 1.3  # w kept moving past 1
    # val_loss is (w - 1)^2 mean(x^2) for the weight at the end of each epoch
    np.testing.assert_allclose(h["val_loss"], (w - 1) ** 2 * mean_x2, rtol=1e-4, atol=1e-7)
    best = int(np.argmin(h["val_loss"]))
    assert h.best_epoch == best and 0 < best < h.epochs - 1
    assert model.weight.item() == pytest.approx(w[best], abs=0) and model.weight.item() != w[-1]


def test_fit_monitor_none_keeps_last_and_max_mode():
    model, h, _ = _line_fit(monitor=None)
    assert h.best_epoch is None and model.weight.item() == h["w"][-1]
    model, h, _ = _line_fit(monitor="w", monitor_mode="max")  # w grows every epoch: the last is best
    assert h.best_epoch == h.epochs - 1 and model.weight.item() == h["w"][-1]
    model, h, _ = _line_fit(monitor="w", monitor_mode="min")
    assert h.best_epoch == 0 and model.weight.item() == h["w"][0]


@pytest.mark.parametrize("monitor_mode", ["min", "max"])
def test_fit_ties_keep_the_earliest_best_epoch(monitor_mode):
    # a monitored value that never changes: no later epoch is *better*, so epoch 0's weights come back
    x = torch.linspace(-1, 1, 8)[:, None]  # (N, 1)
    model = nn.Linear(1, 1)
    first_epoch_weights = {}

    def constant(m, loader, device):
        first_epoch_weights.setdefault("w", m.weight.item())
        return {"const": 0.5}

    h = fit(model, [(x, 2 * x)], nn.functional.mse_loss, epochs=4, lr=0.1, val_loader=[(x, x)],
            evaluate=constant, monitor="const", monitor_mode=monitor_mode, progress=False, device="cpu")
    assert h.best_epoch == 0 and model.weight.item() == first_epoch_weights["w"]


def test_fit_with_compute_loss_and_dict_batches():
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    batches = [{"image": x, "label": x.sum(dim=1, keepdim=True)}]  # (N, 2) -> (N, 1)

    def compute_loss(model, batch):
        return nn.functional.mse_loss(model(batch["image"]), batch["label"])

    h = fit(nn.Linear(2, 1), batches, compute_loss=compute_loss, epochs=30, lr=0.1, seed=0, progress=False,
            device="cpu")
    assert h["train_loss"][-1] < 0.05 * h["train_loss"][0]
    assert h.best_epoch is None  # no val_loader: nothing to monitor, the last weights stay


def test_to_device_and_predict():
    batch = {"a": torch.ones(2), "b": [torch.zeros(1), (torch.ones(1), "text")], "c": 3}
    moved = to_device(batch, torch.device("cpu"))
    assert moved["c"] == 3 and moved["b"][1][1] == "text" and isinstance(moved["b"][1], tuple)
    assert torch.equal(moved["a"], batch["a"])
    # a namedtuple batch (torch's default collate keeps them) stays a namedtuple
    pair = collections.namedtuple("Pair", "image label")
    moved = to_device(pair(torch.ones(2), torch.zeros(2)), torch.device("cpu"))
    assert type(moved) is pair and torch.equal(moved.image, torch.ones(2))
    train, _ = regression_loaders(shuffle=False)
    model = small_mlp()
    outputs, targets = predict(model, train, torch.device("cpu"))
    assert outputs.shape == targets.shape == (32, 1)  # all batches concatenated
    assert not model.training
    x = torch.cat([b[0] for b in train])
    torch.testing.assert_close(outputs, model(x).detach())  # dropout off in eval mode


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        pytest.param({"loss_fn": None}, ValueError, r"give `loss_fn` or `compute_loss`", id="no-loss"),
        pytest.param({"epochs": 0}, ValueError, r"`epochs` must be a positive int, got 0", id="zero-epochs"),
        pytest.param({"epochs": 2.5}, ValueError, r"`epochs` must be a positive int, got 2.5", id="float-epochs"),
        pytest.param({"monitor_mode": "best"}, ValueError, r"`monitor_mode` must be 'min' or 'max', got 'best'",
                     id="bad-monitor-mode"),
        pytest.param({"monitor": "val_dice"}, KeyError, r"`monitor`='val_dice' is not in the history keys",
                     id="unknown-monitor"),
        pytest.param({"train_loader": []}, ValueError, r"`train_loader` yielded no batches", id="empty-loader"),
        pytest.param({"lr": float("inf")}, FloatingPointError, r"loss became nan at epoch 0; lower the learning",
                     id="diverging"),
    ],
)
def test_fit_bad_arguments_raise(kwargs, error, pattern):
    train, val = regression_loaders()
    args = {"model": small_mlp(), "train_loader": train, "loss_fn": nn.functional.mse_loss, "val_loader": val,
            "epochs": 3, "progress": False, "device": "cpu", **kwargs}
    with pytest.raises(error, match=pattern):
        fit(**args)
