"""The CycleGAN losses, one function each (Zhu, Park, Isola & Efros, *Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks*, ICCV 2017; reference code: junyanz/pytorch-CycleGAN-and-pix2pix).

Two domains, F (FLAIR) and T (T1); two generators ``G: F -> T`` and ``H: T -> F``; two discriminators ``D_T`` (is
this a real T1?) and ``D_F`` (is this a real FLAIR?). The least-squares GAN (LSGAN, Mao et al. 2017) replaces the
log-loss of the original GAN with squared errors to the labels 1 (real) and 0 (fake):

.. code-block:: text

    L_D(D_T)  = 1/2 E_t[(D_T(t) - 1)^2] + 1/2 E_f[D_T(G(f))^2]          the discriminator: reals -> 1, fakes -> 0
    L_GAN(G)  = E_f[(D_T(G(f)) - 1)^2]                                   the generator: make D_T call fakes real
    L_cyc     = E_f[|H(G(f)) - f|_1] + E_t[|G(H(t)) - t|_1]              translate there and back again
    L_idt     = E_t[|G(t) - t|_1] + E_f[|H(f) - f|_1]                   a real T1 fed to G stays as it is
    L_G       = L_GAN(G) + L_GAN(H) + lambda_cyc L_cyc + lambda_idt lambda_cyc L_idt,  lambda_cyc = 10

Nothing in these losses says that a tumour must survive translation: ``L_GAN`` only asks the translated images to
look like the target domain *as a whole*. That is the chapter's point.

Inputs are tensors of the same shape; every loss is a mean over all elements (PyTorch's default reduction), as in
the reference code. Discriminator outputs are raw scores (no sigmoid), one per patch.
"""

from __future__ import annotations

import torch

__all__ = [
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "cycle_consistency_loss",
    "identity_loss",
    "LAMBDA_CYCLE",
    "LAMBDA_IDENTITY",
]

LAMBDA_CYCLE = 10.0  # the paper's weight of the cycle loss
LAMBDA_IDENTITY = 0.5  # identity weight relative to LAMBDA_CYCLE (reference code's default)


def _check_pair(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    for value, name in ((a, name_a), (b, name_b)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"`{name}` must be a torch.Tensor, got {type(value).__name__}")
        if not value.is_floating_point():
            raise TypeError(f"`{name}` must be a floating-point tensor, got {value.dtype}")
    if a.shape != b.shape:
        raise ValueError(f"`{name_a}` (shape {tuple(a.shape)}) must have the same shape as `{name_b}` "
                         f"(shape {tuple(b.shape)})")


def lsgan_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Least-squares discriminator loss: ``0.5 * (mean((real - 1)^2) + mean(fake^2))``.

    Parameters
    ----------
    real_scores : (B, 1, h, w) tensor
        Discriminator outputs (patch scores, no sigmoid) on real images of its domain.
    fake_scores : (B, 1, h, w) tensor
        Its outputs on translated images; compute them from **detached** fakes, so that the discriminator's loss
        does not reach the generator.

    Returns
    -------
    0-d tensor
        The loss; 0 for a perfect discriminator (1 on reals, 0 on fakes).

    Examples
    --------
    >>> lsgan_discriminator_loss(torch.ones(2, 1, 3, 3), torch.zeros(2, 1, 3, 3)).item()
    0.0
    """
    _check_pair(real_scores, fake_scores, "real_scores", "fake_scores")
    return 0.5 * (((real_scores - 1) ** 2).mean() + (fake_scores**2).mean())


def lsgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Least-squares generator loss: ``mean((fake - 1)^2)``, small when the discriminator calls the fakes real.

    Parameters
    ----------
    fake_scores : (B, 1, h, w) tensor
        Discriminator outputs on translated images (not detached: the gradient flows into the generator).

    Returns
    -------
    0-d tensor
    """
    _check_pair(fake_scores, fake_scores, "fake_scores", "fake_scores")
    return ((fake_scores - 1) ** 2).mean()


def cycle_consistency_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Cycle loss of one direction: ``mean(|H(G(x)) - x|)``, the L1 distance of the round trip to where it began.

    Parameters
    ----------
    reconstructed : (B, C, H, W) tensor
        The image translated to the other domain and back (``H(G(f))`` for a FLAIR ``f``).
    original : (B, C, H, W) tensor
        The image it started from (``f``) — the same domain as ``reconstructed``.

    Returns
    -------
    0-d tensor
        Add the two directions and weight by ``LAMBDA_CYCLE``.
    """
    _check_pair(reconstructed, original, "reconstructed", "original")
    return (reconstructed - original).abs().mean()


def identity_loss(same: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Identity loss: ``mean(|G(t) - t|)`` for a real image ``t`` of the generator's *output* domain.

    Parameters
    ----------
    same : (B, C, H, W) tensor
        ``G(t)``: the F -> T generator applied to a real T1 (or ``H(f)`` for the T -> F generator and a FLAIR).
    real : (B, C, H, W) tensor
        ``t`` itself.

    Returns
    -------
    0-d tensor
        Weighted by ``LAMBDA_IDENTITY * LAMBDA_CYCLE`` in the generators' loss.
    """
    _check_pair(same, real, "same", "real")
    return (same - real).abs().mean()
