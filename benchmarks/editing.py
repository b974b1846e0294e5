"""Inversion for editing on tiny-sd, scored against the shapes world's ground-truth edits.

Every inversion is paired with every editor on the same held-out cases (all three edit kinds):

* inversions: DDIM at w = 1 (edited at w = 1, and at the editing guidance as ``ddim_w1_cfg``), DDIM
  at w = 7.5, null-text (∅_t per step, and the global-∅ ablation), negative-prompt inversion,
  Direct Inversion — all edited at w = 7.5 unless named;
* editors: Prompt-to-Prompt (``p2p``), P2P with local blending (``p2p_lb``), and a plain prompt swap
  with no attention control (``swap``, the control).
"""
from __future__ import annotations

import time

import torch

import minidiff as md
from minidiff.p2p import P2PEdit, p2p_sample
from minidiff.pipelines import load_pipeline
from toy.shapes import caption, render
from toy.shapes.editing import editing_cases, score_edits, summarize

STEPS, GUIDANCE = 50, 7.5
INVERSIONS = ("ddim_w1", "ddim_w1_cfg", "ddim_w7_5", "nti", "nti_global", "npi", "direct")
EDITORS = {
    "p2p": lambda case: P2PEdit(caption(case.source), caption(case.target)),
    "p2p_lb": lambda case: P2PEdit(caption(case.source), caption(case.target), blend_words=case.blend_words),
    "swap": lambda case: P2PEdit(caption(case.source), caption(case.target), cross_replace=0.0, self_replace=0.0),
}


def invert(model, name: str, z0: torch.Tensor, cond: torch.Tensor, steps: int = STEPS) -> dict:
    """Invert latents z0 (N, ...) with ``name``; returns what the editor needs for image i:
    ``latent(i)``, ``null(i)``, ``source_path(i)`` and the editing ``guidance``."""
    one = lambda x, i: x[i:i + 1]  # noqa: E731
    plain = {"null": lambda i: model.null, "source_path": lambda i: None, "guidance": GUIDANCE}
    if name in ("ddim_w1", "ddim_w1_cfg"):
        zT = md.ddim_invert(model, z0, cond, steps)
        return plain | {"latent": lambda i: one(zT, i), "guidance": 1.0 if name == "ddim_w1" else GUIDANCE}
    if name == "ddim_w7_5":
        zT = md.ddim_invert(model, z0, cond, steps, GUIDANCE, model.null)
        return plain | {"latent": lambda i: one(zT, i)}
    if name in ("nti", "nti_global"):
        nti = md.null_text_invert(model, z0, cond, model.null, steps, GUIDANCE, per_step=name == "nti")
        return plain | {"latent": lambda i: one(nti.latent, i), "null": lambda i: [one(n, i) for n in nti.nulls]}
    if name == "npi":
        npi = md.negative_prompt_inversion(model, z0, cond, steps)
        return plain | {"latent": lambda i: one(npi.latent, i), "null": lambda i: one(npi.null, i)}
    if name == "direct":
        di = md.direct_inversion(model, z0, cond, steps)
        return plain | {"latent": lambda i: one(di.latent, i), "source_path": lambda i: [one(z, i) for z in di.source_path]}
    raise ValueError(f"unknown inversion {name!r}; choose from {INVERSIONS}.")


def run(n: int = 30, steps: int = STEPS, inversions=INVERSIONS, editors=tuple(EDITORS)) -> dict:
    """All (inversion, editor) pairs on ``n`` cases; flat figures plus per-kind breakdowns."""
    model = load_pipeline("tiny-sd", device="cpu")
    cases = editing_cases(n)
    images = render([c.source for c in cases])
    z0, cond = model.encode(images), model.embed([caption(c.source) for c in cases])
    figures: dict = {"n_edits": n, "steps": steps, "by_kind": {}}
    for name in inversions:
        start = time.perf_counter()
        inv = invert(model, name, z0, cond, steps)
        invert_seconds = time.perf_counter() - start
        edit_seconds = 0.0
        for editor in editors:
            start = time.perf_counter()
            edited = torch.stack([
                model.decode(p2p_sample(model, inv["latent"](i), EDITORS[editor](case), steps, inv["guidance"], inv["null"](i),
                                        source_path=inv["source_path"](i)))[1]
                for i, case in enumerate(cases)])
            edit_seconds = max(edit_seconds, time.perf_counter() - start)
            summary = summarize(score_edits(edited, cases), cases)
            for metric, stats in summary.items():
                figures[f"{name}_{editor}_{metric}"] = round(stats["mean"], 3)
                figures[f"{name}_{editor}_{metric}_se"] = round(stats["se"], 3)
                figures["by_kind"][f"{name}_{editor}_{metric}"] = {k: round(v, 3) for k, v in stats.items() if k not in ("mean", "se")}
        figures[f"{name}_seconds_per_edit"] = round((invert_seconds + edit_seconds) / n, 3)
        figures[f"{name}_invert_seconds_per_image"] = round(invert_seconds / n, 3)
    return figures
