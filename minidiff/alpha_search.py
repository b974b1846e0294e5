"""IMPUS's perceptually uniform sampling of α (Yang et al., ICLR 2024, move 7): a binary search for
frames a constant perceptual step δ apart, on any ``sample(α) -> images`` and ``distance``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class PerceptualAlphas:
    """Result of :func:`perceptual_alphas`.

    Attributes:
        alphas: the chosen α, increasing from 0 to 1.
        frames: the frames at those α, (len(alphas), 3, H, W).
        probes: how many frames the search sampled in all (its cost).
    """

    alphas: list[float]
    frames: torch.Tensor
    probes: int


def perceptual_alphas(sample: Callable, distance: Callable, delta: float = 0.2, tol: float = 0.01,
                      max_probes: int = 12, max_frames: int = 64) -> PerceptualAlphas:
    """IMPUS's perceptually uniform sampling of α by binary search.

    From α₀ = 0: while d(x(α_k), x(1)) > δ, bisect α in (α_k, 1] until
    |d(x(α_k), x(α)) − δ| ≤ tol (or ``max_probes`` bisections), take it as α_{k+1}; finally append α = 1.

    Args:
        sample: α (N,) → images (N, 3, H, W).
        distance: (a, b) → (B,) distances.
        delta: δ, the wanted perceptual step (IMPUS: 0.2 in LPIPS units; scale it to your distance).
        tol: tolerance on each step (IMPUS: 0.01).
        max_probes: most bisections per frame.
        max_frames: most frames in all; reaching it raises, as δ is then too small for the path.
    """
    if not 0 < tol < delta:
        raise ValueError(f"need 0 < tol < delta, got tol={tol}, delta={delta}.")
    alphas, frames = [0.0], [sample(torch.tensor([0.0]))]
    end, probes = sample(torch.tensor([1.0])), 2
    while float(distance(frames[-1], end)[0]) > delta:
        if len(alphas) >= max_frames:
            raise RuntimeError(f"{max_frames} frames and still more than δ = {delta} from the end: pass a larger delta.")
        lo, hi = alphas[-1], 1.0
        for _ in range(max_probes):
            mid = (lo + hi) / 2
            frame = sample(torch.tensor([mid]))
            probes += 1
            d = float(distance(frames[-1], frame)[0])
            if abs(d - delta) <= tol:
                break
            lo, hi = (lo, mid) if d > delta else (mid, hi)
        alphas.append(mid)
        frames.append(frame)
    alphas.append(1.0)
    frames.append(end)
    return PerceptualAlphas(alphas, torch.cat(frames), probes)
