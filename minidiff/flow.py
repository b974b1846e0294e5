"""Rectified-flow ODE sampling and inversion with the Euler step (SD3, Flux and the 2D toy flows).

The flow :math:`x_t = (1-t)\\,x_0 + t\\,\\varepsilon` has velocity :math:`v = \\varepsilon - x_0`; Euler moves
:math:`x_{t'} = x_t + (t' - t)\\,v_\\theta(x_t, t)`, down for sampling and up for inversion. The time grid
:math:`1 = t_0 > t_1 > … > t_T = 0` is diffusers' ``FlowMatchEulerDiscreteScheduler`` sigmas for the
model's own scheduler config (so SD3's shift and Flux's resolution-dependent shift carry over).
"""
from __future__ import annotations

import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from ._checks import check_latents, check_steps
from .progress import progress_bar
from .denoiser import Denoiser, check_denoiser, guided


def flow_sigmas(denoiser: Denoiser, steps: int = 50) -> torch.Tensor:
    """The time grid t_0 = 1 > … > t_T = 0, shape (steps + 1,).

    A model whose pipeline passes extra arguments to ``set_timesteps`` (Flux: the shift ``mu`` and its
    own grid ``sigmas``) exposes them as ``denoiser.timestep_kwargs(steps)``.
    """
    check_denoiser(denoiser, "velocity")
    check_steps(steps, 1000)
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(dict(denoiser.scheduler_config))
    kwargs = denoiser.timestep_kwargs(steps) if hasattr(denoiser, "timestep_kwargs") else {}
    scheduler.set_timesteps(steps, **kwargs)
    return scheduler.sigmas.float()


def _euler(denoiser, x, grid, *, cond, guidance, null, transforms=None, trajectory=None, progress=False, desc=""):
    """x ← x + (t' − t)·v̂(x, t) for consecutive times (t, t') of ``grid``.

    ``transforms``: one invertible transformation f per step, the velocity then being
    f⁻¹(v̂(f(x), t)) (FreeInv); each x is appended to ``trajectory`` when it is a list.
    """
    record = trajectory.append if trajectory is not None else (lambda _: None)
    record(x)
    for i, (t, t_next) in enumerate(progress_bar(list(zip(grid[:-1], grid[1:])), desc, progress)):
        if transforms is None:
            v = guided(denoiser, x, t, cond, guidance, null)
        else:
            v = transforms[i].inverse(guided(denoiser, transforms[i](x), t, cond, guidance, null))
        x = x + (t_next - t) * v
        record(x)
    return x


@torch.no_grad()
def flow_sample(
    denoiser: Denoiser,
    x: torch.Tensor,
    cond: torch.Tensor | None = None,
    steps: int = 50,
    guidance: float = 1.0,
    null: torch.Tensor | None = None,
    *,
    schedule: list | None = None,
    trajectory: list | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Euler integration of dx/dt = v_θ(x, t) from t = 1 (noise ``x`` = x_1, shape (B, ...)) to t = 0.

    Returns x_0; ``trajectory``, a list, receives [x_{t_0}, …, x_{t_T}] (T + 1 tensors);
    ``schedule`` is in inversion order and walked backwards, as in :func:`~minidiff.ddim_sample`.
    """
    check_latents(x, "x")
    sigmas = flow_sigmas(denoiser, steps)
    return _euler(denoiser, x, sigmas, cond=cond, guidance=guidance, null=null,
                  transforms=None if schedule is None else list(schedule)[::-1],
                  trajectory=trajectory, progress=progress, desc="flow sampling")


@torch.no_grad()
def flow_invert(
    denoiser: Denoiser,
    x: torch.Tensor,
    cond: torch.Tensor | None = None,
    steps: int = 50,
    guidance: float = 1.0,
    null: torch.Tensor | None = None,
    *,
    schedule: list | None = None,
    trajectory: list | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Euler integration of the same ODE backwards, from data ``x`` = x_0 (B, ...) at t = 0 up to t = 1.

    Each step uses the velocity at the current (less noisy) point, the flow analogue of DDIM
    inversion's approximation. Returns x_1; ``trajectory`` receives [x_{t_T}, …, x_{t_0}];
    ``schedule``, in inversion order, as in :func:`~minidiff.ddim_invert`.
    """
    check_latents(x, "x")
    sigmas = flow_sigmas(denoiser, steps)
    return _euler(denoiser, x, sigmas.flip(0), cond=cond, guidance=guidance, null=null, transforms=schedule,
                  trajectory=trajectory, progress=progress, desc="flow inversion")
