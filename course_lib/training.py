"""One training loop for every chapter: ``fit(model, train_loader, loss_fn, ...)``.

What it does, epoch by epoch:

1. train on every batch of ``train_loader`` (mixed precision on CUDA, full precision elsewhere);
2. evaluate on ``val_loader`` — the validation loss, plus whatever ``evaluate`` returns;
3. append everything to a :class:`History` and show it on a tqdm progress bar;
4. keep a copy of the weights that scored best on ``monitor`` and restore them at the end,
   so model selection happens on the validation split, never on the test split.

Batches are ``(inputs, targets)`` pairs moved to the device (tensors inside tuples, lists
and dicts too). For anything fancier — several inputs, several losses — pass
``compute_loss(model, batch) -> loss``.

On the CPU with a ``seed`` the run is deterministic: same seed, same weights, same history.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib import config

__all__ = ["History", "fit", "to_device", "predict"]


@dataclass
class History:
    """Per-epoch record of a training run. ``history.metrics["val_loss"][k]`` is epoch ``k``'s value."""

    metrics: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int | None = None  # epoch whose weights were restored (0-based)
    seconds: float = 0.0  # wall time of the whole run

    def append(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.metrics.setdefault(key, []).append(float(value))

    @property
    def epochs(self) -> int:
        return len(self.metrics.get("train_loss", []))

    def last(self, key: str) -> float:
        return self.metrics[key][-1]

    def __getitem__(self, key: str) -> list[float]:
        return self.metrics[key]


def to_device(batch, device: torch.device):
    """Move tensors (also inside tuples, lists and dicts) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        moved = [to_device(v, device) for v in batch]
        # a namedtuple (kept by the default collate) takes its fields as separate arguments
        return type(batch)(*moved) if hasattr(batch, "_fields") else type(batch)(moved)
    return batch


def _default_compute_loss(loss_fn: Callable) -> Callable:
    def compute_loss(model: nn.Module, batch) -> torch.Tensor:
        inputs, targets = batch[0], batch[1]
        return loss_fn(model(inputs), targets)

    return compute_loss


def _autocast(device: torch.device, enabled: bool):
    if not enabled:
        return torch.autocast(device_type=device.type, enabled=False)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable, device: torch.device | None = None) -> tuple[torch.Tensor, ...]:
    """Run ``model`` over ``loader`` and return ``(outputs, targets)`` concatenated on the CPU."""
    device = device or next(model.parameters()).device
    model.eval()
    outputs, targets = [], []
    for batch in loader:
        batch = to_device(batch, device)
        outputs.append(model(batch[0]).float().cpu())
        targets.append(batch[1].cpu())
    return torch.cat(outputs), torch.cat(targets)


def fit(
    model: nn.Module,
    train_loader: Iterable,
    loss_fn: Callable | None = None,
    *,
    epochs: int = 10,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    val_loader: Iterable | None = None,
    evaluate: Callable[[nn.Module, Iterable, torch.device], dict[str, float]] | None = None,
    monitor: str | None = "val_loss",
    monitor_mode: str = "min",
    compute_loss: Callable[[nn.Module, object], torch.Tensor] | None = None,
    scheduler=None,
    device: torch.device | str | None = None,
    amp: bool | None = None,
    grad_clip: float | None = None,
    seed: int | None = None,
    progress: bool = True,
    desc: str = "train",
) -> History:
    """Train ``model`` and return its :class:`History`.

    Parameters
    ----------
    model : nn.Module
    train_loader : iterable of (inputs, targets)
    loss_fn : callable
        ``loss_fn(model(inputs), targets) -> scalar``. Not needed with ``compute_loss``.
    epochs : int
    optimizer : torch.optim.Optimizer, optional
        Default: Adam with learning rate ``lr``.
    lr : float
    val_loader : iterable, optional
        Validation batches; gives ``val_loss`` each epoch.
    evaluate : callable, optional
        ``evaluate(model, val_loader, device) -> {"val_dice": ...}``, called in eval mode
        without gradients after each epoch.
    monitor : str or None
        History key whose best epoch's weights are restored at the end (``None``: keep the last).
    monitor_mode : {"min", "max"}
    compute_loss : callable, optional
        ``compute_loss(model, batch) -> scalar`` replaces ``loss_fn(model(x), y)``.
    scheduler : optional
        Stepped once per epoch.
    device : torch.device or str, optional
        Default :func:`course_lib.config.device`.
    amp : bool, optional
        Mixed precision; default on for CUDA only.
    grad_clip : float, optional
        Clip the gradient norm to this value.
    seed : int, optional
        Seed everything first (deterministic on CPU).
    progress : bool
        Show a tqdm bar.
    desc : str
        Label of the progress bar.

    Returns
    -------
    History

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> x = torch.randn(64, 3); y = x @ torch.tensor([1.0, -2.0, 0.5])
    >>> loader = DataLoader(TensorDataset(x, y[:, None]), batch_size=16)
    >>> h = fit(torch.nn.Linear(3, 1), loader, torch.nn.functional.mse_loss, epochs=30, lr=0.1,
    ...         seed=0, progress=False, device="cpu")
    >>> h.last("train_loss") < 0.01
    True
    """
    if loss_fn is None and compute_loss is None:
        raise ValueError("give `loss_fn` or `compute_loss`")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"`epochs` must be a positive int, got {epochs!r}")
    if monitor_mode not in ("min", "max"):
        raise ValueError(f"`monitor_mode` must be 'min' or 'max', got {monitor_mode!r}")
    if seed is not None:
        config.seed_everything(seed)
    device = torch.device(device) if device is not None else config.device()
    amp = (device.type == "cuda") if amp is None else (amp and device.type == "cuda")
    compute_loss = compute_loss or _default_compute_loss(loss_fn)
    model.to(device, memory_format=config.memory_format(device))
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    # float16 needs loss scaling against underflow; bfloat16 does not.
    scaler = torch.amp.GradScaler("cuda", enabled=amp and not torch.cuda.is_bf16_supported())

    history = History()
    best_score, best_state = math.inf, None
    sign = 1.0 if monitor_mode == "min" else -1.0
    start = time.perf_counter()
    bar = tqdm(range(epochs), desc=desc, disable=not progress, unit="epoch")
    for epoch in bar:
        model.train()
        total, count = 0.0, 0
        for batch in train_loader:
            batch = to_device(batch, device)
            optimizer.zero_grad(set_to_none=True)
            with _autocast(device, amp):
                loss = compute_loss(model, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch}; lower the learning rate")
            scaler.scale(loss).backward()
            if grad_clip is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
            total += loss.item()
            count += 1
        if count == 0:
            raise ValueError("`train_loader` yielded no batches")
        values = {"train_loss": total / count}

        if val_loader is not None:
            model.eval()
            with torch.no_grad(), _autocast(device, amp):
                val_total, val_count = 0.0, 0
                for batch in val_loader:
                    val_total += compute_loss(model, to_device(batch, device)).item()
                    val_count += 1
                values["val_loss"] = val_total / max(val_count, 1)
                if evaluate is not None:
                    values.update(evaluate(model, val_loader, device))
        if scheduler is not None:
            scheduler.step()
        history.append(values)
        bar.set_postfix({k: f"{v:.4f}" for k, v in values.items()})

        if monitor is not None and monitor in values:
            score = sign * values[monitor]
            if score < best_score:
                best_score, history.best_epoch = score, epoch
                best_state = copy.deepcopy(model.state_dict())
        elif monitor is not None and monitor != "val_loss":
            raise KeyError(f"`monitor`={monitor!r} is not in the history keys {sorted(values)}")
    if best_state is not None:
        model.load_state_dict(best_state)
    history.seconds = time.perf_counter() - start
    model.eval()
    return history
