"""The two editors FlowEdit is measured against (Kulikov et al., ICCV 2025, Sec. 5), for velocity models.

Both start where FlowEdit does, at :math:`t_{T-n_{max}}` of the model's own time grid, so the three
editors spend the same number of steps and differ only in how they leave the source:

* **editing by inversion**: integrate the ODE *up* from :math:`X^{src}` with the source prompt
  (Euler, the flow analogue of DDIM inversion) to :math:`t_{T-n_{max}}`, then back *down* with the
  target prompt. The edit is as good as the inversion: with CFG, inversion drifts.
* **SDEdit** (Meng et al., ICLR 2022): noise the source with fresh noise,
  :math:`Z_t = (1-t)X^{src} + tN`, and sample down with the target prompt. No inversion, but the
  noise forgets the structure that it covers.
"""
from __future__ import annotations

import torch

from ._checks import check_latents, check_steps
from .denoiser import Denoiser
from .flow import _euler, flow_sigmas


def _start(denoiser: Denoiser, x_src: torch.Tensor, steps: int, n_max: int) -> torch.Tensor:
    """The grid from t_{T − n_max} down to 0, shape (n_max + 1,), after checking the arguments."""
    check_latents(x_src, "x_src")
    check_steps(steps, 1000)
    if not 1 <= n_max <= steps:
        raise ValueError(f"need 1 <= n_max <= steps, got n_max={n_max}, steps={steps}.")
    return flow_sigmas(denoiser, steps)[steps - n_max:].to(x_src.device)


@torch.no_grad()
def inversion_edit(
    denoiser: Denoiser,
    x: torch.Tensor,
    cond_src,
    cond_tar,
    steps: int = 50,
    n_max: int = 33,
    guidance_src: float = 3.5,
    guidance_tar: float = 13.5,
    null=None,
) -> torch.Tensor:
    """Edit by inversion: Euler up from ``x`` = X_src (B, ...) to t_{T − n_max} with the source prompt at
    ``guidance_src``, then down with the target prompt at ``guidance_tar``. Returns (B, ...)."""
    grid = _start(denoiser, x, steps, n_max)
    z = _euler(denoiser, x, grid.flip(0), cond=cond_src, guidance=guidance_src, null=null)
    return _euler(denoiser, z, grid, cond=cond_tar, guidance=guidance_tar, null=null)


@torch.no_grad()
def sdedit(
    denoiser: Denoiser,
    x: torch.Tensor,
    cond_tar,
    steps: int = 50,
    n_max: int = 33,
    guidance_tar: float = 13.5,
    null=None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SDEdit at FlowEdit's strength: Z = (1 − t)X_src + tN at t = t_{T − n_max}, then the target prompt's
    ODE down to 0. ``x`` = X_src (B, ...) → (B, ...)."""
    grid = _start(denoiser, x, steps, n_max)
    t = grid[0]
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return _euler(denoiser, (1 - t) * x + t * noise, grid, cond=cond_tar, guidance=guidance_tar, null=null)
