"""FreeInv: free-lunch DDIM inversion with random transformations (Bao et al., 2025).

Multi-branch DDIM inversion (MBDI) replaces the noise prediction by an average over N branches,
:math:`\\hat\\varepsilon = \\frac1N\\sum_i f_i^{-1}\\big(\\varepsilon_\\theta(f_i(z_t), t, c)\\big)`, which averages out the
inversion error but costs N model calls. A Monte-Carlo estimate of the same average draws one
branch per step (a one-hot weight), at the cost of plain DDIM. FreeInv takes the branches to be
random transformations :math:`f_i` of the latent itself (rotations by multiples of 90°, flips), draws
one per inversion step, and **reuses the same transformation at the same timestep of
reconstruction** (the schedule is a stack: last in, first out), so that inversion and
reconstruction see the same prediction errors. The same holds for flow models (SD3, Flux): the
velocity takes ε's place and Euler steps DDIM's; latents are transformed unpacked, as (B, C, h, w).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .ddim import ddim_invert, ddim_sample
from .denoiser import Denoiser
from .flow import flow_invert, flow_sample


@dataclass(frozen=True)
class Transform:
    """An invertible transformation of latents: ``quarter_turns`` × 90° rotation, then an optional flip.

    Latents (B, C, H, W) rotate over their two spatial axes and flip left-right; 2D points (B, 2)
    rotate about the origin and flip x ↦ −x. Anything else is refused: there is no rotation of a
    (B, D) vector with D ≠ 2, and a quarter turn of a non-square latent changes its shape.
    """

    quarter_turns: int = 0
    flip: bool = False

    @property
    def name(self) -> str:
        return f"rot{90 * (self.quarter_turns % 4)}" + ("+flip" if self.flip else "")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = _rotate(x, self.quarter_turns)
        return _flip(x) if self.flip else x

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        x = _flip(x) if self.flip else x
        return _rotate(x, -self.quarter_turns)


def _is_points(x: torch.Tensor) -> bool:
    """True for 2D points (B, 2), False for square latents (B, C, H, H); a ValueError otherwise."""
    if x.dim() == 2 and x.shape[1] == 2:
        return True
    if x.dim() == 4 and x.shape[-1] == x.shape[-2]:
        return False
    raise ValueError(
        f"FreeInv's transformations act on 2D points of shape (B, 2) or square latents (B, C, H, H), got shape "
        f"{tuple(x.shape)}; pack other data into one of these shapes or pass transforms that handle it."
    )


def _rotate(x: torch.Tensor, k: int) -> torch.Tensor:
    if _is_points(x):  # points (B, 2): (x, y) ↦ (−y, x) per quarter turn
        for _ in range(k % 4):
            x = torch.stack([-x[:, 1], x[:, 0]], 1)
        return x
    return torch.rot90(x, k, dims=(-2, -1))


def _flip(x: torch.Tensor) -> torch.Tensor:
    return torch.stack([-x[:, 0], x[:, 1]], 1) if _is_points(x) else x.flip(-1)


@dataclass(frozen=True)
class PatchGridRotation(Transform):
    """A quarter-turn rotation of the grid of ``patch`` × ``patch`` latent patches that leaves each patch's
    contents unrotated: a rotation of FLUX's grid of 2×2-packed tokens. It is invertible, but it is not a
    rotation of the image, so the model sees latents unlike any it was trained on; kept to measure what
    rotating tokens instead of the latent loses (notebook 08).

    It is not what the official FreeInv code does on Flux: that code applies torchvision's ``TF.rotate`` to
    the packed (B, L, 4C) token tensor as if the L × 4C matrix were an image, which is neither a rotation
    of the latent nor of the token grid, and at FLUX.1's 512 px (L = 1024, 4C = 64) a quarter turn leaves
    93.75 % of the entries zero. minidiff does not reproduce that."""

    patch: int = 2

    @property
    def name(self) -> str:
        return f"tokens-rot{90 * (self.quarter_turns % 4)}"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _rotate_patch_grid(x, self.quarter_turns, self.patch)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return _rotate_patch_grid(x, -self.quarter_turns, self.patch)


def _rotate_patch_grid(x: torch.Tensor, k: int, p: int) -> torch.Tensor:
    """(B, C, H, W) → (B, C, H, W) with the (H/p) × (W/p) grid of p × p patches rotated k quarter turns."""
    if _is_points(x) or x.shape[-1] % p:
        raise ValueError(f"a patch-grid rotation needs square latents (B, C, H, H) with H divisible by {p}, got {tuple(x.shape)}.")
    b, c, h, w = x.shape
    grid = x.reshape(b, c, h // p, p, w // p, p).permute(0, 1, 3, 5, 2, 4)  # (B, C, p, p, H/p, W/p)
    grid = torch.rot90(grid, k, dims=(-2, -1))
    return grid.permute(0, 1, 4, 2, 5, 3).reshape(b, c, h, w)


IDENTITY = Transform()
ROTATIONS = tuple(Transform(k) for k in range(4))
FLIPS = (Transform(), Transform(flip=True))
PATCH_GRID_ROTATIONS = tuple(PatchGridRotation(k) for k in range(4))


class BranchAverage:
    """MBDI's denoiser: the average of :math:`f_i^{-1}(\\varepsilon_\\theta(f_i(x), t, c))` over all ``candidates``
    (N model calls per step; the official code's "ensemble" ablation)."""

    def __init__(self, denoiser: Denoiser, candidates=ROTATIONS):
        self.denoiser, self.candidates = denoiser, tuple(candidates)
        self.prediction, self.scheduler_config = denoiser.prediction, denoiser.scheduler_config

    def __call__(self, x, t, cond):
        return sum(f.inverse(self.denoiser(f(x), t, cond)) for f in self.candidates) / len(self.candidates)


def random_schedule(steps: int = 50, candidates=ROTATIONS, generator: torch.Generator | None = None) -> list[Transform]:
    """One transformation per inversion step, drawn uniformly from ``candidates``: the Monte-Carlo
    branch choice. A schedule is always in inversion order (see :func:`~minidiff.ddim_invert`)."""
    idx = torch.randint(len(candidates), (steps,), generator=generator)
    return [candidates[i] for i in idx.tolist()]


class PerImage:
    """One transformation per image of a batch: image i of (B, ...) goes through ``transforms[i]``."""

    def __init__(self, transforms):
        self.transforms = tuple(transforms)

    @property
    def name(self) -> str:
        return "per-image(" + ", ".join(f.name for f in self.transforms) + ")"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return torch.cat([f(xi[None]) for f, xi in zip(self.transforms, x)])

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return torch.cat([f.inverse(xi[None]) for f, xi in zip(self.transforms, x)])

    def _check(self, x: torch.Tensor) -> None:
        if len(x) != len(self.transforms):
            raise ValueError(f"PerImage holds {len(self.transforms)} transforms but the batch has {len(x)} images; "
                             "draw the schedule for this batch (per_image_schedule).")


def per_image_schedule(n: int, steps: int = 50, candidates=ROTATIONS, generator: torch.Generator | None = None) -> list[PerImage]:
    """A FreeInv schedule for a batch of ``n`` images, each with its own random draws from
    ``candidates`` (so that the images' errors are independent, and a standard error over them means
    what it says); in inversion order."""
    draws = [random_schedule(steps, candidates, generator) for _ in range(n)]
    return [PerImage(fs) for fs in zip(*draws)]


@dataclass
class FreeInvInversion:
    """What :func:`freeinv_invert` returns.

    Attributes:
        latent: x_T, shape (B, ...).
        schedule: the transformation used at each inversion step, in inversion order (the order the
            steps ran); pass it as it is to :func:`freeinv_sample`, :func:`~minidiff.ddim_sample` or
            :func:`~minidiff.p2p_sample`, which walk it backwards.
    """

    latent: torch.Tensor
    schedule: list[Transform]


def freeinv_invert(
    denoiser: Denoiser,
    x: torch.Tensor,
    cond: torch.Tensor | None = None,
    steps: int = 50,
    guidance: float = 1.0,
    null: torch.Tensor | None = None,
    *,
    candidates=ROTATIONS,
    generator: torch.Generator | None = None,
    schedule: list[Transform] | None = None,
    trajectory: list | None = None,
) -> FreeInvInversion:
    """FreeInv inversion of ``x`` = x_0 (B, ...): DDIM inversion (flow inversion for velocity models)
    whose step i predicts through the transformation ``schedule[i]`` (drawn uniformly from
    ``candidates`` unless given).

    ``trajectory``, a list, receives x_0, …, x_T as in :func:`~minidiff.ddim_invert`.
    """
    schedule = list(schedule) if schedule is not None else random_schedule(steps, candidates, generator)
    invert = flow_invert if denoiser.prediction == "velocity" else ddim_invert
    latent = invert(denoiser, x, cond, steps, guidance, null, schedule=schedule, trajectory=trajectory)
    return FreeInvInversion(latent, schedule)


def freeinv_sample(
    denoiser: Denoiser,
    x: torch.Tensor,
    cond: torch.Tensor | None = None,
    steps: int = 50,
    guidance: float = 1.0,
    null: torch.Tensor | None = None,
    *,
    schedule: list[Transform],
    trajectory: list | None = None,
) -> torch.Tensor:
    """Reconstruction (or an edit's source branch) from FreeInv's x_T (``x``), walking the inversion's
    ``schedule`` (as :func:`freeinv_invert` returns it) backwards, so each timestep uses the
    transformation it was inverted with."""
    sample = flow_sample if denoiser.prediction == "velocity" else ddim_sample
    return sample(denoiser, x, cond, steps, guidance, null, schedule=schedule, trajectory=trajectory)
