"""One CycleGAN step does what the recipe says (checked against autograd on copies), training is reproducible,
the paired translator learns."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from course_lib.translation.cyclegan import (
    CycleGAN,
    TranslatorConfig,
    cyclegan_step,
    train_cyclegan,
    train_paired,
    translate,
)
from course_lib.translation.synthetic_brain import brain_slices

TINY = TranslatorConfig(width=2, n_blocks=1, d_width=2, d_layers=1, steps=3, batch_size=2, pool_size=0)


def setup(seed=0):
    torch.manual_seed(seed)
    model = CycleGAN(TINY)
    opt_g = torch.optim.SGD([*model.g.parameters(), *model.h.parameters()], lr=0.1)
    opt_d = torch.optim.SGD([*model.d_t.parameters(), *model.d_f.parameters()], lr=0.1)
    real_f, real_t = torch.rand(2, 1, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    return model, opt_g, opt_d, real_f, real_t


def expected_generator_grads(model, real_f, real_t, lam_cyc=10.0, lam_idt=0.5):
    """Gradients of L_G written out with MSE / L1 from torch.nn.functional, on a copy."""
    m = copy.deepcopy(model)
    fake_t, fake_f = m.g(real_f), m.h(real_t)
    s_t, s_f = m.d_t(fake_t), m.d_f(fake_f)
    gan = F.mse_loss(s_t, torch.ones_like(s_t)) + F.mse_loss(s_f, torch.ones_like(s_f))
    cyc = F.l1_loss(m.h(fake_t), real_f) + F.l1_loss(m.g(fake_f), real_t)
    idt = F.l1_loss(m.g(real_t), real_t) + F.l1_loss(m.h(real_f), real_f)
    (gan + lam_cyc * cyc + lam_idt * lam_cyc * idt).backward()
    return [p.grad.clone() for p in [*m.g.parameters(), *m.h.parameters()]], (gan, cyc, idt), (fake_t, fake_f)


def test_step_reports_the_losses_and_updates_generators_with_their_own_gradient_only(one_thread):
    model, opt_g, opt_d, real_f, real_t = setup()
    grads, (gan, cyc, idt), _ = expected_generator_grads(model, real_f, real_t)
    losses = cyclegan_step(model, opt_g, opt_d, real_f, real_t)
    assert losses["gan"] == pytest.approx(gan.item(), rel=1e-5)
    assert losses["cycle"] == pytest.approx(cyc.item(), rel=1e-5)
    assert losses["identity"] == pytest.approx(idt.item(), rel=1e-5)
    got = [p.grad for p in [*model.g.parameters(), *model.h.parameters()]]
    # the discriminators' step ran after the generators' step: had it reached the generators (fakes not
    # detached), their stored gradients would differ from those of L_G
    for g, e in zip(got, grads, strict=True):
        assert torch.allclose(g, e, atol=1e-6)


def test_discriminators_learn_from_detached_fakes_of_the_generators_before_their_update(one_thread):
    model, opt_g, opt_d, real_f, real_t = setup(1)
    m = copy.deepcopy(model)
    with torch.no_grad():
        fake_t, fake_f = m.g(real_f), m.h(real_t)
    s = [m.d_t(real_t), m.d_t(fake_t), m.d_f(real_f), m.d_f(fake_f)]
    d_loss = 0.5 * (F.mse_loss(s[0], torch.ones_like(s[0])) + F.mse_loss(s[1], torch.zeros_like(s[1]))) \
        + 0.5 * (F.mse_loss(s[2], torch.ones_like(s[2])) + F.mse_loss(s[3], torch.zeros_like(s[3])))
    d_loss.backward()
    expected = [p.grad.clone() for p in [*m.d_t.parameters(), *m.d_f.parameters()]]
    losses = cyclegan_step(model, opt_g, opt_d, real_f, real_t)
    assert losses["d"] == pytest.approx(d_loss.item(), rel=1e-5)
    for g, e in zip([p.grad for p in [*model.d_t.parameters(), *model.d_f.parameters()]], expected, strict=True):
        assert torch.allclose(g, e, atol=1e-6), "D's gradient must come from L_D alone (not from L_G)"


def test_identity_loss_is_skipped_when_its_weight_is_zero(one_thread):
    model, opt_g, opt_d, real_f, real_t = setup(2)
    assert cyclegan_step(model, opt_g, opt_d, real_f, real_t, lambda_identity=0.0)["identity"] == 0.0


def test_step_refuses_flat_batches():
    model, opt_g, opt_d, real_f, _ = setup()
    with pytest.raises(ValueError, match=r"`real_f` and `real_t` must be \(B, C, H, W\)"):
        cyclegan_step(model, opt_g, opt_d, real_f, torch.zeros(16, 16))


def test_training_is_reproducible_with_a_seed(one_thread):
    data = brain_slices(6, 0.5, seed=0)
    cfg = TranslatorConfig(width=2, n_blocks=1, d_width=2, steps=3, batch_size=2, pool_size=2)
    a, hist_a = train_cyclegan(data.flair, data.t1, cfg, seed=5)
    b, hist_b = train_cyclegan(data.flair, data.t1, cfg, seed=5)
    assert hist_a == hist_b
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    c, _ = train_cyclegan(data.flair, data.t1, cfg, seed=6)
    assert not torch.equal(a.g.encoder[1].weight, c.g.encoder[1].weight)


def test_paired_translator_learns_the_contrast(one_thread):
    data = brain_slices(40, 0.5, seed=1)
    cfg = TranslatorConfig(width=4, n_blocks=1, steps=60, batch_size=4)
    generator, history = train_paired(data.flair, data.t1, cfg, seed=0)
    assert np.mean(history[-10:]) < 0.5 * np.mean(history[:3])
    out = translate(generator, data.flair[:5])
    assert out.shape == (5, 32, 32) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    assert np.abs(out - data.t1[:5]).mean() < np.abs(data.flair[:5] - data.t1[:5]).mean(), (
        "the translation must be closer to the real T1 than the FLAIR itself")


def test_paired_translator_refuses_unpaired_shapes():
    with pytest.raises(ValueError, match="paired `source`.*must have the same shape"):
        train_paired(np.zeros((4, 8, 8)), np.zeros((3, 8, 8)), TINY)
    with pytest.raises(ValueError, match=r"`images` must be \(N, H, W\), got shape \(8, 8\)"):
        translate(CycleGAN(TINY).g, np.zeros((8, 8)))


@pytest.mark.parametrize("method", ["paired", "cyclegan"])
def test_a_checkpoint_read_by_the_callback_is_the_shorter_run(one_thread, method):
    # benchmarks/translation_budget.py reads every budget from one long run: translating inside the callback must
    # not change the training, and step k of a long run must be the k-step translator
    data = brain_slices(8, 0.5, seed=2)
    cfg = TranslatorConfig(width=2, n_blocks=1, d_width=2, steps=4, batch_size=2, pool_size=2)
    short = TranslatorConfig(**{**cfg.__dict__, "steps": 2})
    seen = {}

    def read(step, generator):
        seen[step + 1] = translate(generator, data.flair)

    if method == "paired":
        long_history = train_paired(data.flair, data.t1, cfg, seed=3, callback=lambda k, g, _: read(k, g))[1]
        generator, history = train_paired(data.flair, data.t1, short, seed=3)
    else:
        long_history = train_cyclegan(data.flair, data.t1, cfg, seed=3, callback=lambda k, m, _: read(k, m.g))[1]
        model, history = train_cyclegan(data.flair, data.t1, short, seed=3)
        generator = model.g
    assert sorted(seen) == [1, 2, 3, 4], "the callback runs after every step"
    assert long_history[:2] == history
    np.testing.assert_array_equal(seen[2], translate(generator, data.flair))
