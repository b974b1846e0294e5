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
fix its exponent (d^(1/γ)) before its scale.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np

K = 11
FACTORS = ("hue", "size", "roundness", "position", "frequency")


def strip(scene, factor: str, k: int = K) -> list:
    """``k`` copies of a one-object ``scene`` with ``factor`` evenly spaced over its range (the rest fixed)."""
    o = scene.objects[0]
    changes = {
        "hue": lambda t: dataclasses.replace(o, hue=-12 + 24 * t),
        "size": lambda t: dataclasses.replace(o, size=o.size * (0.8 + 0.3 * t)),
        "roundness": lambda t: dataclasses.replace(o, roundness=t),
        "position": lambda t: dataclasses.replace(o, cx=o.cx - 3 + 6 * t),
    }
    if factor == "frequency":
        return [dataclasses.replace(scene, texture="striped", frequency=2 + 4 * t) for t in np.linspace(0, 1, k)]
    return [dataclasses.replace(scene, objects=(changes[factor](t),)) for t in np.linspace(0, 1, k)]


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
        gammas, rppds = [], []
        for s in scenes:
            try:
                frames = render(strip(s, factor))
            except ValueError:
                continue
            d0 = dist(frames[1:], frames[:1]).numpy()
            k = np.arange(1, K)
            if (d0 > 1e-9).sum() < 3:
                continue
            ok = d0 > 1e-9
            gammas.append(np.polyfit(np.log(k[ok]), np.log(d0[ok]), 1)[0])
            rppds.append(md.relative_ppd(frames, dist))
        if not gammas:
            out[factor] = {"gamma": None, "gamma_se": None, "rppd": None, "n": 0}
            continue
        gamma, gamma_se = md.mean_se(gammas)
        out[factor] = {"gamma": round(gamma, 3), "gamma_se": round(gamma_se, 3), "rppd": round(float(np.mean(rppds)), 4), "n": len(gammas)}
    return out


if __name__ == "__main__":
    figures = run()
    for factor, f in figures.items():
        if f["n"]:
            print(f"{factor:<10} γ = {f['gamma']:.2f} ± {f['gamma_se']:.2f}, rPPD of an evenly spaced strip {f['rppd']:.3f} "
                  f"({f['n']} scenes; additive: γ = 1, rPPD {1 / (K - 1):.2f})")
    print(json.dumps(figures))
