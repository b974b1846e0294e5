"""Inversion for editing on the shapes world: every inversion of tiny-sd (or any ε model with a UNet)
paired with every Prompt-to-Prompt editor on the same ground-truth edits (:mod:`toy.shapes.editing`).

* inversions (``INVERSIONS``): DDIM at w = 1 (edited at w = 1, and at the editing guidance as
  ``ddim_w1_cfg``), DDIM at w = 7.5, null-text (∅_t per step, and the global-∅ ablation),
  negative-prompt inversion, Direct Inversion — all edited at w = 7.5 unless named;
* editors (``EDITORS``): Prompt-to-Prompt (``p2p``), P2P with the paper's local blending from the
  blend words' cross-attention maps (``p2p_lb``), P2P blending where the two branches differ
  (``p2p_lbd``), and a plain prompt swap with no attention control (``swap``, the control).

Used by notebook 06 and ``python benchmarks/run.py editing``.
"""
from __future__ import annotations

import time

import torch

import minidiff as md
from minidiff.batching import batches, join
from minidiff.p2p import P2PEdit, p2p_sample
from toy.shapes.editing import score_edits
from toy.shapes.world import caption, render

STEPS, GUIDANCE, INNER_STEPS = 50, 7.5, 10
INVERSIONS = ("ddim_w1", "ddim_w1_cfg", "ddim_w7_5", "nti", "nti_global", "npi", "direct")
EDITORS = {
    "p2p": lambda case: P2PEdit(caption(case.source), caption(case.target)),
    "p2p_lb": lambda case: P2PEdit(caption(case.source), caption(case.target), blend_words=case.blend_words),
    "p2p_lbd": lambda case: P2PEdit(caption(case.source), caption(case.target), blend_maps="difference"),
    "swap": lambda case: P2PEdit(caption(case.source), caption(case.target), cross_replace=0.0, self_replace=0.0),
}


def invert(model, name: str, z0: torch.Tensor, cond: torch.Tensor, steps: int = STEPS, guidance: float = GUIDANCE,
           inner_steps: int = INNER_STEPS) -> dict:
    """Invert latents z0 (N, ...) with ``name`` (``inner_steps``: null-text's N); returns what :func:`minidiff.p2p.p2p_sample` needs for
    the N images: ``latent`` (N, ...), ``null`` (a tensor or a per-step list), ``source_path`` (a list
    or None), the editing ``guidance``, and the inversion's own ``result``."""
    plain = {"null": model.null, "source_path": None, "guidance": guidance, "result": None}
    if name in ("ddim_w1", "ddim_w1_cfg"):
        return plain | {"latent": md.ddim_invert(model, z0, cond, steps), "guidance": 1.0 if name == "ddim_w1" else guidance}
    if name == "ddim_w7_5":
        return plain | {"latent": md.ddim_invert(model, z0, cond, steps, guidance, model.null)}
    if name in ("nti", "nti_global"):
        nti = md.null_text_invert(model, z0, cond, model.null, steps, guidance, inner_steps, per_step=name == "nti")
        return plain | {"latent": nti.latent, "null": nti.nulls, "result": nti}
    if name == "npi":
        npi = md.negative_prompt_inversion(model, z0, cond, steps)
        return plain | {"latent": npi.latent, "null": npi.null}
    if name == "direct":
        di = md.direct_inversion(model, z0, cond, steps)
        return plain | {"latent": di.latent, "source_path": di.source_path}
    raise ValueError(f"unknown inversion {name!r}; choose from {INVERSIONS}.")


def edit_all(model, inv: dict, cases, editor: str, steps: int = STEPS) -> dict:
    """Edit every case from inversion ``inv`` with ``editor``, all in one batch: the edited images
    ``edits`` and source reconstructions ``sources`` (N, 3, H, W), local blending's final ``mask``
    (N, 1, h, w; ones without blending) and the share of the latent it keeps, ``mask_mean``."""
    masks = []
    z = p2p_sample(model, inv["latent"], [EDITORS[editor](c) for c in cases], steps, inv["guidance"], inv["null"],
                   source_path=inv["source_path"], masks=masks)
    decoded = model.decode(z.flatten(0, 1)).unflatten(0, (len(cases), 2))
    mask = masks[-1].cpu() if masks else torch.ones(len(cases), 1, *z.shape[-2:])
    return {"sources": decoded[:, 0], "edits": decoded[:, 1], "mask": mask, "mask_mean": float(mask.mean())}


def evaluate(model, cases, pairs, steps: int = STEPS, guidance: float = GUIDANCE, inner_steps: int = INNER_STEPS,
             batch: int | None = None) -> dict:
    """``batch`` cases are inverted and edited at a time (None: all at once); the results are joined.

    {(inversion, editor): {"scores": per-edit arrays (``score_edits``) of the edits, "source_scores":
    the same for the source branch, "edits", "sources", "mask", "mask_mean", "invert_seconds", "edit_seconds",
    "inversion"}} for every pair, each inversion run once."""
    images = render([c.source for c in cases], size=model.image_size)
    z0, cond = model.encode(images), model.embed([caption(c.source) for c in cases])
    parts = batches(len(cases), batch)
    sizes = [p.stop - p.start for p in parts]
    out = {}
    for name in dict.fromkeys(inv for inv, _ in pairs):
        start = time.perf_counter()
        chunks = [invert(model, name, z0[p], cond[p], steps, guidance, inner_steps) for p in parts]
        invert_seconds = time.perf_counter() - start
        inv = join(chunks, sizes)
        for editor in (e for i, e in pairs if i == name):
            start = time.perf_counter()
            edited = join([edit_all(model, c, cases[p], editor, steps) for c, p in zip(chunks, parts)], sizes)
            edited["mask_mean"] = float(edited["mask"].mean())
            out[name, editor] = edited | {"scores": score_edits(edited["edits"], cases),
                                          "source_scores": score_edits(edited["sources"], cases),
                                          "invert_seconds": invert_seconds, "edit_seconds": time.perf_counter() - start,
                                          "inversion": inv}
    return out
