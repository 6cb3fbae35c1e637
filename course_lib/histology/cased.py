r"""CASED: curriculum adaptive sampling of patches for extreme class imbalance.

In a lung CT a nodule covers well under 0.1 % of the voxels. Trained on uniformly drawn patches,
a net sees almost only background and learns to predict nothing; trained on 50/50 balanced
patches, it rarely meets the few background patches that *look* like a nodule (vessels, noise
blobs) and fires on them. CASED keeps a probability per candidate patch and draws patches by it:

1. **Store a probability for each patch** — :class:`CASEDSampler` holds the model's last loss
   :math:`L_i` on every candidate patch :math:`i` (found by :func:`extract_candidates`).
2. **Probability is inverse of how well the model does**, stratified by class: within the
   positives :math:`P` and within the negatives :math:`N` separately,

   .. math::

       p_i = (1 - \epsilon)\,\frac{L_i}{\sum_{j \in \text{class}(i)} L_j} + \frac{\epsilon}{|\text{class}(i)|}

   (``smoothing`` :math:`\epsilon` keeps every patch reachable after its loss has dropped to ~0).
   Unseen patches start at ``initial_loss``, so each is tried early.
3. **Each batch is stratified**: exactly ``round(s_e * batch_size)`` patches come from the
   positives, the rest from the negatives, each drawn by its own probabilities.
4. **Curriculum**: the positive share :math:`s_e` of epoch :math:`e` falls linearly

   .. math::

       s_e = 1 - \min(e / E_c, 1)\,(1 - s_\infty)

   from 1 — lesion patches only: the net first learns a nodule against its immediate
   surroundings — to the stratified share :math:`s_\infty` (``pos_fraction``) after
   :math:`E_c` (``curriculum_epochs``) epochs, letting in more and more (hard) global context.
   ``pos_fraction=None`` ends at the empirical share of positives among the candidates; with
   ``adaptive=False`` that is uniform sampling from the data, the paper's end point. The linear
   schedule is this module's simple choice; the paper describes the same progression from
   nodule-centred patches to ever more global context.

With ``course_lib.training.fit`` the sampler needs no extra plumbing: every pass over the
DataLoader is one call of ``__iter__`` (one epoch, so the curriculum advances by itself),
patches are drawn lazily batch by batch (losses reported by one batch shape the next with
``num_workers=0``), and :func:`adaptive_compute_loss` reports the per-patch losses::

    candidates = extract_candidates(masks, patch_size=32)
    sampler = CASEDSampler(candidates.labels, num_samples=1024, batch_size=32, curriculum_epochs=4)
    loader = DataLoader(PatchDataset(images, masks, candidates), batch_size=32, sampler=sampler)
    per_patch_bce = lambda logits, y: F.binary_cross_entropy_with_logits(logits, y, reduction="none").mean((1, 2, 3))
    fit(model, loader, compute_loss=adaptive_compute_loss(sampler, per_patch_bce), epochs=8)

References
----------
Jesson, Guizard, Ghalehjegh, Goblot, Soudan & Chapados (2017). CASED: Curriculum Adaptive Sampling
for Extreme Data Imbalance. MICCAI (arXiv:1807.10819).
Loshchilov & Hutter (2016). Online batch selection for faster training of neural networks (loss-based sampling).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset, Sampler

from course_lib.metrics.validate import as_binary

__all__ = ["Candidates", "extract_candidates", "PatchDataset", "CASEDSampler", "adaptive_compute_loss"]


@dataclass(frozen=True)
class Candidates:
    """Candidate patch locations in a stack of images (``N`` patches of ``patch_size`` pixels square)."""

    image_index: np.ndarray  # (N,) int: which image the patch comes from
    top_left: np.ndarray  # (N, 2) int: (row, col) of the patch's top-left pixel
    labels: np.ndarray  # (N,) int: 1 if the patch holds any lesion pixel, else 0
    centred: np.ndarray  # (N,) bool: drawn around a lesion centre (True) or from the regular grid (False)
    patch_size: int

    def __len__(self) -> int:
        return len(self.labels)


def _as_mask_stack(masks) -> np.ndarray:
    m = as_binary(masks, "masks")
    if m.ndim == 4 and m.shape[1] == 1:
        m = m[:, 0]  # (n, 1, S, S) -> (n, S, S)
    if m.ndim != 3:
        raise ValueError(f"`masks` must have shape (n, H, W) or (n, 1, H, W), got {m.shape}")
    return m


def extract_candidates(masks, patch_size: int, *, stride: int | None = None, per_lesion: int = 4,
                       jitter: int | None = None, seed: int = 0) -> Candidates:
    """Candidate patches of large images with tiny positives: a regular grid plus lesion-centred patches.

    Parameters
    ----------
    masks : (n, H, W) or (n, 1, H, W) array_like of bool or {0, 1}
        Lesion masks; each connected component is one lesion.
    patch_size : int
        Side of the square patches (at most ``min(H, W)``).
    stride : int, optional
        Step of the regular grid; default ``patch_size // 2``. Grid patches model the empirical
        data distribution (almost all negative).
    per_lesion : int
        Patches centred on each lesion (its centroid plus a random shift) — the curriculum's start.
    jitter : int, optional
        Largest shift of a lesion-centred patch in pixels, per axis; default ``patch_size // 4``.
    seed : int
        Seed of the jitter.

    Returns
    -------
    Candidates
        Grid patches first, then the lesion-centred ones. ``labels`` is 1 for any patch holding a lesion pixel.

    Examples
    --------
    >>> masks = np.zeros((2, 32, 32), bool); masks[0, 10:12, 20:22] = True   # one 2x2 lesion in image 0
    >>> c = extract_candidates(masks, 8, stride=8, per_lesion=3)
    >>> len(c), int(c.labels.sum()), int(c.centred.sum())   # 2 x 16 grid patches (1 positive) + 3 centred
    (35, 4, 3)
    """
    m = _as_mask_stack(masks)
    n, h, w = m.shape
    if not isinstance(patch_size, (int, np.integer)) or not 1 <= patch_size <= min(h, w):
        raise ValueError(f"`patch_size` must be an int in [1, {min(h, w)}] for masks of shape {m.shape}, "
                         f"got {patch_size!r}")
    stride = max(patch_size // 2, 1) if stride is None else stride
    jitter = patch_size // 4 if jitter is None else jitter
    if stride < 1 or per_lesion < 0 or jitter < 0:
        raise ValueError(f"need `stride` >= 1, `per_lesion` >= 0, `jitter` >= 0; got {stride}, {per_lesion}, {jitter}")
    rng = np.random.default_rng(seed)
    rows, cols = np.arange(0, h - patch_size + 1, stride), np.arange(0, w - patch_size + 1, stride)
    grid = np.stack(np.meshgrid(rows, cols, indexing="ij"), axis=-1).reshape(-1, 2)  # (G, 2)
    index = [np.repeat(np.arange(n), len(grid))]
    corners = [np.tile(grid, (n, 1))]
    for i in range(n):
        lesions, count = ndimage.label(m[i])
        if count == 0 or per_lesion == 0:
            continue
        centres = np.array(ndimage.center_of_mass(m[i], lesions, range(1, count + 1)))  # (count, 2)
        centres = np.repeat(centres, per_lesion, axis=0) + rng.integers(-jitter, jitter + 1, (count * per_lesion, 2))
        top_left = np.round(centres - (patch_size - 1) / 2).astype(int)
        index.append(np.full(len(top_left), i))
        corners.append(np.clip(top_left, 0, [h - patch_size, w - patch_size]))
    image_index, top_left = np.concatenate(index), np.concatenate(corners)
    # lesion pixels per patch from a summed-area table: S[y, x] = sum of m[:y, :x]
    table = np.pad(m.cumsum(axis=1).cumsum(axis=2), ((0, 0), (1, 0), (1, 0)))  # (n, H + 1, W + 1)
    y0, x0, y1, x1 = top_left[:, 0], top_left[:, 1], top_left[:, 0] + patch_size, top_left[:, 1] + patch_size
    def corner(y, x):
        return table[image_index, y, x]  # (N,)

    counts = corner(y1, x1) - corner(y0, x1) - corner(y1, x0) + corner(y0, x0)  # lesion pixels per patch
    centred = np.arange(len(image_index)) >= n * len(grid)
    return Candidates(image_index, top_left, (counts > 0).astype(np.int64), centred, int(patch_size))


class PatchDataset(Dataset):
    """Crops candidate patches on the fly: item ``i`` is ``(image_patch, mask_patch, i)``.

    The index comes back so that the training step can report the loss of each patch to the sampler.

    Parameters
    ----------
    images : (n, C, H, W) array_like of float
    masks : (n, 1, H, W) or (n, H, W) array_like of {0, 1}
    candidates : Candidates
    """

    def __init__(self, images, masks, candidates: Candidates):
        self.images = torch.as_tensor(np.asarray(images, np.float32))
        m = _as_mask_stack(masks)
        self.masks = torch.as_tensor(m[:, None].astype(np.float32))  # (n, H, W) -> (n, 1, H, W)
        if self.images.ndim != 4 or self.images.shape[0] != m.shape[0] or self.images.shape[2:] != m.shape[1:]:
            raise ValueError(f"`images` (shape {tuple(self.images.shape)}) must be (n, C, H, W) matching "
                             f"`masks` (shape {m.shape})")
        self.candidates = candidates

    def __len__(self) -> int:
        return len(self.candidates)

    def __getitem__(self, i: int):
        k, (y, x), p = self.candidates.image_index[i], self.candidates.top_left[i], self.candidates.patch_size
        return self.images[k, :, y:y + p, x:x + p], self.masks[k, :, y:y + p, x:x + p], int(i)


class CASEDSampler(Sampler[int]):
    """Draws patch indices by loss, stratified by class, following the CASED curriculum.

    Parameters
    ----------
    labels : (N,) array_like of {0, 1}
        Class of every candidate patch (``Candidates.labels``). Both classes must be present.
    num_samples : int
        Patches per epoch (one pass of ``__iter__``).
    batch_size : int
        Size of the stratified blocks; use the DataLoader's ``batch_size`` so every batch is one block.
    pos_fraction : float or None
        Positive share of a batch once the curriculum is over; None: the empirical share.
    curriculum_epochs : int
        Epochs :math:`E_c` from "positives only" to ``pos_fraction``; 0 starts at ``pos_fraction``.
    adaptive : bool
        Draw within a class by loss (CASED). False: uniformly within a class (class-balanced sampling).
    smoothing : float
        Share of uniform probability mixed into the loss-based one, in [0, 1].
    initial_loss : float
        Loss assumed for patches not yet seen.
    seed : int

    Examples
    --------
    >>> sampler = CASEDSampler([1, 1, 0, 0, 0, 0], num_samples=4, batch_size=4, pos_fraction=0.5,
    ...                        curriculum_epochs=2, smoothing=0.0)
    >>> [sampler.positive_share(e) for e in range(4)]    # 1 -> 0.5 over two epochs, then constant
    [1.0, 0.75, 0.5, 0.5]
    >>> sampler.update([2, 3], [3.0, 1.0])                # negative 2 is now 3x harder than 3; 4, 5 unseen (1.0)
    >>> sampler.probabilities(epoch=2)[2:].tolist()       # 0.5 share x (3, 1, 1, 1) / 6
    [0.25, 0.08333333333333333, 0.08333333333333333, 0.08333333333333333]
    """

    def __init__(self, labels, *, num_samples: int, batch_size: int, pos_fraction: float | None = 0.5,
                 curriculum_epochs: int = 3, adaptive: bool = True, smoothing: float = 0.1,
                 initial_loss: float = 1.0, seed: int = 0):
        labels = as_binary(labels, "labels")
        if labels.ndim != 1:
            raise ValueError(f"`labels` must be one label per candidate, shape (N,), got {labels.shape}")
        if labels.all() or not labels.any():
            raise ValueError(f"`labels` (shape {labels.shape}) must contain both positives (1) and negatives (0)")
        for name, value in (("num_samples", num_samples), ("batch_size", batch_size)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"`{name}` must be a positive int, got {value!r}")
        if pos_fraction is not None and not 0 <= pos_fraction <= 1:
            raise ValueError(f"`pos_fraction` must lie in [0, 1] or be None, got {pos_fraction!r}")
        if not isinstance(curriculum_epochs, (int, np.integer)) or curriculum_epochs < 0:
            raise ValueError(f"`curriculum_epochs` must be an int >= 0, got {curriculum_epochs!r}")
        if not 0 <= smoothing <= 1 or not initial_loss > 0:
            raise ValueError(f"need 0 <= `smoothing` <= 1 and `initial_loss` > 0, got {smoothing}, {initial_loss}")
        self.labels = labels
        self.positives, self.negatives = np.flatnonzero(labels), np.flatnonzero(~labels)
        self.num_samples, self.batch_size = int(num_samples), int(batch_size)
        self.pos_fraction = labels.mean() if pos_fraction is None else float(pos_fraction)
        self.curriculum_epochs, self.adaptive, self.smoothing = int(curriculum_epochs), adaptive, float(smoothing)
        self.losses = np.full(len(labels), float(initial_loss))  # (N,) last loss seen on each patch
        self.epoch = 0  # advanced by one at the end of every pass of __iter__
        self.rng = np.random.default_rng(seed)

    def positive_share(self, epoch: int | None = None) -> float:
        """Positive share :math:`s_e` of a batch in ``epoch`` (default: the current one)."""
        epoch = self.epoch if epoch is None else epoch
        progress = 1.0 if self.curriculum_epochs == 0 else min(epoch / self.curriculum_epochs, 1.0)
        return 1.0 - progress * (1.0 - self.pos_fraction)

    def _within_class(self, pool: np.ndarray) -> np.ndarray:
        """(len(pool),) draw probabilities inside one class: loss-proportional, smoothed, or uniform."""
        uniform = np.full(len(pool), 1.0 / len(pool))
        if not self.adaptive:
            return uniform
        loss = self.losses[pool]
        by_loss = loss / loss.sum() if loss.sum() > 0 else uniform
        return (1.0 - self.smoothing) * by_loss + self.smoothing * uniform

    def probabilities(self, epoch: int | None = None) -> np.ndarray:
        """(N,) chance that one draw of ``epoch`` picks each patch (sums to 1; ignores batch rounding)."""
        share = self.positive_share(epoch)
        p = np.zeros(len(self.labels))
        p[self.positives] = share * self._within_class(self.positives)
        p[self.negatives] = (1.0 - share) * self._within_class(self.negatives)
        return p

    def sample(self, n: int, epoch: int | None = None) -> np.ndarray:
        """One stratified block of ``n`` indices, drawn with replacement: ``round(s_e * n)`` positives, shuffled."""
        n_pos = int(round(self.positive_share(epoch) * n))
        pos = self.rng.choice(self.positives, size=n_pos, p=self._within_class(self.positives))
        neg = self.rng.choice(self.negatives, size=n - n_pos, p=self._within_class(self.negatives))
        return self.rng.permutation(np.concatenate([pos, neg]))

    def update(self, indices, losses) -> None:
        """Store the model's latest loss on the patches ``indices``: ``(B,)`` ints and ``(B,)`` losses >= 0."""
        indices = np.asarray(indices.detach().cpu() if isinstance(indices, torch.Tensor) else indices).ravel()
        losses = np.asarray(losses.detach().float().cpu() if isinstance(losses, torch.Tensor) else losses,
                            dtype=np.float64).ravel()
        if indices.shape != losses.shape:
            raise ValueError(f"`indices` (shape {indices.shape}) and `losses` (shape {losses.shape}) must match")
        if indices.size and (indices.min() < 0 or indices.max() >= len(self.labels)):
            raise ValueError(f"`indices` must lie in [0, {len(self.labels)}), got [{indices.min()}, {indices.max()}]")
        if not np.all(np.isfinite(losses)) or (losses < 0).any():
            raise ValueError("`losses` must be finite and >= 0 (a per-patch loss such as BCE)")
        self.losses[indices.astype(np.int64)] = losses

    def __iter__(self):
        remaining = self.num_samples
        while remaining > 0:  # lazily, block by block, so updates from one batch shape the next
            block = self.sample(min(self.batch_size, remaining))
            remaining -= len(block)
            yield from block.tolist()
        self.epoch += 1

    def __len__(self) -> int:
        return self.num_samples


def adaptive_compute_loss(sampler: CASEDSampler, per_sample_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
    """A ``compute_loss`` for :func:`course_lib.training.fit` that reports each patch's loss to ``sampler``.

    ``per_sample_loss(logits, targets) -> (B,)``. Batches ``(x, y, idx)`` (from :class:`PatchDataset`)
    update the sampler; batches ``(x, y)`` (e.g. validation images) only return the mean loss.
    """

    def compute_loss(model: torch.nn.Module, batch) -> torch.Tensor:
        losses = per_sample_loss(model(batch[0]), batch[1])  # (B,)
        if len(batch) == 3:
            sampler.update(batch[2], losses)
        return losses.mean()

    return compute_loss
