"""Wall-clock cost of sampling, for the benchmarks' speed ratios (never asserted: a busy machine moves them)."""
from __future__ import annotations

import time

import minidiff as md


def seconds_per_image(model, prompts: list[str], guidance: float, steps: int, repeats: int = 3) -> float:
    """Wall-clock seconds per image when ``prompts`` are sampled as one batch (best of ``repeats``, after a warm-up)."""
    md.generate(model, prompts, guidance=guidance, steps=steps)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        md.generate(model, prompts, guidance=guidance, steps=steps)
        times.append(time.perf_counter() - start)
    return min(times) / len(prompts)
