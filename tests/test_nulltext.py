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


def test_half_precision_is_refused(toy):
    model, x0, cond, null = toy
    with pytest.raises(ValueError, match="float32"):
        md.null_text_invert(model, x0.double(), cond, null)
