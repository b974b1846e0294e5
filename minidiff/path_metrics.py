"""Path metrics of a morph x(α), α ∈ [0, 1] (IMPUS, DiffMorpher): the relative perceptual path
diversity (rPPD) of a sequence of frames, its consecutive perceptual steps and their summaries, and the
perceptual path length (PPL, Karras et al. 2019) with a bootstrap standard error. Model-agnostic:
each takes frames or a ``sample(α) -> images`` callable and a ``distance(a, b) -> (B,)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ._checks import check_steps
from .stats import bootstrap_se


def relative_ppd(frames: torch.Tensor, distance: Callable) -> float:
    """rPPD of a sequence of n ≥ 3 frames (n, 3, H, W) from α = 0 to α = 1:
    the n − 1 consecutive distances summed, over (n − 1)·d(first, last)."""
    if frames.shape[0] < 3:
        raise ValueError(f"rPPD needs at least 3 frames (both ends and an interpolant), got {frames.shape[0]}.")
    steps = distance(frames[1:], frames[:-1])
    return float(steps.sum() / ((len(frames) - 1) * distance(frames[-1:], frames[:1])[0]).clamp_min(1e-12))


@dataclass
class PathMetrics:
    """The consecutive perceptual steps of a sequence of frames and their summaries.

    Attributes:
        steps: d(frame_i, frame_{i+1}), shape (n − 1,).
        total: Σ steps (DiffMorpher's LPIPS_T analogue).
        largest: max steps (LPIPS_max analogue).
        max_over_mean: max / mean of the steps; 1 for perfectly even spacing.
    """

    steps: torch.Tensor
    total: float
    largest: float
    max_over_mean: float


def path_metrics(frames: torch.Tensor, distance: Callable) -> PathMetrics:
    """:class:`PathMetrics` of frames (n ≥ 2, 3, H, W) under ``distance(a, b) -> (B,)``."""
    if frames.shape[0] < 2:
        raise ValueError(f"a path needs at least 2 frames, got {frames.shape[0]}.")
    steps = distance(frames[1:], frames[:-1])
    mean = float(steps.mean())
    return PathMetrics(steps, float(steps.sum()), float(steps.max()), float(steps.max()) / max(mean, 1e-12))


@dataclass
class PathLength:
    """A perceptual path length estimate.

    Attributes:
        value: the mean of d(x(α), x(α + ε)) / ε² over the α drawn (trimmed only when ``trimmed``).
        se: its bootstrap standard error (resampling the α).
        n: the α drawn.
        trimmed: whether values outside the 1st–99th percentiles were dropped (only for n ≥ ``TRIM_FROM``).
    """

    value: float
    se: float
    n: int
    trimmed: bool


#: StyleGAN's PPL drops the values outside the 1st–99th percentiles of ~10⁵ samples. With a few dozen,
#: np.percentile's interpolation always drops the largest value: the abrupt transition PPL exists to catch.
TRIM_FROM = 300


def perceptual_path_length(sample: Callable, distance: Callable, n: int = 256, eps: float = 1e-4,
                           generator: torch.Generator | None = None, batch: int = 64, n_boot: int = 1000) -> PathLength:
    """Perceptual path length of a morph (Karras et al. 2019, Sec. 4.1, eq. 2, with the morph x(α) in place of the
    generator on slerped latents; as IMPUS and DiffMorpher report it).

    .. math:: \\mathrm{PPL} = \\mathbb E_{\\alpha \\sim U(0, 1-\\varepsilon)}
              \\Big[\\tfrac{1}{\\varepsilon^2}\\, d\\big(x(\\alpha), x(\\alpha + \\varepsilon)\\big)\\Big]

    The values outside their 1st–99th percentiles are dropped only when n ≥ :data:`TRIM_FROM`; the
    standard error is a bootstrap over the α drawn (with the same trimming rule in each resample).

    Args:
        sample: α (N,) → images (N, 3, H, W) in [−1, 1].
        distance: (a, b) → (B,) distances.
        n: number of α drawn.
        eps: ε (1e-4 as in the papers).
        generator: seeds the α draws (and the bootstrap).
        batch: at most this many images per call of ``sample`` (pairs are kept together).
        n_boot: bootstrap resamples.
    """
    check_steps(n, 10**7, "n")
    alpha = torch.rand(n, generator=generator, dtype=torch.float64) * (1 - eps)
    values = []
    for chunk in alpha.split(max(1, batch // 2)):
        images = sample(torch.cat([chunk, chunk + eps]).float())
        values.append(distance(*images.chunk(2)).double() / eps**2)
    values = torch.cat(values).cpu().numpy()
    trim = n >= TRIM_FROM

    def estimate(v: np.ndarray) -> float:
        if not trim:
            return float(v.mean())
        lo, hi = np.percentile(v, [1, 99])
        return float(v[(v >= lo) & (v <= hi)].mean())

    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator)) if generator is not None else 0
    return PathLength(estimate(values), bootstrap_se(estimate, values, n_boot, seed), n, trim)
