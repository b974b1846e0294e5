"""How the offline perceptual distance grows along the detailed world's known one-parameter changes.

``python -m benchmarks.perceptual_scaling`` renders, for held-out one-object scenes, K = 11 evenly spaced
values of one hidden factor (hue within its colour name, size, roundness, horizontal position, the
texture's frequency) with everything else fixed, and fits d(θ_0, θ_k) ∝ k^γ under
:func:`minidiff.perceptual_distance` (the VAE-feature proxy on vae-64). It also reports the rPPD of each
evenly spaced strip.

Why it matters for IMPUS: rPPD = Σ d(consecutive) / ((n − 1)·d(ends)) does not depend on the distance's
scale (multiply d by a and both sides scale), only on how d grows with the change. A distance additive
along a one-parameter path (γ = 1) gives rPPD = 1/(n − 1) = 0.1 on an evenly spaced strip; one that grows
faster than linearly (γ > 1, as a squared feature difference does for small changes) gives less, and the
rank rule 2^max(0, ⌊18·rPPD − 6⌋) then always gives rank 1. A calibration of the proxy must therefore
fix its exponent (d^(1/γ)) before its scale: :data:`toy.detailed.morphs.PROXY_CALIBRATION` does.
"""
from __future__ import annotations

import json

import numpy as np

from toy.detailed.morphs import K, STRIP_FACTORS as FACTORS, strip


def run(n_scenes: int = 8, seed: int = 5) -> dict:
    """{factor: {"gamma", "gamma_se", "rppd", "n"}} over up to ``n_scenes`` held-out one-object scenes
    (strips that leave the image, or that change no pixel, e.g. a triangle's roundness, are skipped)."""
    import minidiff as md
    from minidiff.pipelines import load_pipeline
    from toy.detailed import render, sample_scenes

    vae = load_pipeline("tiny-sd-64", device="cpu").vae
    dist = lambda a, b: md.perceptual_distance(a, b, vae, backend="vae")  # noqa: E731
    scenes = [s for s in sample_scenes(8 * n_scenes, seed=seed, split="heldout") if len(s.objects) == 1][:n_scenes]
    out = {}
    for factor in FACTORS:
        strips = []
        for s in scenes:
            try:
                frames = render(strip(s, factor))
            except ValueError:  # the strip leaves the image
                continue
            if (dist(frames[1:], frames[:1]) > 1e-9).sum() >= 3:
                strips.append(frames)
        if len(strips) < 2:
            out[factor] = {"gamma": None, "gamma_se": None, "rppd": None, "n": len(strips)}
            continue
        gamma, gamma_se = md.growth_exponent(strips, dist)
        rppd = float(np.mean([md.relative_ppd(f, dist) for f in strips]))
        out[factor] = {"gamma": round(gamma, 3), "gamma_se": round(gamma_se, 3), "rppd": round(rppd, 4), "n": len(strips)}
    return out


if __name__ == "__main__":
    figures = run()
    for factor, f in figures.items():
        if f["n"]:
            print(f"{factor:<10} γ = {f['gamma']:.2f} ± {f['gamma_se']:.2f}, rPPD of an evenly spaced strip {f['rppd']:.3f} "
                  f"({f['n']} scenes; additive: γ = 1, rPPD {1 / (K - 1):.2f})")
    print(json.dumps(figures))
