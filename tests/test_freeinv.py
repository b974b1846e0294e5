"""FreeInv (Bao et al.): transformations, identity ≡ DDIM, equivariant fields, LIFO reuse."""
import pytest
import torch

import minidiff as md
from minidiff.freeinv import FLIPS, IDENTITY, ROTATIONS, BranchAverage, random_schedule
from toy.mixtures import ExactDDPM, GaussianMixture


def ring(n=8, radius=4.0):
    angles = torch.arange(n) * 2 * torch.pi / n
    return GaussianMixture(radius * torch.stack([angles.cos(), angles.sin()], 1), std=0.4)


def test_transforms_invert_exactly_on_points_and_latents():
    points, latents = torch.randn(5, 2), torch.randn(2, 4, 8, 8)
    for f in ROTATIONS + FLIPS:
        torch.testing.assert_close(f.inverse(f(points)), points)
        torch.testing.assert_close(f.inverse(f(latents)), latents)
    torch.testing.assert_close(ROTATIONS[1](torch.tensor([[1.0, 0.0]])), torch.tensor([[0.0, 1.0]]))
    assert torch.equal(ROTATIONS[2](latents), latents.flip(-1).flip(-2))


@pytest.mark.parametrize("shape", [(5, 3), (5,), (2, 4, 8, 6), (2, 3, 8)])
def test_shapes_without_a_rotation_are_refused(shape):
    """A (B, D ≠ 2) vector used to be silently truncated to its first two coordinates."""
    with pytest.raises(ValueError, match=r"\(B, 2\) or square latents"):
        ROTATIONS[1](torch.randn(*shape))
    with pytest.raises(ValueError, match=r"\(B, 2\) or square latents"):
        FLIPS[1](torch.randn(*shape))


def test_identity_transform_is_ddim_inversion():
    model = ExactDDPM(ring())
    x0 = model.mixture.sample(100, torch.Generator().manual_seed(0))
    inv = md.freeinv_invert(model, x0, steps=20, schedule=[IDENTITY] * 20)
    xT, schedule = inv.latent, inv.schedule
    assert torch.equal(xT, md.ddim_invert(model, x0, steps=20))
    assert torch.equal(md.freeinv_sample(model, xT, schedule=schedule, steps=20), md.ddim_sample(model, xT, steps=20))


def test_equivariant_field_makes_every_branch_equal():
    """The exact ε of a 4-fold symmetric mixture satisfies ε(Rx) = Rε(x): FreeInv then equals DDIM."""
    model = ExactDDPM(ring())
    x0 = model.mixture.sample(100, torch.Generator().manual_seed(0))
    xT = md.freeinv_invert(model, x0, steps=20, generator=torch.Generator().manual_seed(1)).latent
    torch.testing.assert_close(xT, md.ddim_invert(model, x0, steps=20), atol=1e-4, rtol=0)
    torch.testing.assert_close(md.ddim_invert(BranchAverage(model), x0, steps=20), md.ddim_invert(model, x0, steps=20), atol=1e-4, rtol=0)


def test_reconstruction_pops_the_schedule_last_in_first_out():
    """With ε ≡ c (independent of x) each branch predicts f⁻¹(c): inversion is exactly undone only
    when every timestep reuses the transformation it was inverted with."""

    class ConstantEps:
        prediction, scheduler_config = "epsilon", ExactDDPM.scheduler_config

        def __call__(self, x, t, cond):
            return torch.tensor([0.3, -0.2]).expand_as(x)

    model, x0 = ConstantEps(), torch.randn(10, 2, dtype=torch.float64)
    schedule = random_schedule(8, generator=torch.Generator().manual_seed(0))
    xT = md.freeinv_invert(model, x0, steps=8, schedule=schedule).latent
    torch.testing.assert_close(md.freeinv_sample(model, xT, schedule=schedule, steps=8), x0)
    wrong_order = md.ddim_sample(model, xT, steps=8, schedule=schedule[::-1])  # walked the wrong way
    assert (wrong_order - x0).abs().max() > 0.01


def test_flow_models_get_freeinv_too():
    """Velocity models: the identity schedule is plain flow inversion, and with v ≡ c each Euler step
    is undone exactly only when reconstruction pops the schedule last in, first out."""
    from toy.mixtures import ExactFlow

    model = ExactFlow(ring())
    x0 = model.mixture.sample(50, torch.Generator().manual_seed(0))
    inv = md.freeinv_invert(model, x0, steps=10, schedule=[IDENTITY] * 10)
    assert torch.equal(inv.latent, md.flow_invert(model, x0, steps=10))

    class ConstantVelocity:
        prediction, scheduler_config = "velocity", ExactFlow.scheduler_config

        def __call__(self, x, t, cond):
            return torch.tensor([0.3, -0.2], dtype=x.dtype).expand_as(x)

    x0 = torch.randn(10, 2, dtype=torch.float64)
    schedule = random_schedule(8, generator=torch.Generator().manual_seed(0))
    inv = md.freeinv_invert(ConstantVelocity(), x0, steps=8, schedule=schedule)
    torch.testing.assert_close(md.freeinv_sample(ConstantVelocity(), inv.latent, schedule=inv.schedule, steps=8), x0)
    assert (md.flow_sample(ConstantVelocity(), inv.latent, steps=8, schedule=schedule[::-1]) - x0).abs().max() > 0.01


def test_patch_grid_rotation_moves_patches_but_not_their_contents():
    from minidiff.freeinv import PATCH_GRID_ROTATIONS, PatchGridRotation

    x = torch.randn(2, 4, 8, 8)
    for f in PATCH_GRID_ROTATIONS:
        torch.testing.assert_close(f.inverse(f(x)), x, atol=0, rtol=0)
    turned = PATCH_GRID_ROTATIONS[1](x)
    assert not torch.equal(turned, ROTATIONS[1](x))  # not a rotation of the image ...
    torch.testing.assert_close(turned[..., :2, :2], x[..., :2, 6:8], atol=0, rtol=0)  # ... the top-right patch moves whole
    torch.testing.assert_close(PatchGridRotation(1, patch=1)(x), ROTATIONS[1](x), atol=0, rtol=0)  # 1×1 patches: the rotation
    with pytest.raises(ValueError, match="divisible by 2"):
        PATCH_GRID_ROTATIONS[1](torch.randn(1, 4, 7, 7))


def test_per_image_schedules_equal_inverting_the_images_one_by_one():
    from minidiff.freeinv import PerImage, per_image_schedule

    x = torch.randn(3, 4, 6, 6)
    schedule = per_image_schedule(3, 5, generator=torch.Generator().manual_seed(0))
    assert len(schedule) == 5 and all(len(step.transforms) == 3 for step in schedule)
    for step in schedule:
        torch.testing.assert_close(step(x), torch.cat([f(xi[None]) for f, xi in zip(step.transforms, x)]), rtol=0, atol=0)
        torch.testing.assert_close(step.inverse(step(x)), x, rtol=0, atol=0)
    with pytest.raises(ValueError, match="per_image_schedule"):
        PerImage(ROTATIONS[:2])(x)
