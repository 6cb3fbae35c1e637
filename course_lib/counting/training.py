"""Training a counting net: the loop, model selection on validation, and counts of new images.

:func:`train_density_model` is the chapter's one training loop for a
:class:`~course_lib.counting.models.DensityFCN` or a :class:`~course_lib.counting.models.CountCeptionNet`:
a :class:`~course_lib.counting.training_data.DensityDataset` of random crops (flips, optional lighting) for
training, whole unaugmented images for validation, Adam with a cosine learning-rate decay, and the lecture's
L1 loss (:func:`~course_lib.counting.density.l1_density_loss`) unless told otherwise. After every epoch the
count MAE of the validation images is measured (from the same pass over them as the validation loss), and the
weights of the best epoch are restored at the end: the choice is made on the validation split only. The loop
itself is :func:`course_lib.training.fit`, shared by every chapter; what is particular to counting is the evaluate
hook (counts, not losses) and the data.

:func:`predict_outputs` and :func:`predict_counts` run a trained net on new images in evaluation mode.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from course_lib.counting.density import l1_density_loss
from course_lib.counting.training_data import DensityDataset, Lighting, image_tensor
from course_lib.training import History, fit

__all__ = ["train_density_model", "predict_outputs", "predict_counts", "count_mae_hook"]


@torch.no_grad()
def predict_outputs(model: nn.Module, images, *, batch_size: int = 16, device=None) -> torch.Tensor:
    """Raw model outputs for (n, H, W) or (n, H, W, 3) images, on the CPU: (n, K, H', W')."""
    x = image_tensor(images)  # (n, C, H, W)
    device = device or next(model.parameters()).device
    model.eval()
    return torch.cat([model(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])


def predict_counts(model: nn.Module, images, *, batch_size: int = 16, device=None) -> np.ndarray:
    """Predicted counts (n, K) of a :class:`DensityFCN` or :class:`CountCeptionNet`; K = output channels."""
    return model.counts(predict_outputs(model, images, batch_size=batch_size, device=device)).numpy()


def _count_mae(net: nn.Module, pairs) -> dict[str, float]:
    """Count MAE over ``(output, target)`` batches, each (B, K, H', W'); channel 0 = any cell, then the classes."""
    errors = torch.cat([(net.counts(out.float()) - net.counts(y.float())).abs().cpu() for out, y in pairs])  # (n, K)
    # the mean over channels: with several classes, selection also rewards counting each class right
    return {"val_count_mae": errors.mean().item()}


def count_mae_hook(net: nn.Module, loader, device) -> dict[str, float]:
    """``fit``'s evaluate hook: count MAE on the validation images (called in eval mode, without gradients)."""
    return _count_mae(net, ((net(x.to(device)), y.to(device)) for x, y in loader))


class _OncePerEpoch:
    """The validation loss and the count MAE from one pass over the validation images, not two.

    ``fit`` computes the validation loss batch by batch, then calls its evaluate hook, which would run the net over
    the same images again. Here the loss keeps the outputs it computed in evaluation mode, and the hook reads them.
    """

    def __init__(self, loss_fn: Callable):
        self.loss_fn, self.outputs = loss_fn, []

    def compute_loss(self, model: nn.Module, batch) -> torch.Tensor:
        out = model(batch[0])
        if not model.training:  # a validation batch: keep it for the hook
            self.outputs.append((out, batch[1]))
        return self.loss_fn(out, batch[1])

    def evaluate(self, net: nn.Module, loader, device) -> dict[str, float]:
        pairs, self.outputs = self.outputs, []
        if not pairs:
            return count_mae_hook(net, loader, device)
        # every pass over a DataLoader draws a seed from torch's global generator, which also draws the training
        # crops: starting the skipped pass keeps that draw, so training is the same as with two passes
        iter(loader)
        return _count_mae(net, pairs)


def train_density_model(model: nn.Module, train_images, train_dots, val_images, val_dots, *, train_classes=None,
                        val_classes=None, n_classes: int | None = None, sigma: float = 2.0, crop: int | None = 64,
                        flips: bool = True, lighting: Lighting | None = None, loss_fn: Callable | None = None,
                        epochs: int = 20, batch_size: int = 8, lr: float = 2e-3, seed: int = 0, device="cpu",
                        progress: bool = False) -> History:
    """Train a :class:`DensityFCN` or :class:`CountCeptionNet`; keep the weights of the best validation count MAE.

    Training uses random crops, flips and (optionally) ``lighting``; validation uses whole, unaugmented images.
    The weights restored at the end are those of the epoch with the lowest ``val_count_mae`` (count MAE over the
    validation images, averaged over the output channels), so the choice is made on the validation split only.

    Parameters
    ----------
    model : DensityFCN or CountCeptionNet
    train_images, val_images : (n, H, W) or (n, H, W, 3) arrays
    train_dots, val_dots : lists of (N_i, 2) arrays
    train_classes, val_classes : lists of (N_i,) int arrays, optional
        Multi-class counting (with ``n_classes``; the model needs ``1 + n_classes`` outputs).
    sigma : float
        Gaussian width of the density targets.
    loss_fn : callable, optional
        Default :func:`l1_density_loss`; e.g. a :class:`~course_lib.counting.multiclass.MultiClassDensityLoss`.
    epochs, batch_size, lr, seed, device, progress
        As :func:`course_lib.training.fit`.

    Returns
    -------
    History
        With ``train_loss``, ``val_loss`` and ``val_count_mae`` per epoch; ``best_epoch`` is the restored one.
    """
    if getattr(model, "target", None) not in ("density", "countception"):
        raise TypeError(f"`model` must be a DensityFCN or CountCeptionNet, got {type(model).__name__}")
    common = {"target": model.target, "n_classes": n_classes, "sigma": sigma,
              "target_scale": getattr(model, "target_scale", 1.0), "window": getattr(model, "window", 16)}
    train = DensityDataset(train_images, train_dots, classes=train_classes, crop=crop, flips=flips,
                           lighting=lighting, **common)
    val = DensityDataset(val_images, val_dots, classes=val_classes, **common)
    channels = train.maps.shape[1] if model.target == "density" else 1
    if channels != model.out_channels:
        raise ValueError(f"`model` has {model.out_channels} outputs but the targets have "
                         f"{channels} channels (1 + n_classes)")
    loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    val_loader = DataLoader(val, batch_size=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    # cosine decay: big steps early, small ones at the end, where the validation MAE settles
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    once = _OncePerEpoch(loss_fn or l1_density_loss)
    return fit(model, loader, compute_loss=once.compute_loss, epochs=epochs, optimizer=optimizer,
               scheduler=scheduler, val_loader=val_loader,
               evaluate=once.evaluate, monitor="val_count_mae", monitor_mode="min", seed=seed,
               device=device, progress=progress, desc=type(model).__name__)
