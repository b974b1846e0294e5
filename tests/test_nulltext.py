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


@pytest.mark.parametrize("per_step", [True, False])
def test_zero_iterations_is_ddim_inversion(toy, per_step):
    """N = 0: z*_T is the w = 1 DDIM inversion and every ∅_t is the initial ∅, so sampling with them
    is plain CFG sampling from the DDIM latent."""
    model, x0, cond, null = toy
    result = md.null_text_invert(model, x0, cond, null=null, steps=20, inner_steps=0, per_step=per_step)
    assert torch.equal(result.latent, md.ddim_invert(model, x0, cond, 20))
    assert all(torch.equal(n, null.expand(len(x0), -1)) for n in result.nulls)
    assert result.inner_iters == [0] * 20
    torch.testing.assert_close(md.ddim_sample(model, result.latent, cond, 20, 7.5, result.nulls),
                               md.ddim_sample(model, result.latent, cond, 20, 7.5, null), atol=0, rtol=0)


def test_per_step_nulls_reconstruct_under_cfg(toy):
    model, x0, cond, null = toy
    plain = md.reconstruction_error(x0, md.ddim_sample(model, md.ddim_invert(model, x0, cond, 50, 7.5, null), cond, 50, 7.5, null))
    nti = md.null_text_invert(model, x0, cond, null=null, steps=50, guidance=7.5)
    nti_err = md.reconstruction_error(x0, md.ddim_sample(model, nti.latent, cond, 50, 7.5, nti.nulls))
    glob = md.null_text_invert(model, x0, cond, null=null, steps=50, guidance=7.5, per_step=False)
    glob_err = md.reconstruction_error(x0, md.ddim_sample(model, glob.latent, cond, 50, 7.5, glob.nulls))
    assert nti_err < plain / 50
    assert nti_err < glob_err < plain
    assert 1 <= sum(nti.inner_iters) / 50 <= 10


def test_other_precisions_are_refused_by_name(toy):
    model, x0, cond, null = toy
    with pytest.raises(ValueError, match="runs in float32, got torch.float64") as refused:
        md.null_text_invert(model, x0.double(), cond, null=null)
    assert "half" not in str(refused.value)
    with pytest.raises(ValueError, match="torch.float16"):
        md.null_text_invert(model, x0.half(), cond, null=null)


@pytest.mark.parametrize("steps", [50, 125, 250])
def test_long_schedules_keep_a_positive_learning_rate(toy, steps):
    """lr·(1 − i/100) went negative past 100 steps; lr·(1 − i/(2T)) ends at lr/2 for any T, and is the
    paper's 1e-2·(1 − i/100) at T = 50."""
    model, x0, cond, null = toy
    seen = []
    original = torch.optim.Adam

    class Recording(original):
        def __init__(self, params, lr):
            seen.append(lr)
            super().__init__(params, lr=lr)

    torch.optim.Adam = Recording
    try:
        nti = md.null_text_invert(model, x0[:20], cond[:20], null=null, steps=steps, inner_steps=1)
    finally:
        torch.optim.Adam = original
    assert len(seen) == steps and min(seen) > 0
    assert seen == pytest.approx([1e-2 * (1 - i / (2 * steps)) for i in range(steps)])
    if steps == 50:
        assert seen == pytest.approx([1e-2 * (1 - i / 100) for i in range(50)])
    assert len(nti.nulls) == steps and all(torch.isfinite(n).all() for n in nti.nulls)


def test_each_image_stops_on_its_own_loss(toy):
    """An image whose own loss is below ε + i·2e-5 stops, and its ∅_t stays where it stopped, as it
    would alone: the batch's iteration counts are the mean of its images' counts inverted one by one.

    The first image's prompt is ∅ itself, so while ∅_t ≈ ∅ its CFG step is the w = 1 step the pivot
    inverts: a small loss, it stops after a few iterations; the second needs up to all 10. A stop on
    the batch mean would stop both at the same iteration, and every count would be an integer."""
    model, x0, cond, null = toy
    x, c = x0[:2], torch.cat([null, cond[1:2]])
    steps, options = 10, dict(inner_steps=10, early_stop=1e-3)
    loose = md.null_text_invert(model, x, c, null=null, steps=steps, inner_steps=10, early_stop=1e9)
    assert loose.inner_iters == [1.0] * steps  # every image stops after its first Adam step
    strict = md.null_text_invert(model, x, c, null=null, steps=steps, inner_steps=10, early_stop=-1.0)
    assert strict.inner_iters == [10.0] * steps
    batch = md.null_text_invert(model, x, c, null=null, steps=steps, **options)
    alone = [md.null_text_invert(model, x[k:k + 1], c[k:k + 1], null=null, steps=steps, **options) for k in range(2)]
    assert batch.inner_iters == pytest.approx([(a + b) / 2 for a, b in zip(alone[0].inner_iters, alone[1].inner_iters)])
    assert sum(alone[0].inner_iters) < sum(alone[1].inner_iters)
    assert any(not float(k).is_integer() for k in batch.inner_iters)  # the two stopped at different iterations


def test_each_step_warm_starts_from_the_previous_null(toy):
    """With one inner iteration, ∅_t is ∅_{t+1} moved by one Adam step, lr_i·g/(|g| + 1e-8): every
    entry moves by at most lr_i = 1e-2·(1 − i/(2T)), the largest by lr_i itself. Restarting each step
    from the initial ∅ would instead move entries by ≈ 0 or ≈ 2·lr_i, and never drift further than lr_0."""
    model, x0, cond, null = toy
    steps = 20
    nti = md.null_text_invert(model, x0[:8], cond[:8], null=null, steps=steps, inner_steps=1, early_stop=-1.0)
    previous = null.expand(8, -1)
    for i, n in enumerate(nti.nulls):
        lr_i = 1e-2 * (1 - i / (2 * steps))
        assert (n - previous).abs().amax(1) == pytest.approx([lr_i] * 8, rel=1e-4)
        previous = n
    assert (nti.nulls[-1] - null).abs().max() > 2e-2
