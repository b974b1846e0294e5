"""DDIM and flow-ODE sampling/inversion against closed forms, and their input checks."""
import math

import pytest
import torch

from minidiff import ddim_invert, ddim_sample, flow_invert, flow_sample, guided
from toy.mixtures import ALPHAS_CUMPROD, DDPM_CONFIG, FLOW_CONFIG, ExactDDPM, ExactFlow, GaussianMixture


class ConstantEps:
    """ε independent of x: DDIM's inversion approximation ε(x_{t+1}) ≈ ε(x_t) is then exact."""

    prediction, scheduler_config = "epsilon", DDPM_CONFIG

    def __call__(self, x, t, cond=None):
        return torch.full_like(x, 0.3) + 0.001 * float(t)


def test_ddim_inversion_of_x_independent_model_is_exact():
    x0 = torch.randn(16, 2, dtype=torch.float64)
    model = ConstantEps()
    xT = ddim_invert(model, x0, steps=20)
    torch.testing.assert_close(ddim_sample(model, xT, steps=20), x0)


def test_ddim_inversion_of_gaussian_data_matches_the_exact_flow_map():
    """For data N(μ, s²I) the probability-flow ODE is linear: x_t = √ᾱμ + √(ᾱs² + 1 − ᾱ)/s·(x0 − μ)."""
    mu, s = torch.tensor([[2.0, -1.0]]), 0.5
    model = ExactDDPM(GaussianMixture(mu, std=s))
    x0 = mu + s * torch.randn(200, 2)
    xT = ddim_invert(model, x0.double(), steps=500)
    ab = float(ALPHAS_CUMPROD[999])
    exact = math.sqrt(ab) * mu + math.sqrt(ab * s**2 + 1 - ab) / s * (x0 - mu)
    assert (xT.float() - exact).abs().max() < 0.05


def test_flow_inversion_of_gaussian_data_matches_the_exact_flow_map():
    """Rectified flow of N(μ, s²I): x_1 = (x_0 − μ)/s."""
    mu, s = torch.tensor([[2.0, -1.0]]), 0.5
    model = ExactFlow(GaussianMixture(mu, std=s))
    x0 = mu + s * torch.randn(200, 2)
    trajectory = []
    x1 = flow_invert(model, x0, steps=200, trajectory=trajectory)
    assert len(trajectory) == 201
    error = (x1 - (x0 - mu) / s).abs().max()
    assert error < 0.05
    assert (flow_invert(model, x0, steps=800) - (x0 - mu) / s).abs().max() < error / 3  # Euler: O(1/T)
    torch.testing.assert_close(flow_sample(model, x1, steps=200), x0, atol=0.05, rtol=0)


def test_reconstruction_error_shrinks_with_steps():
    model = ExactDDPM(GaussianMixture(torch.tensor([[-3.0, 0.0], [3.0, 0.0]]), std=0.5))
    x0 = model.mixture.sample(300, torch.Generator().manual_seed(0))
    errors = [((ddim_sample(model, ddim_invert(model, x0, steps=n), steps=n) - x0) ** 2).mean() for n in (10, 50)]
    assert errors[1] < errors[0] / 3


def test_trajectory_orders_agree():
    """Inversion records [x_0, x_{t_1}, …, x_{t_T}] and sampling [x_{t_T}, …, x_0], visiting the same
    timesteps in opposite orders. For data N(μ, s²I) the probability-flow ODE is a linear map, so
    both trajectories must follow it: reversed, one lies on the other step by step."""

    class Recording(ExactDDPM):
        def __call__(self, x, t, cond=None):
            self.times.append(int(t))
            return super().__call__(x, t, cond)

    mu, s = torch.tensor([[2.0, -1.0]], dtype=torch.float64), 0.5
    model = Recording(GaussianMixture(mu, std=s))
    x0 = mu + s * torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    inv, smp, model.times = [], [], []
    xT = ddim_invert(model, x0, steps=100, trajectory=inv)
    inv_times, model.times = model.times, []
    ddim_sample(model, xT, steps=100, trajectory=smp)
    assert len(inv) == len(smp) == 101 and torch.equal(inv[0], x0) and torch.equal(smp[0], xT)
    assert inv_times == sorted(inv_times) and model.times == inv_times[::-1]
    for k, t in enumerate(inv_times, start=1):
        ab = float(ALPHAS_CUMPROD[t])
        exact = math.sqrt(ab) * mu + math.sqrt(ab * s**2 + 1 - ab) / s * (x0 - mu)
        for state in (inv[k], smp[-1 - k]):  # DDIM's discretisation error on 100 steps is ≈ 0.1
            assert (state - exact).abs().max() < 0.15
    assert (inv[1] - smp[1]).abs().max() > 1.0  # unreversed, the orders disagree


@pytest.mark.parametrize("steps", [1, 10, 50, 125, 250, 500])
def test_ddim_grid_reaches_noise(steps):
    """The leading grid's top timestep is T_train − T_train/steps + offset: one step short of T at most."""
    from minidiff import ddim_schedulers

    sampler, inverter = ddim_schedulers(ConstantEps(), steps)
    ratio = 1000 // steps
    assert int(sampler.timesteps[0]) == 1000 - ratio + DDPM_CONFIG.get("steps_offset", 0)
    assert int(inverter.timesteps[-1]) == int(sampler.timesteps[0])


@pytest.mark.parametrize("steps", [30, 25, 300, 7])
def test_any_step_count_runs_on_stable_diffusions_leading_grid(steps):
    """Counts that do not divide 1000 (SD's everyday 30) run on the pipeline's own grid: stride
    ⌊1000/steps⌋ from t = offset, and inversion visits exactly the levels sampling comes down."""
    from minidiff import ddim_schedulers

    sampler, inverter = ddim_schedulers(ConstantEps(), steps)
    stride, offset = 1000 // steps, DDPM_CONFIG.get("steps_offset", 0)
    assert sampler.timesteps.tolist() == [i * stride + offset for i in reversed(range(steps))]
    assert inverter.timesteps.tolist() == sampler.timesteps.flip(0).tolist()
    x0 = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
    xT = ddim_invert(ConstantEps(), x0, steps=steps)
    torch.testing.assert_close(ddim_sample(ConstantEps(), xT, steps=steps), x0, atol=1e-4, rtol=1e-4)


def test_guidance_one_is_a_single_call_and_needs_no_null():
    class Counting:
        prediction, scheduler_config, calls = "velocity", FLOW_CONFIG, 0

        def __call__(self, x, t, cond):
            self.calls += 1
            return x * 0 + cond

    m = Counting()
    x, c, null = torch.zeros(3, 2), torch.ones(1, 2), torch.zeros(1, 2)
    assert torch.equal(guided(m, x, 0.5, c), torch.ones(3, 2)) and m.calls == 1
    torch.testing.assert_close(guided(m, x, 0.5, c, 7.5, null), torch.full((3, 2), 7.5))
    with pytest.raises(ValueError, match="null"):
        guided(m, x, 0.5, c, 7.5)


@pytest.mark.parametrize("steps", [0, -3, 1001, 2.5, True])
def test_bad_step_counts_are_refused(steps):
    with pytest.raises(ValueError, match="steps must be an integer between 1 and 999"):
        ddim_invert(ConstantEps(), torch.zeros(2, 2), steps=steps)


def test_half_precision_on_cpu_is_refused():
    with pytest.raises(ValueError, match="float32"):
        flow_sample(ExactFlow(GaussianMixture(torch.zeros(1, 2))), torch.zeros(2, 2, dtype=torch.float16))


def test_wrong_model_kind_is_explained():
    with pytest.raises(ValueError, match="flow functions"):
        ddim_sample(ExactFlow(GaussianMixture(torch.zeros(1, 2))), torch.zeros(2, 2))
    with pytest.raises(TypeError, match="not a minidiff denoiser"):
        flow_sample(lambda x, t, c: x, torch.zeros(2, 2))
