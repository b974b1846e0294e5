"""Null-text inversion (Mokady et al., CVPR 2023, Algorithm 1).

DDIM inversion is accurate at guidance w = 1 but drifts under classifier-free guidance. Null-text
inversion keeps the w = 1 inversion as a *pivot* trajectory :math:`z^*_T, …, z^*_0` and, going down,
optimises one unconditional embedding :math:`\\varnothing_t` per step so that the guided DDIM step from
the current latent :math:`\\bar z_t` lands on the pivot:

.. math:: \\min_{\\varnothing_t} \\big\\| z^*_{t-1} - \\mathrm{DDIM}\\big(\\bar z_t, t,
          \\varepsilon(\\bar z_t, \\varnothing_t) + w\\,[\\varepsilon(\\bar z_t, c) - \\varepsilon(\\bar z_t, \\varnothing_t)]\\big)\\big\\|^2

with Adam (lr 1e-2·(1 − i/100) at the paper's T = 50, here lr·(1 − i/(2T)) so that it stays positive for
any T), at most N inner iterations, early stop of each image when its own loss falls below
1e-5 + i·2e-5; ∅_t starts from ∅_{t+1}; then :math:`\\bar z_{t-1}` is the guided step with the optimised
∅_t. Sampling from :math:`z^*_T` with the list of ∅_t (``ddim_sample(..., null=nulls)``) reconstructs
the input at guidance w, and Prompt-to-Prompt edits start from the same point.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from ._checks import check_latents
from .progress import progress_bar
from .ddim import ddim_invert, ddim_schedulers
from .denoiser import Denoiser


@dataclass
class NullTextInversion:
    """What null-text inversion returns.

    Attributes:
        latent: z*_T, the pivot's noise end, shape (B, ...).
        nulls: the optimised ∅_t, one per sampling step in sampling order, each (B, ...): one per image.
        pivot: the w = 1 DDIM inversion trajectory [z*_0, …, z*_T].
        inner_iters: the inner Adam iterations each step used, averaged over the images (each image
            stops early on its own loss).
        losses: the last inner loss of each step, averaged over the images.
    """

    latent: torch.Tensor
    nulls: list[torch.Tensor]
    pivot: list[torch.Tensor]
    inner_iters: list[float]
    losses: list[float]


PAPER_STEPS = 50  # the T at which the paper's early-stop threshold ε + i·2e-5 was set


def null_text_invert(
    denoiser: Denoiser,
    x: torch.Tensor,
    cond: torch.Tensor,
    steps: int = 50,
    guidance: float = 7.5,
    null: torch.Tensor | None = None,
    inner_steps: int = 10,
    lr: float = 1e-2,
    early_stop: float = 1e-5,
    per_step: bool = True,
    progress: bool = False,
) -> NullTextInversion:
    """Null-text inversion of latents ``x`` = x_0 (B, ...) with prompt embedding ``cond``.

    Args:
        denoiser: an ε-prediction denoiser whose conditioning is an embedding tensor.
        x: clean latents x_0, shape (B, ...).
        cond: the prompt's embedding c, shape (B or 1, ...).
        steps: DDIM steps T.
        guidance: the CFG scale w the reconstruction will use (paper: 7.5).
        null: the initial unconditional embedding ∅ (the empty prompt's), shape (B or 1, ...); None
            takes ``denoiser.null`` (the image adapters have one).
        inner_steps: N, the most Adam iterations per step (paper: 10); 0 leaves ∅ untouched.
        lr: Adam's learning rate at the first step i = 0, decayed linearly with the step index,
            lr_i = lr·(1 − i/(2T)), i = 0, …, T − 1: exactly the paper's 1e-2·(1 − i/100) at T = 50,
            and for any T the same decay over the trajectory, from lr to just above lr/2 (the paper's
            formula taken literally reaches 0 at i = 100, so it fails for T > 100). The global
            ablation keeps lr constant.
        early_stop: ε of the early-stop threshold ε + 2e-5·i·50/T, applied to each image's own loss: the
            paper's ε + i·2e-5 at its T = 50, and for any T the same threshold at the same point of the
            trajectory (as the learning rate's decay), so that a 20-step run is not held to the
            tighter thresholds of the paper's first 20 steps.
        per_step: True optimises one ∅_t per step (the method); False is the paper's global
            ablation: a single ∅ for all steps, optimised with the same budget — ``inner_steps``
            passes down the trajectory, one Adam step per timestep per pass.
        progress: show a progress bar.

    Raises:
        ValueError: if ``x`` is not float32 (float64 as well as half precision); the message names
            the dtype it got.
    """
    check_latents(x, "x")
    if x.dtype != torch.float32:
        raise ValueError(f"null-text inversion runs in float32, got {x.dtype}: pass x.float() (and a float32 model).")
    if null is None:
        null = getattr(denoiser, "null", None)
        if null is None:
            raise ValueError(f"null-text inversion starts from an unconditional embedding ∅: pass null= (this "
                             f"{type(denoiser).__name__} has no .null of its own).")
    pivot = []
    ddim_invert(denoiser, x, cond, steps, 1.0, trajectory=pivot)
    sampler, _ = ddim_schedulers(denoiser, steps)
    # one ∅ per image: expand a shared (1, ...) null to the batch
    null_t = null.detach().expand(x.shape[0], *null.shape[1:]).clone()
    if not per_step:
        return _global(denoiser, sampler, pivot, cond=cond, null=null_t, guidance=guidance, passes=inner_steps, lr=lr,
                       progress=progress)
    z, nulls, iters, losses = pivot[-1], [], [], []
    for i, t in enumerate(progress_bar(sampler.timesteps, "null-text inversion", progress)):
        null_t = null_t.detach().clone().requires_grad_(True)  # ∅_t starts from ∅_{t+1}
        opt = torch.optim.Adam([null_t], lr=lr * (1 - i / (2 * steps)))
        done = torch.zeros(x.shape[0], dtype=torch.bool)
        used = torch.zeros(x.shape[0])
        last = torch.full((x.shape[0],), float("nan"))
        with torch.no_grad():  # the conditional branch does not depend on ∅: once per step, as the official code
            eps_c = denoiser(z, t, cond)
        for _ in range(inner_steps):
            per_image = _step_loss(denoiser, sampler, z, t, eps_c=eps_c, null=null_t, guidance=guidance, target=pivot[-(i + 2)])
            kept = null_t.detach()[done].clone()
            opt.zero_grad()
            per_image.sum().backward()  # the sum keeps each image's gradient its own
            opt.step()
            with torch.no_grad():
                null_t[done] = kept  # images that already stopped stay where they stopped
            last = torch.where(done, last, per_image.detach())
            used += (~done).float()
            done |= per_image.detach() < early_stop + 2e-5 * i * PAPER_STEPS / steps
            if done.all():
                break
        nulls.append(null_t.detach().clone())
        iters.append(used.mean().item())
        losses.append(last.mean().item())
        with torch.no_grad():
            eps_u = denoiser(z, t, nulls[-1])
            z = sampler.step(eps_u + guidance * (eps_c - eps_u), t, z).prev_sample
    return NullTextInversion(pivot[-1], nulls, pivot, iters, losses)


def _step_loss(denoiser, sampler, z, t, *, eps_c, null, guidance, target):
    """Per-image mean of (z*_{t−1} − DDIM step of z̄_t with CFG ε̂(∅))², shape (B,), differentiable in ∅ only;
    ``eps_c`` is the conditional prediction ε(z̄_t, t, c), computed once per step."""
    eps_u = denoiser(z, t, null)
    step = sampler.step(eps_u + guidance * (eps_c - eps_u), t, z).prev_sample
    return ((step - target) ** 2).flatten(1).mean(1)


def _global(denoiser, sampler, pivot, *, cond, null, guidance, passes, lr, progress) -> NullTextInversion:
    """The global-∅ ablation: one ∅ shared by every step, ``passes`` sweeps down the trajectory."""
    null = null.requires_grad_(True)
    opt = torch.optim.Adam([null], lr=lr)
    losses = []
    for _ in progress_bar(range(passes), "global null-text", progress):
        z, losses = pivot[-1], []
        for i, t in enumerate(sampler.timesteps):
            with torch.no_grad():
                eps_c = denoiser(z, t, cond)
            loss = _step_loss(denoiser, sampler, z, t, eps_c=eps_c, null=null, guidance=guidance, target=pivot[-(i + 2)]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            with torch.no_grad():
                eps_u = denoiser(z, t, null.detach())
                z = sampler.step(eps_u + guidance * (eps_c - eps_u), t, z).prev_sample
    steps = len(sampler.timesteps)
    return NullTextInversion(pivot[-1], [null.detach().clone()] * steps, pivot, [passes] * steps, losses)
