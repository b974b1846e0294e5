"""Null-text inversion (Mokady et al.): closed-form and toy checks."""
import pytest
import torch

import minidiff as md
from toy import train2d
from toy.mixtures import conditional_mixture


@pytest.fixture(scope="module")
def toy():
    model = train2d.load("cond-ddpm")
    x0, labels = train2d.conditional_sampler(conditional_mixture())(200, torch.Generator().manual_seed(0))
    return model, x0, model.embed(labels).detach(), model.null_embedding


def test_zero_iterations_is_ddim_inversion(toy):
    model, x0, cond, null = toy
    result = md.null_text_invert(model, x0, cond, null, steps=20, inner_steps=0)
    assert torch.equal(result.latent, md.ddim_invert(model, x0, cond, 20))
    assert all(torch.equal(n, null.expand(len(x0), -1)) for n in result.nulls)
    assert result.inner_iters == [0] * 20


def test_per_step_nulls_reconstruct_under_cfg(toy):
    model, x0, cond, null = toy
    plain = md.reconstruction_error(x0, md.ddim_sample(model, md.ddim_invert(model, x0, cond, 50, 7.5, null), cond, 50, 7.5, null))
    nti = md.null_text_invert(model, x0, cond, null, steps=50, guidance=7.5)
    nti_err = md.reconstruction_error(x0, md.ddim_sample(model, nti.latent, cond, 50, 7.5, nti.nulls))
    glob = md.null_text_invert(model, x0, cond, null, steps=50, guidance=7.5, per_step=False)
    glob_err = md.reconstruction_error(x0, md.ddim_sample(model, glob.latent, cond, 50, 7.5, glob.nulls))
    assert nti_err < plain / 50
    assert nti_err < glob_err < plain
    assert 1 <= sum(nti.inner_iters) / 50 <= 10


def test_other_precisions_are_refused_by_name(toy):
    model, x0, cond, null = toy
    with pytest.raises(ValueError, match="runs in float32, got torch.float64"):
        md.null_text_invert(model, x0.double(), cond, null)


@pytest.mark.parametrize("steps", [125, 250])
def test_long_schedules_keep_a_positive_learning_rate(toy, steps):
    """lr·(1 − i/100) went negative past 100 steps; lr·(1 − i/(2T)) ends at lr/2 for any T."""
    model, x0, cond, null = toy
    seen = []
    original = torch.optim.Adam

    class Recording(original):
        def __init__(self, params, lr):
            seen.append(lr)
            super().__init__(params, lr=lr)

    torch.optim.Adam = Recording
    try:
        nti = md.null_text_invert(model, x0[:20], cond[:20], null, steps=steps, inner_steps=1)
    finally:
        torch.optim.Adam = original
    assert len(seen) == steps and min(seen) > 0
    assert seen[0] == pytest.approx(1e-2) and seen[-1] == pytest.approx(1e-2 * (1 - (steps - 1) / (2 * steps)))
    assert len(nti.nulls) == steps


def test_each_image_stops_on_its_own_loss(toy):
    """An image whose own loss is below the threshold stops, and its ∅_t stays where it stopped,
    as it would alone: a batch behaves as its images inverted one by one."""
    model, x0, cond, null = toy
    loose = md.null_text_invert(model, x0[:8], cond[:8], null, steps=20, inner_steps=10, early_stop=1e9)
    assert loose.inner_iters == [1.0] * 20  # every image stops after its first step
    strict = md.null_text_invert(model, x0[:8], cond[:8], null, steps=20, inner_steps=10, early_stop=-1.0)
    assert strict.inner_iters == [10.0] * 20
    mixed = md.null_text_invert(model, x0[:8], cond[:8], null, steps=20, inner_steps=10)
    alone = [md.null_text_invert(model, x0[i:i + 1], cond[i:i + 1], null, steps=20, inner_steps=10) for i in range(8)]
    for step in range(20):
        assert mixed.inner_iters[step] == pytest.approx(sum(a.inner_iters[step] for a in alone) / 8)
    assert any(not float(n).is_integer() for n in mixed.inner_iters)  # images stopped at different iterations


def test_each_step_warm_starts_from_the_previous_null(toy):
    """With one inner iteration, ∅_t differs from ∅_{t+1} by a single Adam step (|Δ| ≤ lr per entry)."""
    model, x0, cond, null = toy
    nti = md.null_text_invert(model, x0[:8], cond[:8], null, steps=20, inner_steps=1, early_stop=-1.0)
    previous = null.expand(8, -1)
    for i, n in enumerate(nti.nulls):
        step = (n - previous).abs().max().item()
        assert 0 < step <= 1e-2 * (1 - i / 40) * 1.001
        previous = n
