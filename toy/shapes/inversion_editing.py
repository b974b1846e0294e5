"""Inversion for editing: every inversion of tiny-sd (or any ε model with a UNet) paired with every
Prompt-to-Prompt editor on the same ground-truth edits, of the fast world (:mod:`toy.shapes.editing`)
or the detailed one (:mod:`toy.detailed.editing`: the cases say how they are rendered and scored).

* inversions (``INVERSIONS``): DDIM at w = 1 (edited at w = 1, and at the editing guidance as
  ``ddim_w1_cfg``), DDIM at w = 7.5, null-text (∅_t per step, and the global-∅ ablation),
  negative-prompt inversion, Direct Inversion — all edited at w = 7.5 unless named; and FreeInv in its
  paper's editing setting (``FREEINV_INVERSIONS``: inverted at w = 1 with a random transform per step and
  image, edited at the editing guidance, the target branch started from plain DDIM's latent) with the
  paper's latent rotations (``freeinv``) or with horizontal flips (``freeinv_flips``);
* editors (``EDITORS``): Prompt-to-Prompt (``p2p``), P2P with the paper's local blending from the
  blend words' cross-attention maps (``p2p_lb``; ``p2p_lb16`` and ``p2p_lb8`` read the finest maps of at
  most 16×16 or 8×8 instead of a quarter of the latent's side), P2P blending where the two branches differ
  (``p2p_lbd``), and a plain prompt swap with no attention control (``swap``, the control).

:func:`guidance_sweep` edits at several guidance scales, so that no editor is judged only at a scale
that over-guides it (tiny-sd follows its prompts at w = 1).

Used by notebook 06 and ``python benchmarks/run.py editing``.
"""
from __future__ import annotations

import time

import torch

import minidiff as md
from minidiff.batching import batches, join
from minidiff.freeinv import FLIPS, ROTATIONS
from minidiff.p2p import P2PEdit, p2p_sample

STEPS, GUIDANCE, INNER_STEPS = 50, 7.5, 10
SWEEP_GUIDANCES = (1.5, 2.0, 3.0, 7.5)
SWEEP_INVERSIONS = ("ddim_w1_cfg", "nti", "npi", "direct")
SWEEP_EDITORS = ("p2p", "p2p_lb")
INVERSIONS = ("ddim_w1", "ddim_w1_cfg", "ddim_w7_5", "nti", "nti_global", "npi", "direct")
FREEINV_INVERSIONS = ("freeinv", "freeinv_flips")
EDITORS = {
    "p2p": lambda case: P2PEdit(case.source_caption, case.target_caption),
    "p2p_lb": lambda case: P2PEdit(case.source_caption, case.target_caption, blend_words=case.blend_words),
    "p2p_lbd": lambda case: P2PEdit(case.source_caption, case.target_caption, blend_maps="difference"),
    "p2p_lb16": lambda case: P2PEdit(case.source_caption, case.target_caption, blend_words=case.blend_words, blend_max_side=16),
    "p2p_lb8": lambda case: P2PEdit(case.source_caption, case.target_caption, blend_words=case.blend_words, blend_max_side=8),
    "swap": lambda case: P2PEdit(case.source_caption, case.target_caption, cross_replace=0.0, self_replace=0.0),
}


def invert(model, name: str, z0: torch.Tensor, cond: torch.Tensor, steps: int = STEPS, guidance: float = GUIDANCE,
           inner_steps: int = INNER_STEPS) -> dict:
    """Invert latents z0 (N, ...) with ``name`` (``inner_steps``: null-text's N); returns what :func:`minidiff.p2p.p2p_sample` needs for
    the N images: ``latent`` (N, ...), ``null`` (a tensor or a per-step list), ``source_path`` (a list
    or None), ``schedule`` and ``target_latent`` (FreeInv's, else None), the editing ``guidance``, and
    the inversion's own ``result``."""
    plain = {"null": model.null, "source_path": None, "schedule": None, "target_latent": None, "guidance": guidance, "result": None}
    if name in ("ddim_w1", "ddim_w1_cfg"):
        return plain | {"latent": md.ddim_invert(model, z0, cond, steps), "guidance": 1.0 if name == "ddim_w1" else guidance}
    if name == "ddim_w7_5":
        return plain | {"latent": md.ddim_invert(model, z0, cond, steps, guidance, model.null)}
    if name in ("nti", "nti_global"):
        nti = md.null_text_invert(model, z0, cond, null=model.null, steps=steps, guidance=guidance, inner_steps=inner_steps, per_step=name == "nti")
        return plain | {"latent": nti.latent, "null": nti.nulls, "result": nti}
    if name == "npi":
        npi = md.negative_prompt_inversion(model, z0, cond, steps)
        return plain | {"latent": npi.latent, "null": npi.null}
    if name == "direct":
        di = md.direct_inversion(model, z0, cond, steps)
        return plain | {"latent": di.latent, "source_path": di.source_path}
    if name in FREEINV_INVERSIONS:
        schedule = md.per_image_schedule(len(z0), steps, FLIPS if name == "freeinv_flips" else ROTATIONS, torch.Generator().manual_seed(0))
        free = md.freeinv_invert(model, z0, cond, steps, schedule=schedule)
        return plain | {"latent": free.latent, "schedule": free.schedule, "result": free,
                        "target_latent": md.ddim_invert(model, z0, cond, steps)}
    raise ValueError(f"unknown inversion {name!r}; choose from {INVERSIONS + FREEINV_INVERSIONS}.")


def edit_all(model, inv: dict, cases, editor: str, steps: int = STEPS) -> dict:
    """Edit every case from inversion ``inv`` with ``editor``, all in one batch: the edited images
    ``edits`` and source reconstructions ``sources`` (N, 3, H, W), local blending's final ``mask``
    (N, 1, h, w; ones without blending) and the share of the latent it keeps, ``mask_mean``; with
    blend words, their cross-attention shares ``word_maps`` ({side: (N, 2, side, side)}, source and
    target branch; see :func:`minidiff.p2p.p2p_sample`), else None."""
    masks, edits = [], [EDITORS[editor](c) for c in cases]
    word_maps = {} if edits[0].blend_words is not None else None
    z = p2p_sample(model, inv["latent"], edits, steps, inv["guidance"], inv["null"],
                   source_path=inv["source_path"], masks=masks, word_maps=word_maps, schedule=inv.get("schedule"),
                   target_latent=inv.get("target_latent"))
    decoded = model.decode(z.flatten(0, 1)).unflatten(0, (len(cases), 2))
    mask = masks[-1].cpu() if masks else torch.ones(len(cases), 1, *z.shape[-2:])
    return {"sources": decoded[:, 0], "edits": decoded[:, 1], "mask": mask, "mask_mean": float(mask.mean()),
            "word_maps": word_maps}


def evaluate(model, cases, pairs, steps: int = STEPS, guidance: float = GUIDANCE, inner_steps: int = INNER_STEPS,
             batch: int | None = None) -> dict:
    """``batch`` cases are inverted and edited at a time (None: all at once); the results are joined.

    {(inversion, editor): {"scores": per-edit arrays (the cases' ``score``) of the edits, "source_scores":
    the same for the source branch, "edits", "sources", "mask", "mask_mean", "invert_seconds", "edit_seconds",
    "inversion"}} for every pair, each inversion run once."""
    world = type(cases[0])
    z0, cond = model.encode(world.images(cases, model.image_size)), model.embed([c.source_caption for c in cases])
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
            out[name, editor] = edited | {"scores": world.score(edited["edits"], cases),
                                          "source_scores": world.score(edited["sources"], cases),
                                          "invert_seconds": invert_seconds, "edit_seconds": time.perf_counter() - start,
                                          "inversion": inv}
    return out


def guidance_sweep(model, cases, guidances=SWEEP_GUIDANCES, inversions=SWEEP_INVERSIONS, editors=SWEEP_EDITORS,
                   steps: int = STEPS, inner_steps: int = INNER_STEPS, batch: int | None = None,
                   known: dict | None = None) -> dict:
    """Every inversion × editor edited at each guidance w of ``guidances``:
    {(w, inversion, editor): :func:`evaluate`'s result at w}.

    Each inversion runs at the w it edits at (null-text optimises ∅_t for that w; the others do not
    depend on it and are simply re-run). ``known`` maps a guidance to :func:`evaluate`'s results already
    computed at it (e.g. the main table's at 7.5), whose pairs are reused instead of re-run."""
    out = {}
    for w in guidances:
        pairs = [(i, e) for i in inversions for e in editors]
        done = (known or {}).get(w, {})
        missing = [p for p in pairs if p not in done]
        results = {p: done[p] for p in pairs if p in done} | (evaluate(model, cases, missing, steps, w, inner_steps, batch) if missing else {})
        out |= {(w, *p): results[p] for p in pairs}
    return out


def sweep_rows(sweep: dict) -> list[dict]:
    """:func:`guidance_sweep`'s results as rows {guidance, inversion, editor, edit_acc, bg_psnr} with
    their ``_se`` (means over the edits)."""
    rows = []
    for (w, inv, editor), r in sweep.items():
        row = {"guidance": w, "inversion": inv, "editor": editor}
        for metric in ("edit_acc", "bg_psnr"):
            row[metric], row[f"{metric}_se"] = md.mean_se(r["scores"][metric])
        rows.append(row)
    return rows
