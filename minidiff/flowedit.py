"""FlowEdit: inversion-free text-based editing with flow models (Kulikov et al., ICCV 2025, Alg. 1).

FlowEdit builds a direct path from the source to the target distribution. At each time t it
noises the source with fresh noise, :math:`Z^{src}_t = (1-t)X^{src} + tN_t`, shifts that noisy image
by the edit made so far, :math:`Z^{tar}_t = Z^{FE}_t + Z^{src}_t - X^{src}`, and moves the edit by the
difference of the two velocity fields, averaged over ``n_avg`` draws of :math:`N_t`:

.. math:: \\mathrm{d}Z^{FE}_t = \\mathbb{E}_{N_t}\\big[V^{tar}(Z^{tar}_t, t) - V^{src}(Z^{src}_t, t)\\big]\\,\\mathrm{d}t.

Only the last ``n_max`` of the T steps run (``t`` starts below 1 so the edit keeps structure);
the last ``n_min`` steps are plain target sampling from the noised edit (an SDEdit-style tail).
"""
from __future__ import annotations

import torch
from ._checks import check_latents, check_steps
from .progress import progress_bar
from .denoiser import Denoiser, guided
from .flow import _euler, flow_sigmas


@torch.no_grad()
def flowedit(
    denoiser: Denoiser,
    x: torch.Tensor,
    cond_src: torch.Tensor | None,
    cond_tar: torch.Tensor | None,
    steps: int = 50,
    n_max: int = 33,
    n_min: int = 0,
    n_avg: int = 1,
    guidance_src: float = 3.5,
    guidance_tar: float = 13.5,
    null: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    target: Denoiser | None = None,
    trajectory: list | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Edit ``x`` = X_src from the source condition to the target condition (FlowEdit, Algorithm 1).

    Args:
        denoiser: a velocity denoiser; it gives V_src (and V_tar unless ``target`` is given).
        x: the source latents X_src, shape (B, ...).
        cond_src: source conditioning embedding (B or 1, ...), or None.
        cond_tar: target conditioning embedding (B or 1, ...), or None.
        steps: T, the number of steps of the full time grid (defaults: SD3's 50).
        n_max: how many of the last steps are run; the edit starts at t_{T - n_max}.
        n_min: how many final steps are plain target sampling (SDEdit tail) instead of FlowEdit.
        n_avg: number of noise draws averaged in each velocity difference.
        guidance_src: CFG scale of V_src.
        guidance_tar: CFG scale of V_tar.
        null: unconditional embedding, needed when a guidance scale is not 1.
        generator: random generator for the noise N_t (fresh each step), for reproducibility.
        target: a second velocity model giving V_tar (e.g. a flow trained on the target
            distribution); ``cond_tar`` is then passed to it.
        trajectory: a list to which Z^{FE} is appended: X_src, then Z after each step run.
        progress: show a tqdm progress bar.

    Returns:
        The edited latents, shape (B, ...).
    """
    check_latents(x, "x")
    check_steps(steps, 1000)
    x_src = x
    if not 0 <= n_min < n_max <= steps:
        raise ValueError(f"need 0 <= n_min < n_max <= steps, got n_min={n_min}, n_max={n_max}, steps={steps}.")
    check_steps(n_avg, 10_000, "n_avg")
    target = denoiser if target is None else target
    sigmas = flow_sigmas(denoiser, steps).to(x_src.device)

    def noise() -> torch.Tensor:
        return torch.randn(x_src.shape, generator=generator, dtype=x_src.dtype).to(x_src.device)

    record = trajectory.append if trajectory is not None else (lambda _: None)
    z = x_src
    record(z)
    for i in progress_bar(range(steps - n_max, steps - n_min), "FlowEdit", progress):
        t, dt = sigmas[i], sigmas[i + 1] - sigmas[i]
        v_delta = torch.zeros_like(x_src)
        for _ in range(n_avg):
            z_src = (1 - t) * x_src + t * noise()
            z_tar = z + z_src - x_src
            v_tar = guided(target, z_tar, t, cond_tar, guidance_tar, null)
            v_src = guided(denoiser, z_src, t, cond_src, guidance_src, null)
            v_delta += (v_tar - v_src) / n_avg
        z = z + dt * v_delta
        record(z)
    if n_min > 0:
        # SDEdit tail from Z^tar_t = Z^FE + Z^src_t − X_src with one fresh draw (Alg. 1's last line),
        # then V_tar alone.
        i0 = steps - n_min
        z = z + sigmas[i0] * (noise() - x_src)
        tail = []
        z = _euler(target, z, sigmas[i0:], cond=cond_tar, guidance=guidance_tar, null=null, trajectory=tail)
        for z_tail in tail[1:]:
            record(z_tail)
    return z
