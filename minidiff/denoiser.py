"""The one interface between methods and models.

A *denoiser* is any callable ``denoiser(x, t, cond) -> prediction`` with two attributes:

* ``prediction``: ``"epsilon"`` (DDPM / Stable Diffusion: the model predicts the noise ε in
  :math:`x_t = \\sqrt{\\bar\\alpha_t}\\,x_0 + \\sqrt{1-\\bar\\alpha_t}\\,\\varepsilon`) or
  ``"velocity"`` (rectified flow / SD3 / Flux: the model predicts
  :math:`v = \\mathrm{d}x_t/\\mathrm{d}t = \\varepsilon - x_0` for :math:`x_t = (1-t)\\,x_0 + t\\,\\varepsilon`).
* ``scheduler_config``: the diffusers scheduler config the model was trained with
  (``DDIMScheduler`` for ε models, ``FlowMatchEulerDiscreteScheduler`` for velocity models).

Time is the model's native time: an integer training step in ``[0, 1000)`` for ε models, a
noise level ``t = σ ∈ [0, 1]`` for velocity models (1 = pure noise). ``cond`` is a conditioning
*embedding* (never a label or a string), so that methods such as null-text inversion can optimise
it; ``None`` for unconditional models. Image models add ``encode``/``decode``/``embed``.
Optionally ``embedded_guidance = True`` marks a guidance-distilled model (FLUX.1-dev) that takes the
guidance scale as an input instead of classifier-free guidance: it is called
``denoiser(x, t, cond, guidance=w)`` (:class:`GuidanceDistilledDenoiser`).
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

from ._checks import check_model_inputs

PREDICTIONS = ("epsilon", "velocity")


@runtime_checkable
class Denoiser(Protocol):
    """What every method in minidiff needs from a model."""

    prediction: str
    scheduler_config: dict[str, Any]

    def __call__(self, x: torch.Tensor, t: torch.Tensor | float, cond: torch.Tensor | None) -> torch.Tensor:
        """Prediction for latents ``x`` (B, ...) at time ``t`` under conditioning ``cond`` (B or 1, ...)."""


@runtime_checkable
class GuidanceDistilledDenoiser(Denoiser, Protocol):
    """A denoiser whose guidance scale is an input (one pass per step, no unconditional branch)."""

    embedded_guidance: bool

    def __call__(self, x: torch.Tensor, t: torch.Tensor | float, cond: torch.Tensor | None,
                 guidance: float = 1.0) -> torch.Tensor:
        """Prediction at guidance scale ``guidance`` (the model's embedded w)."""


def check_denoiser(denoiser: Any, prediction: str) -> None:
    """Raise a clear error when ``denoiser`` is not a ``prediction``-type denoiser."""
    got = getattr(denoiser, "prediction", None)
    if got not in PREDICTIONS:
        raise TypeError(
            f"{type(denoiser).__name__} is not a minidiff denoiser: it needs a `prediction` attribute "
            f"in {PREDICTIONS} and a `scheduler_config` (see minidiff.denoiser)."
        )
    if got != prediction:
        raise ValueError(
            f"this method needs a {prediction!r} model but got a {got!r} model; "
            f"use the {'DDIM' if got == 'epsilon' else 'flow'} functions for it instead."
        )


def guided(
    denoiser: Denoiser,
    x: torch.Tensor,
    t: torch.Tensor | float,
    cond: torch.Tensor | None,
    guidance: float = 1.0,
    null: torch.Tensor | None = None,
) -> torch.Tensor:
    """Classifier-free guided prediction (Ho & Salimans 2022, eq. 6 and Alg. 2).

    .. math:: \\hat p = p(x_t, t, \\varnothing) + w\\,\\big(p(x_t, t, c) - p(x_t, t, \\varnothing)\\big)

    The paper writes :math:`(1 + w')\\,p(c) - w'\\,p(\\varnothing)`: its :math:`w'` is this ``guidance`` − 1
    (diffusers' ``guidance_scale`` is this ``guidance``; see the glossary).

    Args:
        denoiser: the model.
        x: latents, shape (B, ...).
        t: time (scalar).
        cond: conditioning embedding c, shape (B or 1, ...), or a tuple of such tensors.
        guidance: w; 1 means no guidance (one model call).
        null: unconditional embedding ∅, shape (B or 1, ...); required when ``guidance != 1``.

    Returns:
        The guided prediction, shape (B, ...).
    """
    check_model_inputs(denoiser, x, cond, guidance, null)
    if getattr(denoiser, "embedded_guidance", False):
        return denoiser(x, t, cond, guidance=guidance)
    if guidance == 1.0:
        return denoiser(x, t, cond)
    if null is None:
        raise ValueError(f"guidance {guidance} needs a null (unconditional) embedding; pass `null=`.")
    both = denoiser(torch.cat([x, x]), t, _stack(null, cond, x.shape[0]))
    uncond, conditional = both.chunk(2)
    return uncond + guidance * (conditional - uncond)


def _stack(null, cond, batch: int):
    """[∅; c] along the batch, each expanded to ``batch`` rows; conditionings may be tuples (SD3)."""
    if isinstance(cond, tuple):
        return tuple(_stack(n, c, batch) for n, c in zip(null, cond))
    return torch.cat([e.expand(batch, *e.shape[1:]) if e.shape[0] == 1 else e for e in (null, cond)])
