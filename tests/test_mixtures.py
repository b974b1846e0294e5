"""Closed-form checks of the 2D mixtures' exact fields."""
import math

import pytest
import torch

from toy.mixtures import ALPHAS_CUMPROD, FLOWEDIT_SOURCE, GaussianMixture, conditional_mixture


def log_density(m: GaussianMixture, x, a, b):
    var = a**2 * m.std**2 + b**2
    d2 = ((x[:, None] - a * m.means[None].double()) ** 2).sum(-1)
    return torch.logsumexp(torch.log(m.probs.double()) - d2 / (2 * var) - math.log(2 * math.pi * var), 1)


@pytest.mark.parametrize("t", [0.1, 0.5, 0.9])
def test_posterior_noise_is_tweedie_score(t):
    """E[ε | x_t] = −b ∇ log p_t(x) (Tweedie), with the score from autograd of the exact density."""
    m = GaussianMixture(FLOWEDIT_SOURCE.means.double(), std=1.3)
    x = (torch.randn(64, 2, dtype=torch.float64) * 8).requires_grad_()
    a, b = 1 - t, t
    (score,) = torch.autograd.grad(log_density(m, x, a, b).sum(), x)
    e_x0, e_eps = m.posterior_means(x.detach(), a, b)
    torch.testing.assert_close(e_eps, -b * score)
    torch.testing.assert_close(a * e_x0 + b * e_eps, x.detach())  # x_t = a E[x0] + b E[ε]


def test_velocity_of_one_gaussian_is_linear():
    """For N(μ, s²I) the exact velocity at t is linear: v = (t − (1−t)s²)/((1−t)²s² + t²)·(x − (1−t)μ) − μ."""
    mu, s, t = torch.tensor([[3.0, -2.0]]), 0.7, 0.4
    m = GaussianMixture(mu, std=s)
    x = torch.randn(10, 2) * 3
    var = (1 - t) ** 2 * s**2 + t**2
    expected = (t - (1 - t) * s**2) / var * (x - (1 - t) * mu) - mu
    torch.testing.assert_close(m.velocity(x, t), expected)


def test_epsilon_uses_the_ddpm_schedule():
    mu, s = torch.tensor([[1.0, 2.0]]), 0.5
    m = GaussianMixture(mu, std=s)
    x = torch.randn(5, 2)
    ab = float(ALPHAS_CUMPROD[300])
    expected = math.sqrt(1 - ab) * (x - math.sqrt(ab) * mu) / (ab * s**2 + 1 - ab)
    torch.testing.assert_close(m.epsilon(x, 300), expected)


def test_sampling_is_seeded_and_matches_modes():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = FLOWEDIT_SOURCE.sample(500, g1), FLOWEDIT_SOURCE.sample(500, g2)
    assert torch.equal(a, b)
    assert torch.cdist(a, FLOWEDIT_SOURCE.means).min(1).values.max() < 6
    assert len(conditional_mixture()) == 4
