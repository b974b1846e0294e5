"""Inversions made for editing with classifier-free guidance, without optimisation.

Null-text inversion (:mod:`minidiff.nulltext`) optimises ∅_t so that guided sampling retraces the
w = 1 inversion path. Two cheaper methods reach the same goal:

* **Negative-prompt inversion** (Miyake et al. 2023): invert with DDIM at w = 1 and use the *source
  prompt's* embedding in place of ∅ while editing. The source branch is then sampled with
  ε(c) + w·(ε(c) − ε(c)) = ε(c), i.e. at w = 1, and retraces its inversion; the target branch gets
  ε(c_src) + w·(ε(c_tar) − ε(c_src)). Costs one DDIM inversion: T denoiser passes.
* **Direct Inversion** ("PnP Inversion", Ju et al., ICLR 2024): invert with DDIM at w = 1 and keep every
  z*_t. While editing at any w, after each step add d_t = z*_{t−1} − step(z*_t, ε_cfg(z*_t, c_src)) to
  the *source* branch only, which puts it back on z*_{t−1}; the target branch follows the source
  through the editor's attention injection. The offset is computed from the step the editor takes
  anyway, so it costs one DDIM inversion too (T passes; ``minidiff.footprint.model_calls``). Its source
  branch then reconstructs at the VAE's bound by construction: it *is* the stored w = 1 trajectory.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .ddim import ddim_invert
from .denoiser import Denoiser


@dataclass
class NegativePromptInversion:
    """latent: z_T (B, ...); null: the source prompt's embedding, to pass as ∅ to the editor."""

    latent: torch.Tensor
    null: torch.Tensor


@dataclass
class DirectInversion:
    """latent: z_T (B, ...); source_path: [z*_T, …, z*_0], the w = 1 inversion in sampling order, onto
    which the editor puts its source branch after each step (``p2p_sample(..., source_path=...)``)."""

    latent: torch.Tensor
    source_path: list[torch.Tensor]


def negative_prompt_inversion(denoiser: Denoiser, x: torch.Tensor, cond: torch.Tensor, steps: int = 50) -> NegativePromptInversion:
    """Negative-prompt inversion of ``x`` = x_0 (B, ...) with the prompt embedding ``cond`` (B or 1, ...);
    the inversion runs at w = 1 by the method's definition (its ``null`` for editing is ``cond``)."""
    return NegativePromptInversion(ddim_invert(denoiser, x, cond, steps), cond)


def direct_inversion(denoiser: Denoiser, x: torch.Tensor, cond: torch.Tensor, steps: int = 50) -> DirectInversion:
    """Direct Inversion of ``x`` = x_0 (B, ...) with the prompt embedding ``cond`` (B or 1, ...), at w = 1
    (the editing guidance enters when the source branch is put back on this path, in ``p2p_sample``)."""
    path = []
    latent = ddim_invert(denoiser, x, cond, steps, trajectory=path)
    return DirectInversion(latent, path[::-1])
