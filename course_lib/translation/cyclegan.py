"""Training CycleGAN (unpaired) and a paired L1 translator (the faithful control), on (N, S, S) image arrays.

One CycleGAN step, as in the reference code (``models/cycle_gan_model.py``, ``optimize_parameters``):

1. **Generators.** Translate both ways (``fake_t = G(f)``, ``fake_f = H(t)``) and back (``H(fake_t)``,
   ``G(fake_f)``); ``L_G = L_GAN(G) + L_GAN(H) + lambda_cyc (L_cyc_F + L_cyc_T) + lambda_idt lambda_cyc (L_idt_T +
   L_idt_F)``. The discriminators are frozen (``requires_grad_(False)``) so their weights get no gradient, the
   optimiser of the generators is zeroed, ``L_G`` is back-propagated, one step.
2. **Discriminators.** Each sees real images of its domain and fakes from the history pool, **detached**: the
   discriminator's loss must not train the generators. Zero, back-propagate, one step.

The paired translator (pix2pix without its adversarial term unless asked: Isola et al. 2017) is the same generator
trained with ``|G(f) - t|_1`` on registered pairs. Supervision ties each output to *its own* target, so it has no
reason to add or remove a tumour; CycleGAN only sees that its outputs look like the target domain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib import config
from course_lib.translation.losses import (
    LAMBDA_CYCLE,
    LAMBDA_IDENTITY,
    cycle_consistency_loss,
    identity_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from course_lib.translation.models import (
    ImagePool,
    PatchDiscriminator,
    ResnetGenerator,
    from_gan_range,
    to_gan_range,
)

__all__ = ["TranslatorConfig", "CycleGAN", "cyclegan_step", "train_cyclegan", "train_paired", "translate"]


@dataclass(frozen=True)
class TranslatorConfig:
    width: int = 8  # generator channels k; 8 learns the FLAIR -> T1 contrast map of 32 px slices in ~300 steps
    n_blocks: int = 2  # residual blocks; receptive field ~45 px at 32 px covers a whole slice
    d_width: int = 8  # discriminator channels of the first layer
    d_layers: int = 1  # PatchGAN stride-2 layers: 16 px patches, tumour plus surroundings
    steps: int = 300  # optimiser steps (batches), not epochs: unpaired sets have no common epoch
    batch_size: int = 8  # the reference uses 1; 8 gives smoother CPU steps at 32 px
    lr: float = 2e-3  # Adam lr; the paper's 2e-4 is for 200 epochs, 10x is stable on these small nets and steps
    beta1: float = 0.5  # Adam beta1 as in the paper (0.9 makes the GAN oscillate)
    lambda_cycle: float = LAMBDA_CYCLE  # the paper's 10
    lambda_identity: float = LAMBDA_IDENTITY  # the reference code's 0.5 (relative to lambda_cycle)
    pool_size: int = 50  # history of generated images, the paper's 50
    adversarial_weight: float = 0.0  # paired translator only: weight of an LSGAN term next to L1 (pix2pix: 1/100)


class CycleGAN(nn.Module):
    """The four networks: ``g`` (F -> T), ``h`` (T -> F), ``d_t`` (real T1?) and ``d_f`` (real FLAIR?)."""

    def __init__(self, cfg: TranslatorConfig = TranslatorConfig()):
        super().__init__()
        self.g = ResnetGenerator(width=cfg.width, n_blocks=cfg.n_blocks)
        self.h = ResnetGenerator(width=cfg.width, n_blocks=cfg.n_blocks)
        self.d_t = PatchDiscriminator(width=cfg.d_width, n_layers=cfg.d_layers)
        self.d_f = PatchDiscriminator(width=cfg.d_width, n_layers=cfg.d_layers)


def cyclegan_step(model: CycleGAN, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                  real_f: torch.Tensor, real_t: torch.Tensor, *, lambda_cycle: float = LAMBDA_CYCLE,
                  lambda_identity: float = LAMBDA_IDENTITY, pool_f: ImagePool | None = None,
                  pool_t: ImagePool | None = None) -> dict[str, float]:
    """One CycleGAN update: the generators, then the discriminators.

    Parameters
    ----------
    model : CycleGAN
    opt_g, opt_d : torch.optim.Optimizer
        Optimisers over both generators' and both discriminators' parameters.
    real_f, real_t : (B, 1, H, W) tensors in [-1, 1]
        Unpaired batches of FLAIR and T1.
    lambda_cycle, lambda_identity : float
        Loss weights; the identity term is weighted ``lambda_identity * lambda_cycle``.
    pool_f, pool_t : ImagePool, optional
        Histories of fakes for the discriminators (none: the newest fakes, detached).

    Returns
    -------
    dict
        ``gan``, ``cycle``, ``identity``, ``g_total``, ``d`` (floats, before the update).
    """
    if real_f.ndim != 4 or real_t.ndim != 4:
        raise ValueError(f"`real_f` and `real_t` must be (B, C, H, W), got {tuple(real_f.shape)}, "
                         f"{tuple(real_t.shape)}")
    g, h, d_t, d_f = model.g, model.h, model.d_t, model.d_f
    # 1. generators (discriminators frozen)
    for d in (d_t, d_f):
        d.requires_grad_(False)
    opt_g.zero_grad()
    fake_t, fake_f = g(real_f), h(real_t)  # (B, 1, H, W) each
    gan = lsgan_generator_loss(d_t(fake_t)) + lsgan_generator_loss(d_f(fake_f))
    cycle = cycle_consistency_loss(h(fake_t), real_f) + cycle_consistency_loss(g(fake_f), real_t)
    identity = torch.zeros((), device=real_f.device)
    if lambda_identity > 0:
        identity = identity_loss(g(real_t), real_t) + identity_loss(h(real_f), real_f)
    g_total = gan + lambda_cycle * cycle + lambda_identity * lambda_cycle * identity
    g_total.backward()
    opt_g.step()
    # 2. discriminators, on detached fakes from the history
    for d in (d_t, d_f):
        d.requires_grad_(True)
    opt_d.zero_grad()
    old_t = pool_t.query(fake_t) if pool_t is not None else fake_t.detach()
    old_f = pool_f.query(fake_f) if pool_f is not None else fake_f.detach()
    d_loss = lsgan_discriminator_loss(d_t(real_t), d_t(old_t)) + lsgan_discriminator_loss(d_f(real_f), d_f(old_f))
    d_loss.backward()
    opt_d.step()
    return {"gan": gan.item(), "cycle": cycle.item(), "identity": identity.item(), "g_total": g_total.item(),
            "d": d_loss.item()}


def _as_batch_tensor(images: np.ndarray, name: str) -> torch.Tensor:
    """(N, S, S) array in [0, 1] -> (N, 1, S, S) float tensor in [-1, 1]."""
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"`{name}` must be (N, H, W), got shape {images.shape}")
    if len(images) == 0:
        raise ValueError(f"`{name}` is empty")
    return to_gan_range(torch.from_numpy(images.astype(np.float32))[:, None])


def train_cyclegan(source: np.ndarray, target: np.ndarray, cfg: TranslatorConfig = TranslatorConfig(), *,
                   seed: int = 0, callback: Callable[[int, CycleGAN, dict], None] | None = None,
                   progress: bool = False) -> tuple[CycleGAN, list[dict]]:
    """Train a CycleGAN on unpaired source (FLAIR) and target (T1) slices.

    Parameters
    ----------
    source, target : (N, S, S) and (M, S, S) float arrays in [0, 1]
        The two domains (different subjects; nothing is paired).
    cfg : TranslatorConfig
    seed : int
        Seeds the weights, batch order and history pool: the same seed gives the same translator on CPU.
    callback : callable, optional
        ``callback(step, model, losses)`` after every step (e.g. to draw live samples every 50 steps).
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    model : CycleGAN
        In eval mode, on the course device.
    history : list of dict
        The losses of every step.
    """
    f_all, t_all = _as_batch_tensor(source, "source"), _as_batch_tensor(target, "target")
    generator = config.seed_everything(seed)
    device = config.device()
    model = CycleGAN(cfg).to(device, memory_format=config.memory_format(device))
    opt_g = torch.optim.Adam([*model.g.parameters(), *model.h.parameters()], lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam([*model.d_t.parameters(), *model.d_f.parameters()], lr=cfg.lr, betas=(cfg.beta1, 0.999))
    pool_f, pool_t = ImagePool(cfg.pool_size, generator=generator), ImagePool(cfg.pool_size, generator=generator)
    history = []
    model.train()
    for step in tqdm(range(cfg.steps), desc="CycleGAN", disable=not progress, leave=False):
        rows_f = torch.randint(len(f_all), (cfg.batch_size,), generator=generator)
        rows_t = torch.randint(len(t_all), (cfg.batch_size,), generator=generator)
        losses = cyclegan_step(model, opt_g, opt_d, f_all[rows_f].to(device), t_all[rows_t].to(device),
                               lambda_cycle=cfg.lambda_cycle, lambda_identity=cfg.lambda_identity,
                               pool_f=pool_f, pool_t=pool_t)
        history.append(losses)
        if callback is not None:
            callback(step, model, losses)
    return model.eval(), history


def train_paired(source: np.ndarray, target: np.ndarray, cfg: TranslatorConfig = TranslatorConfig(), *,
                 seed: int = 0, callback: Callable[[int, ResnetGenerator, float], None] | None = None,
                 progress: bool = False) -> tuple[ResnetGenerator, list[float]]:
    """Train the F -> T generator on registered pairs with ``|G(f) - t|_1`` (+ an optional LSGAN term).

    Parameters
    ----------
    source, target : (N, S, S) float arrays in [0, 1]
        Row ``i`` of both is the same slice in the two contrasts.
    cfg : TranslatorConfig
        ``adversarial_weight > 0`` adds ``weight * L_GAN`` with a PatchGAN judging (source, output) pairs... here
        the output alone, as in CycleGAN's discriminator.
    seed : int
    callback : callable, optional
        ``callback(step, generator, l1)`` after every step (e.g. to score a validation set every 50 steps).
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    generator : ResnetGenerator
        In eval mode.
    history : list of float
        The L1 loss of every step.
    """
    f_all, t_all = _as_batch_tensor(source, "source"), _as_batch_tensor(target, "target")
    if f_all.shape != t_all.shape:
        raise ValueError(f"paired `source` (shape {tuple(f_all.shape[::2])}) and `target` "
                         f"(shape {tuple(t_all.shape[::2])}) must have the same shape")
    generator = config.seed_everything(seed)
    device = config.device()
    layout = config.memory_format(device)
    g = ResnetGenerator(width=cfg.width, n_blocks=cfg.n_blocks).to(device, memory_format=layout)
    d = PatchDiscriminator(width=cfg.d_width, n_layers=cfg.d_layers).to(device, memory_format=layout)
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    history = []
    g.train()
    for step in tqdm(range(cfg.steps), desc="paired L1", disable=not progress, leave=False):
        rows = torch.randint(len(f_all), (cfg.batch_size,), generator=generator)
        real_f, real_t = f_all[rows].to(device), t_all[rows].to(device)
        opt_g.zero_grad()
        fake_t = g(real_f)
        l1 = (fake_t - real_t).abs().mean()
        loss = l1
        if cfg.adversarial_weight > 0:
            d.requires_grad_(False)
            loss = loss + cfg.adversarial_weight * lsgan_generator_loss(d(fake_t))
        loss.backward()
        opt_g.step()
        if cfg.adversarial_weight > 0:
            d.requires_grad_(True)
            opt_d.zero_grad()
            lsgan_discriminator_loss(d(real_t), d(fake_t.detach())).backward()
            opt_d.step()
        history.append(l1.item())
        if callback is not None:
            callback(step, g, history[-1])
    return g.eval(), history


@torch.no_grad()
def translate(generator: nn.Module, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Translate (N, S, S) slices in [0, 1] with a generator; returns (N, S, S) float32 in [0, 1]."""
    x = _as_batch_tensor(images, "images")
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    out = [from_gan_range(generator(x[i:i + batch_size].to(device))).cpu() for i in range(0, len(x), batch_size)]
    generator.train(was_training)
    return torch.cat(out)[:, 0].clamp(0, 1).numpy()
