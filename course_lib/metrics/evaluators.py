"""Validation hooks for :func:`course_lib.training.fit`: the Dice of a segmentation net, at one threshold or the best.

``fit(..., evaluate=dice_evaluator(), monitor="val_dice", monitor_mode="max")`` keeps the epoch with the best
validation Dice. With several ``thresholds`` the hook reports the best Dice over them and the threshold that gave
it, so a checkpoint *and* its threshold are both chosen on validation data (never on the test set), the fair way to
compare losses whose outputs are calibrated differently (BCE vs soft Dice).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from course_lib.metrics.segmentation import dice

__all__ = ["dice_evaluator", "best_threshold_dice"]


def best_threshold_dice(probabilities, target, thresholds: Sequence[float]) -> tuple[float, float]:
    """Best pooled Dice of ``probabilities > t`` over ``thresholds``, and the first ``t`` that reaches it.

    Parameters
    ----------
    probabilities : (...) array_like of float in [0, 1]
    target : (...) array_like of bool, same shape
    thresholds : sequence of float
        Candidate thresholds, in the order ties are broken (the first best one wins).

    Returns
    -------
    (dice, threshold) : tuple of float

    Examples
    --------
    >>> best_threshold_dice([0.2, 0.4, 0.9], [0, 1, 1], thresholds=(0.5, 0.3))
    (1.0, 0.3)
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if len(thresholds) == 0:
        raise ValueError("`thresholds` must hold at least one threshold")
    scores = [dice(probabilities > t, target) for t in thresholds]
    best = int(np.argmax(scores))
    return float(scores[best]), float(thresholds[best])


def dice_evaluator(thresholds: Sequence[float] = (0.5,), *, name: str = "val_dice", channel: int = 0,
                   target_threshold: float = 0.5) -> Callable[[torch.nn.Module, Iterable, torch.device], dict]:
    """An ``evaluate`` hook for ``fit``: Dice of ``sigmoid(logits[:, channel]) > t`` on the validation loader.

    Parameters
    ----------
    thresholds : sequence of float
        Probability thresholds; the hook reports the best Dice over them (one threshold: plain Dice;
        0.5 is ``logit > 0``).
    name : str
        History key of the Dice (monitor it with ``monitor=name, monitor_mode="max"``); the threshold that gave it
        is reported as ``name + "_threshold"``.
    channel : int
        Output channel of the ``(B, C, H, W)`` logits to score.
    target_threshold : float
        Targets ``> target_threshold`` are foreground (0/1 float masks of shape ``(B, 1, H, W)`` or ``(B, H, W)``).

    Returns
    -------
    callable ``evaluate(model, loader, device) -> {name: dice, name + "_threshold": t}``

    Examples
    --------
    >>> from course_lib.training import fit
    >>> # fit(model, train_loader, loss_fn, val_loader=val_loader, evaluate=dice_evaluator(),
    >>> #     monitor="val_dice", monitor_mode="max")
    """
    thresholds = tuple(float(t) for t in thresholds)
    if not thresholds or not all(0.0 <= t <= 1.0 for t in thresholds):
        raise ValueError(f"`thresholds` must be probabilities in [0, 1], at least one, got {thresholds}")

    def evaluate(model, loader, device) -> dict[str, float]:
        from course_lib.training import predict  # core -> core; imported here to keep metrics light

        logits, target = predict(model, loader, device)  # (B, C, H, W), (B, 1, H, W) or (B, H, W)
        if logits.ndim != 4:
            raise ValueError(f"the model must return (B, C, H, W) logits, got shape {tuple(logits.shape)}")
        probabilities = torch.sigmoid(logits[:, channel]).numpy()  # (B, H, W)
        mask = (target.reshape(probabilities.shape) > target_threshold).numpy()
        score, threshold = best_threshold_dice(probabilities, mask, thresholds)
        return {name: score, f"{name}_threshold": threshold}

    return evaluate
