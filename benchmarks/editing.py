"""``python benchmarks/run.py editing``: every inversion × editor of :mod:`toy.shapes.inversion_editing`
on 30 ground-truth edits at 50 steps, for tiny-sd and for tiny-sd-noisy (the paper's regime)."""
from __future__ import annotations

import minidiff as md
from minidiff.pipelines import load_pipeline
from toy.shapes import render
from toy.shapes.editing import editing_cases, summarize
from toy.shapes.inversion_editing import EDITORS, INVERSIONS, STEPS, evaluate

def run(n: int = 30, steps: int = STEPS, inversions=INVERSIONS, editors=tuple(EDITORS),
        models=("tiny-sd", "tiny-sd-noisy"), regime_editors=("p2p", "p2p_lb")) -> dict:
    """All (inversion, editor) pairs on ``n`` cases for the first of ``models`` (flat figures plus
    per-kind breakdowns), and every inversion with ``regime_editors`` for each other model under
    ``paper_regime`` (tiny-sd-noisy: the model that needs CFG, as Stable Diffusion does)."""
    figures = _figures(models[0], n, steps, inversions, editors)
    for other in models[1:]:
        figures.setdefault("paper_regime", {})[other] = _figures(other, n, steps, inversions, regime_editors)
    return figures


def _figures(model: str, n: int, steps: int, inversions, editors) -> dict:
    pipe = load_pipeline(model, device="cpu")
    pipe.unet.requires_grad_(False)  # null-text optimises ∅ only
    cases = editing_cases(n)
    results = evaluate(pipe, cases, [(i, e) for i in inversions for e in editors], steps)
    figures: dict = {"model": model, "n_edits": n, "steps": steps, "by_kind": {}}
    for (name, editor), r in results.items():
        for metric, stats in summarize(r["scores"], cases).items():
            figures[f"{name}_{editor}_{metric}"] = round(stats["mean"], 3)
            figures[f"{name}_{editor}_{metric}_se"] = round(stats["se"], 3)
            figures["by_kind"][f"{name}_{editor}_{metric}"] = {k: round(v, 3) for k, v in stats.items() if k not in ("mean", "se")}
        if editor.startswith("p2p_lb"):
            figures[f"{name}_{editor}_mask_mean"] = round(r["mask_mean"], 3)
        figures[f"{name}_source_psnr"] = round(md.psnr(render([c.source for c in cases]), r["sources"]), 3)
        edit_seconds = max(s["edit_seconds"] for (i, _), s in results.items() if i == name)
        figures[f"{name}_seconds_per_edit"] = round((r["invert_seconds"] + edit_seconds) / n, 3)
        figures[f"{name}_invert_seconds_per_image"] = round(r["invert_seconds"] / n, 3)
    return figures
