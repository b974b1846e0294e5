"""DDIM sampling and DDIM inversion (Song et al. 2021), with diffusers' schedulers doing each step.

DDIM's deterministic update (eq. 12 with σ = 0), from level :math:`\\bar\\alpha_s` to :math:`\\bar\\alpha_{s'}`:

.. math:: x_{s'} = \\sqrt{\\bar\\alpha_{s'}}\\,\\hat x_0 + \\sqrt{1-\\bar\\alpha_{s'}}\\,\\hat\\varepsilon,
   \\qquad \\hat x_0 = (x_s - \\sqrt{1-\\bar\\alpha_s}\\,\\hat\\varepsilon)/\\sqrt{\\bar\\alpha_s}.

Sampling goes down (s' < s) with :math:`\\hat\\varepsilon = \\varepsilon_\\theta(x_s, s)`. Inversion goes up
(s' > s) and must use :math:`\\hat\\varepsilon = \\varepsilon_\\theta(x_s, s')`: the noise at the *less noisy*
latent with the label of the next step, since :math:`x_{s'}` is not known yet. The approximation
:math:`\\varepsilon_\\theta(x_{s'}, s') \\approx \\varepsilon_\\theta(x_s, s')` is the drift that null-text
inversion and FreeInv correct.
"""
from __future__ import annotations

import torch
from diffusers import DDIMInverseScheduler, DDIMScheduler
from ._checks import check_latents, check_steps
from .progress import progress_bar
from .denoiser import Denoiser, check_denoiser, guided


def ddim_schedulers(denoiser: Denoiser, steps: int = 50) -> tuple[DDIMScheduler, DDIMInverseScheduler]:
    """The sampling and inversion schedulers of ``denoiser``, set to ``steps`` steps.

    Both are built from the model's own scheduler config; ``clip_sample`` is forced off because
    clamping x̂₀ to [−1, 1] (DDIMInverseScheduler's raw default) damages latents such as SD's.

    Any step count works, on the config's own grid (StableDiffusionPipeline's): with SD's ``"leading"``
    spacing t_i = i·⌊T_train/steps⌋ + offset. A count that divides ``num_train_timesteps`` starts one
    stride below T_train + offset, any other a little lower (30 steps: t = 958, ᾱ = 0.0055 against
    0.0047 at t = 999); every step is one stride, so inversion and sampling visit the same levels.
    """
    check_denoiser(denoiser, "epsilon")
    config = dict(denoiser.scheduler_config)
    n_train, offset = config.get("num_train_timesteps", 1000), config.get("steps_offset", 0)
    # with steps_offset the last leading timestep would be num_train_timesteps itself: out of range
    check_steps(steps, n_train - offset)
    sampler = DDIMScheduler.from_config(config, clip_sample=False)
    inverter = DDIMInverseScheduler.from_config(config, clip_sample=False)
    sampler.set_timesteps(steps)
    inverter.set_timesteps(steps)
    return sampler, inverter


def _run(scheduler, denoiser, x, *, cond, guidance, null, transforms, trajectory, progress, desc, callback=None):
    """x ← scheduler.step(ε̂(x, t), t, x) for each of the scheduler's timesteps.

    ``null`` may be a list with one unconditional embedding per step (null-text inversion's ∅_t);
    ``transforms`` a list with one invertible transformation f per step, the prediction then being
    f⁻¹(ε̂(f(x), t)) (FreeInv); ``callback(i, x)`` returns the x that step i hands on (Direct
    Inversion's offsets, local blending). Each new x is appended to ``trajectory`` when it is a list.
    """
    record = trajectory.append if trajectory is not None else (lambda _: None)
    record(x)
    for i, t in enumerate(progress_bar(scheduler.timesteps, desc, progress)):
        null_t = null[i] if isinstance(null, list) else null
        if transforms is None:
            eps = guided(denoiser, x, t, cond, guidance, null_t)
        else:
            eps = transforms[i].inverse(guided(denoiser, transforms[i](x), t, cond, guidance, null_t))
        x = scheduler.step(eps, t, x).prev_sample
        if callback is not None:
            x = callback(i, x)
        record(x)
    return x


@torch.no_grad()
def ddim_invert(
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
    """DDIM inversion: run the deterministic DDIM ODE from data up to noise.

    Args:
        denoiser: an ε-prediction denoiser.
        x: clean latents x_0, shape (B, ...).
        cond: conditioning embedding, shape (B or 1, ...), or None.
        steps: number of inversion steps T.
        guidance: classifier-free guidance scale w used while inverting (1 = none).
        null: unconditional embedding, needed when ``guidance != 1``; or a list of T embeddings, one
            per step in the order the steps run (null-text inversion's ∅_t).
        schedule: optional list of T invertible transformations f, one per noise interval, in
            inversion order (``schedule[i]`` between the i-th and (i+1)-th levels from the data); the
            prediction is then f⁻¹(ε̂(f(x))) (FreeInv, :mod:`minidiff.freeinv`). Every sampler takes
            the same list in the same order and walks it backwards.
        trajectory: a list to which x_0, x_{t_1}, …, x_{t_T} (T + 1 tensors) are appended.
        progress: show a tqdm progress bar.

    Returns:
        x_T, shape (B, ...).
    """
    check_latents(x, "x")
    _, inverter = ddim_schedulers(denoiser, steps)
    return _run(inverter, denoiser, x, cond=cond, guidance=guidance, null=null, transforms=schedule,
                trajectory=trajectory, progress=progress, desc="DDIM inversion")


@torch.no_grad()
def ddim_sample(
    denoiser: Denoiser,
    x: torch.Tensor,
    cond: torch.Tensor | None = None,
    steps: int = 50,
    guidance: float = 1.0,
    null: torch.Tensor | None = None,
    *,
    schedule: list | None = None,
    trajectory: list | None = None,
    callback=None,
    progress: bool = False,
) -> torch.Tensor:
    """Deterministic DDIM sampling (η = 0) from x_T down to x_0.

    Arguments as in :func:`ddim_invert`, ``x`` being x_T; ``schedule`` is in inversion order (as
    :func:`ddim_invert` took it and :func:`~minidiff.freeinv_invert` returns it) and is walked
    backwards, so each interval uses the transformation it was inverted with; ``null``'s per-step list
    is in sampling order; ``trajectory`` receives [x_{t_T}, …, x_{t_1}, x_0], the inversion
    trajectory's order reversed; ``callback(i, x)``, if given, returns the latent that step i hands on
    to the next. Returns x_0, shape (B, ...).
    """
    check_latents(x, "x")
    sampler, _ = ddim_schedulers(denoiser, steps)
    return _run(sampler, denoiser, x, cond=cond, guidance=guidance, null=null,
                transforms=None if schedule is None else list(schedule)[::-1],
                trajectory=trajectory, progress=progress, desc="DDIM sampling", callback=callback)
