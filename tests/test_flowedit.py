"""FlowEdit's defining properties, and the 2D toy's claims (Kulikov et al., Fig. 3)."""
import pytest
import torch

from minidiff import flow_invert, flow_sample, flow_sigmas, flowedit, inversion_edit, nearest_mode_share, sdedit, transport_cost
from toy.mixtures import FLOWEDIT_SOURCE, FLOWEDIT_TARGET, FLOWEDIT_TARGET_VARIANT, ExactFlow


class Conditional:
    """A velocity model whose field depends on cond (shift towards cond)."""

    prediction = "velocity"
    scheduler_config = ExactFlow.scheduler_config

    def __call__(self, x, t, cond):
        return torch.sin(x) * float(t) - cond


def test_equal_prompts_return_the_source_exactly():
    x = torch.randn(50, 2)
    c, null = torch.ones(1, 2), torch.zeros(1, 2)
    out = flowedit(Conditional(), x, c, c, steps=20, n_max=15, guidance_src=3.0, guidance_tar=3.0, null=null)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)  # (x + a) − x = a only up to rounding


def test_sdedit_tail_runs_and_lands_on_target():
    g = torch.Generator().manual_seed(0)
    x = FLOWEDIT_SOURCE.sample(300, g)
    trajectory = []
    out = flowedit(ExactFlow(FLOWEDIT_SOURCE), x, None, None, steps=20, n_max=20, n_min=5,
                   guidance_src=1, guidance_tar=1, target=ExactFlow(FLOWEDIT_TARGET_VARIANT),
                   generator=g, trajectory=trajectory)
    assert len(trajectory) == 1 + 15 + 5
    assert torch.cdist(out, FLOWEDIT_TARGET_VARIANT.means).min(1).values.mean() < 2.5


def test_sdedit_tail_starts_from_the_shifted_source():
    """Alg. 1's tail starts from Z^tar = Z^FE + Z^src_t − X_src with Z^src_t = (1 − t)X_src + tN, not from
    SDEdit's (1 − t)Z^FE + tN. With V = cond (constant fields) every step has a closed form."""

    class ConstantField:
        prediction, scheduler_config = "velocity", ExactFlow.scheduler_config

        def __call__(self, x, t, cond):
            return torch.zeros_like(x) + cond

    x = torch.randn(6, 2)
    a = torch.tensor([[1.5, -2.0]])
    steps, n_max, n_min = 20, 15, 5
    out = flowedit(ConstantField(), x, torch.zeros(1, 2), a, steps=steps, n_max=n_max, n_min=n_min,
                   guidance_src=1, guidance_tar=1, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    for _ in range(n_max - n_min):  # the draws FlowEdit's steps used
        torch.randn(x.shape, generator=g)
    sigmas = flow_sigmas(ConstantField(), steps)
    t_start, t_tail = sigmas[steps - n_max], sigmas[steps - n_min]
    z_fe = x - (t_start - t_tail) * a  # dZ = (V_tar − V_src) dt = a dt, with dt < 0
    expected = z_fe + t_tail * (torch.randn(x.shape, generator=g) - x) - t_tail * a
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_bad_n_max_is_refused():
    with pytest.raises(ValueError, match="n_min < n_max <= steps"):
        flowedit(Conditional(), torch.zeros(2, 2), None, None, steps=10, n_max=11)


def _edit_both_ways(target, n=1000, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = FLOWEDIT_SOURCE.sample(n, g)
    src, tar = ExactFlow(FLOWEDIT_SOURCE), ExactFlow(target)
    y_inv = flow_sample(tar, flow_invert(src, x, steps=50), steps=50)
    y_fe = flowedit(src, x, None, None, steps=50, n_max=50, guidance_src=1, guidance_tar=1, target=tar, generator=g)
    return x, y_inv, y_fe


def test_variant_flowedit_pairs_nearest_modes_and_inversion_splits_them():
    x, y_inv, y_fe = _edit_both_ways(FLOWEDIT_TARGET_VARIANT)
    m = FLOWEDIT_SOURCE.means, FLOWEDIT_TARGET_VARIANT.means
    assert nearest_mode_share(x, y_fe, *m) >= 0.95
    assert 0.70 <= nearest_mode_share(x, y_inv, *m) <= 0.80  # the quarter between x + y = 0 and x = 0
    assert transport_cost(x, y_fe) < transport_cost(x, y_inv)


def test_review_configuration_differs_in_cost_not_in_pairing():
    x, y_inv, y_fe = _edit_both_ways(FLOWEDIT_TARGET)
    m = FLOWEDIT_SOURCE.means, FLOWEDIT_TARGET.means
    assert nearest_mode_share(x, y_inv, *m) >= 0.98
    assert nearest_mode_share(x, y_fe, *m) >= 0.98
    assert transport_cost(x, y_fe) < transport_cost(x, y_inv)


class ConstantField:
    """V = cond everywhere: every Euler path has a closed form."""

    prediction, scheduler_config = "velocity", ExactFlow.scheduler_config

    def __call__(self, x, t, cond):
        return torch.zeros_like(x) + cond


def test_inversion_edit_goes_up_with_the_source_and_down_with_the_target():
    x, a, b = torch.randn(5, 2), torch.tensor([[1.0, -2.0]]), torch.tensor([[0.5, 3.0]])
    steps, n_max = 20, 12
    t0 = flow_sigmas(ConstantField(), steps)[steps - n_max]
    out = inversion_edit(ConstantField(), x, a, b, steps=steps, n_max=n_max, guidance_src=1, guidance_tar=1)
    torch.testing.assert_close(out, x + t0 * a - t0 * b, atol=1e-5, rtol=0)
    same = inversion_edit(ConstantField(), x, a, a, steps=steps, n_max=n_max, guidance_src=1, guidance_tar=1)
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)


def test_sdedit_noises_the_source_to_flowedits_start_then_follows_the_target():
    x, b = torch.randn(5, 2), torch.tensor([[0.5, 3.0]])
    steps, n_max = 20, 12
    t0 = flow_sigmas(ConstantField(), steps)[steps - n_max]
    out = sdedit(ConstantField(), x, b, steps=steps, n_max=n_max, guidance_tar=1, generator=torch.Generator().manual_seed(4))
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(out, (1 - t0) * x + t0 * noise - t0 * b, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="n_max"):
        sdedit(ConstantField(), x, b, steps=steps, n_max=0)
