"""``python benchmarks/run.py editing``: every inversion × editor of :mod:`toy.shapes.inversion_editing`
on 30 ground-truth edits at 50 steps, for tiny-sd and for tiny-sd-noisy (the paper's regime), and
tiny-sd's guidance sweep (``guidance_sweep``: w = 1.5, 2, 3, 7.5), since it follows prompts at w = 1;
and the detailed world's figures (``"detailed"``, :mod:`benchmarks.detailed`) once tiny-sd-64 is shipped."""
from __future__ import annotations

import minidiff as md
from minidiff.pipelines import load_pipeline, registered_models
from toy.shapes.editing import editing_cases, summarize
from toy.shapes.inversion_editing import EDITORS, GUIDANCE, INVERSIONS, STEPS, evaluate, guidance_sweep, sweep_rows


#: the fast world's editors: on its 8×8 latents ``p2p_lb8`` reads the same maps as ``p2p_lb16``
FAST_EDITORS = tuple(e for e in EDITORS if e != "p2p_lb8")


def run(n: int = 30, steps: int = STEPS, inversions=INVERSIONS, editors=FAST_EDITORS,
        models=("tiny-sd", "tiny-sd-noisy"), regime_editors=("p2p", "p2p_lb"), detailed_model: str | None = "tiny-sd-64") -> dict:
    """All (inversion, editor) pairs on ``n`` cases for the first of ``models`` (flat figures plus
    per-kind breakdowns), and every inversion with ``regime_editors`` for each other model under
    ``paper_regime`` (tiny-sd-noisy: the model that needs CFG, as Stable Diffusion does)."""
    figures, pipe, results = _figures(models[0], n, steps, inversions, editors)
    sweep = guidance_sweep(pipe, editing_cases(n), steps=steps, known={GUIDANCE: results})
    figures["guidance_sweep"] = [{k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()} for row in sweep_rows(sweep)]
    for other in models[1:]:
        figures.setdefault("paper_regime", {})[other] = _figures(other, n, steps, inversions, regime_editors)[0]
    if detailed_model is not None:
        if detailed_model in registered_models():
            from benchmarks import detailed

            figures["detailed"] = detailed.run(detailed_model)
        else:
            print(f"detailed world skipped: {detailed_model} is not shipped yet (python -m toy.train {detailed_model})")
    return figures


def _figures(model: str, n: int, steps: int, inversions, editors) -> tuple[dict, object, dict]:
    """(figures, the pipeline, :func:`evaluate`'s results) of every inversion × editor on ``model``."""
    pipe = load_pipeline(model, device="cpu")
    pipe.unet.requires_grad_(False)  # null-text optimises ∅ only
    cases = editing_cases(n)
    results = evaluate(pipe, cases, [(i, e) for i in inversions for e in editors], steps)
    return {"model": model, "n_edits": n, "steps": steps} | pair_figures(results, cases), pipe, results


def pair_figures(results: dict, cases) -> dict:
    """Flat ``{inversion}_{editor}_{metric}`` means and ``_se``, per-kind means under ``by_kind``, the
    source branch's PSNR, LocalBlend's kept share and the seconds, from :func:`evaluate`'s results."""
    n = len(cases)
    sources = type(cases[0]).images(cases)
    figures: dict = {"by_kind": {}}
    for (name, editor), r in results.items():
        for metric, stats in summarize(r["scores"], cases).items():
            figures[f"{name}_{editor}_{metric}"] = round(stats["mean"], 3)
            figures[f"{name}_{editor}_{metric}_se"] = round(stats["se"], 3)
            figures["by_kind"][f"{name}_{editor}_{metric}"] = {k: round(v, 3) for k, v in stats.items() if k not in ("mean", "se")}
        if editor.startswith("p2p_lb"):
            figures[f"{name}_{editor}_mask_mean"] = round(r["mask_mean"], 3)
        figures[f"{name}_source_psnr"] = round(md.psnr(sources, r["sources"]), 3)
        edit_seconds = max(s["edit_seconds"] for (i, _), s in results.items() if i == name)
        figures[f"{name}_seconds_per_edit"] = round((r["invert_seconds"] + edit_seconds) / n, 3)
        figures[f"{name}_invert_seconds_per_image"] = round(r["invert_seconds"] / n, 3)
    return figures
