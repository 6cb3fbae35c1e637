"""A steady training recipe for few images on a CPU: a step budget, cosine decay, weight averaging, selection.

:func:`~course_lib.counting.training.train_density_model` counts in epochs and checks the validation images after
each. With 32 training images an epoch is four batches, so the check costs more than the training between two
checks, and the raw weights move so much from one step to the next that the validation MAE of consecutive checks
jumps (on the real VGG cells a plain U-Net at a constant learning rate went between 5 and 16 cells). This recipe
makes each of those steps quieter:

* **a step budget** instead of epochs: ``steps`` Adam updates on random crops (flips and 90 degree turns);
* **warm-up then cosine decay** of the learning rate to zero: big steps early, tiny ones at the end;
* **an exponential moving average (EMA) of the weights**, the model that is validated and returned: it averages
  the noise of the last ~``1 / (1 - ema)`` steps away (Polyak averaging);
* **validation on whole images** only in the second half of the budget (``eval_from``), every ``eval_every``
  steps, and the EMA weights of the best check are kept: model selection on the validation split only.

The loss is the chapter's L1 between the predicted and the target density (:func:`l1_density_loss`).

References
----------
Polyak & Juditsky (1992). Acceleration of stochastic approximation by averaging. SIAM J. Control Optim.
Loshchilov & Hutter (2017). SGDR: stochastic gradient descent with warm restarts. ICLR — cosine decay.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from course_lib import config
from course_lib.counting.density import l1_density_loss
from course_lib.counting.training import predict_counts
from course_lib.counting.training_data import DensityDataset

__all__ = ["SteadyHistory", "cosine_lr", "train_steady"]


@dataclass
class SteadyHistory:
    """What :func:`train_steady` measured: the validation checks and the one kept."""

    steps: list[int] = field(default_factory=list)  # the step after which each check ran
    val_count_mae: list[float] = field(default_factory=list)  # count MAE of the EMA weights on the validation images
    train_loss: list[float] = field(default_factory=list)  # mean training loss since the previous check
    best_step: int = -1
    best_val_mae: float = math.inf
    seconds: float = 0.0


def cosine_lr(step: int, steps: int, lr: float, warmup: int) -> float:
    """Learning rate of ``step`` (0-based): linear warm-up over ``warmup`` steps, then cosine decay to 0.

    Examples
    --------
    >>> [round(cosine_lr(s, 10, 1.0, 2), 3) for s in (0, 1, 2, 6, 9)]
    [0.5, 1.0, 1.0, 0.5, 0.038]
    """
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(steps - warmup, 1)
    return lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def _batches(dataset, batch_size: int, seed: int):
    """Endless shuffled batches (a new order every pass, reproducible from ``seed``)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=len(dataset) >= batch_size,
                        generator=torch.Generator().manual_seed(seed))
    while True:
        yield from loader


def train_steady(model: nn.Module, train_images, train_dots, val_images, val_dots, *, steps: int = 600,
                 batch_size: int = 8, crop: int = 128, lr: float = 2e-3, warmup: int = 30, ema: float = 0.98,
                 eval_every: int = 40, eval_from: float = 0.5, sigma: float = 2.0, seed: int = 0, device="cpu",
                 channels_last: bool | None = None, log=None) -> SteadyHistory:
    """Train a :class:`~course_lib.counting.models.DensityFCN` with the steady recipe; keeps the best EMA weights.

    Parameters
    ----------
    model : DensityFCN
        Trained in place; at the end it holds the EMA weights of the check with the lowest validation count MAE.
    train_images, val_images : (n, H, W) float arrays
        Validation images are counted whole, unaugmented.
    train_dots, val_dots : lists of (N_i, 2) arrays
        ``(row, col)`` cell centres.
    steps : int
        Adam updates in all.
    batch_size, crop : int
        Random ``crop x crop`` training crops, ``batch_size`` a step.
    lr, warmup : float, int
        Peak learning rate, reached after ``warmup`` steps, then cosine decay to 0 (:func:`cosine_lr`).
    ema : float
        Decay of the moving average of the weights, in [0, 1); 0.98 averages about the last 50 steps.
    eval_every : int
        Steps between validation checks.
    eval_from : float
        Share of the budget after which checks start (the last step is always checked): early weights are not worth
        the time a check costs on a CPU.
    sigma : float
        Gaussian width of the density targets.
    seed : int
    device : str or torch.device
    channels_last : bool, optional
        Train in ``torch.channels_last`` where the device runs it natively (:func:`course_lib.config.memory_format`;
        ``None``: as ``COURSE_CHANNELS_LAST`` says). The same function in another summation order: faster on CPUs
        with oneDNN (1.3-1.4x for this U-Net), not the same last digits.
    log : callable, optional
        ``log(message)`` after each check, e.g. ``print``.

    Returns
    -------
    SteadyHistory
    """
    if getattr(model, "target", None) != "density":
        raise TypeError(f"`model` must be a DensityFCN, got {type(model).__name__}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` must be a positive int, got {steps!r}")
    if not 0.0 <= ema < 1.0:
        raise ValueError(f"`ema` must be in [0, 1), got {ema!r}")
    if not 0.0 <= eval_from <= 1.0 or not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError(f"`eval_from` must be in [0, 1] and `eval_every` a positive int, got {eval_from!r}, "
                         f"{eval_every!r}")
    config.seed_everything(seed)
    device = torch.device(device)
    train = DensityDataset(train_images, train_dots, sigma=sigma, crop=crop, flips=True,
                           target_scale=model.target_scale)
    truth = np.array([len(d) for d in val_dots], dtype=float)
    model.to(device, memory_format=config.memory_format(device, channels_last=channels_last)).train()
    average = copy.deepcopy(model).eval()  # the EMA weights; BatchNorm statistics are averaged the same way
    for p in average.parameters():
        p.requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history, best_state, losses = SteadyHistory(), None, []
    first_check = int(eval_from * steps)
    start = time.perf_counter()
    batches = _batches(train, batch_size, seed)
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup)
        x, y = next(batches)
        loss = l1_density_loss(model(x.to(device)), y.to(device))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower `lr`")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        with torch.no_grad():  # EMA; buffers (BatchNorm running statistics) too, as floats
            decay = min(ema, (step + 1) / (step + 10))  # a short memory at first, so the start is not frozen in
            for a, m in zip(average.state_dict().values(), model.state_dict().values(), strict=True):
                if a.dtype.is_floating_point:
                    a.mul_(decay).add_(m.detach(), alpha=1.0 - decay)
                else:
                    a.copy_(m)
        last = step == steps - 1
        if (step + 1 >= first_check and (step + 1 - first_check) % eval_every == 0) or last:
            mae = float(np.mean(np.abs(predict_counts(average, val_images, device=device)[:, 0] - truth)))
            history.steps.append(step + 1)
            history.val_count_mae.append(mae)
            history.train_loss.append(float(np.mean(losses)))
            losses = []
            if mae < history.best_val_mae:
                history.best_val_mae, history.best_step = mae, step + 1
                best_state = copy.deepcopy(average.state_dict())
            if log is not None:
                log(f"  step {step + 1:4d}/{steps}: train loss {history.train_loss[-1]:.4f}, "
                    f"validation MAE {mae:.2f} cells ({time.perf_counter() - start:.0f} s)")
    model.load_state_dict(best_state)
    model.eval()
    history.seconds = time.perf_counter() - start
    return history
