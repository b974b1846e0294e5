"""FlowEdit against editing-by-inversion and SDEdit on a world's ground-truth edits.

Each editor turns the source latents of a world's editing cases (:func:`toy.shapes.editing.editing_cases`,
:func:`toy.detailed.editing.editing_cases`) into target latents with a flow model (tiny-flow and
tiny-flow-64: SD3's architecture and settings; tiny-flux: FLUX.1-dev's), all cases in one batch, and each
edit is scored exactly by the cases' world (:class:`toy.editing_case.WorldCase`) plus the paper's
transport cost, the squared latent distance ‖Z_edit − X_src‖² from source to edit.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch

import minidiff as md
from minidiff.batching import batches, take
from minidiff.settings import FULL_SCALE
from toy.editing_case import WorldCase

METHODS = ("flowedit", "inversion", "inversion_w1", "sdedit")


@dataclass(frozen=True)
class FlowSetting:
    """FlowEdit's hyper-parameters for one model family (Kulikov et al., Sec. 5 and App. B)."""

    steps: int
    n_max: int
    guidance_src: float
    guidance_tar: float
    n_avg: int = 1

    def but(self, **changes) -> "FlowSetting":
        return replace(self, **changes)

    @classmethod
    def of(cls, settings: dict, steps: int | None = None) -> "FlowSetting":
        """The setting of a ``minidiff.settings`` row; with fewer ``steps`` than the paper's, ``n_max``
        keeps its share of them (SD3's 33 of 50 becomes 2 of 3)."""
        fe, paper_steps = settings["flowedit"], settings["steps"]
        steps = steps or paper_steps
        return cls(steps=steps, n_max=max(1, min(steps, round(fe["n_max"] * steps / paper_steps))), n_avg=fe["n_avg"],
                   guidance_src=fe["source_guidance"], guidance_tar=fe["target_guidance"])


SD3_SETTING, FLUX_SETTING = FlowSetting.of(FULL_SCALE["sd3"]), FlowSetting.of(FULL_SCALE["flux"])


def edit(model, method: str, z_src: torch.Tensor, cond_src, cond_tar, setting: FlowSetting, seed: int = 0) -> torch.Tensor:
    """One editor on latents ``z_src`` (B, C, h, w) → edited latents (B, C, h, w).

    ``inversion`` inverts at the source guidance, as the paper's baseline does; ``inversion_w1`` inverts
    without guidance (the better inversion) and samples at the target guidance, a stronger baseline.
    """
    s, g = setting, torch.Generator().manual_seed(seed)
    if method == "flowedit":
        return md.flowedit(model, z_src, cond_src, cond_tar, s.steps, s.n_max, n_avg=s.n_avg, guidance_src=s.guidance_src,
                           guidance_tar=s.guidance_tar, null=model.null, generator=g)
    if method in ("inversion", "inversion_w1"):
        w_inv = s.guidance_src if method == "inversion" else 1.0
        return md.inversion_edit(model, z_src, cond_src, cond_tar, s.steps, s.n_max, w_inv, s.guidance_tar, model.null)
    if method == "sdedit":
        return md.sdedit(model, z_src, cond_tar, s.steps, s.n_max, s.guidance_tar, model.null, generator=g)
    raise ValueError(f"unknown editor {method!r}; choose from {METHODS}.")


@dataclass
class EditRun:
    """One editor's results on N cases: latents (N, C, h, w), images (N, 3, H, W) in [−1, 1], per-edit
    ``scores`` (arrays (N,): edit_acc, bg_psnr, gt_psnr, cost) and the wall-clock seconds per edit."""

    latents: torch.Tensor
    images: torch.Tensor
    scores: dict[str, np.ndarray]
    seconds_per_edit: float


def run_edits(model, cases: list[WorldCase], setting: FlowSetting, methods=METHODS, seed: int = 0,
              batch: int | None = None) -> dict[str, EditRun]:
    """Every editor in ``methods`` on every case; {method: EditRun}. ``batch`` cases go through the model
    at a time (None: all at once; chunk k draws its noise from ``seed + k``)."""
    world = type(cases[0])
    z_src = model.encode(world.images(cases, size=model.image_size))
    cond_src = model.embed([c.source_caption for c in cases])
    cond_tar = model.embed([c.target_caption for c in cases])
    runs = {}
    for method in methods:
        start = time.perf_counter()
        z = torch.cat([edit(model, method, z_src[part], take(cond_src, part), take(cond_tar, part), setting, seed + k)
                       for k, part in enumerate(batches(len(cases), batch))])
        seconds = (time.perf_counter() - start) / len(cases)
        images = model.decode(z)
        scores = world.score(images, cases) | {"cost": ((z - z_src) ** 2).flatten(1).sum(1).float().cpu().numpy()}
        runs[method] = EditRun(z, images, scores, seconds)
    return runs


def pareto(model, cases, paper: FlowSetting, shares, steps_values, methods=METHODS, seed: int = 0, batch: int | None = None) -> list[dict]:
    """Every editor at every n_max = round(share · T) for every T in ``steps_values``: rows
    ``{editor, n_max, steps, edit_acc, edit_acc_se, bg_psnr, bg_psnr_se}`` (mean and s.e. over the edits)."""
    rows = []
    for steps in steps_values:
        for n_max in sorted({max(1, round(s * steps)) for s in shares}):
            runs = run_edits(model, cases, paper.but(steps=steps, n_max=n_max), methods, seed, batch)
            for editor, r in runs.items():
                acc, acc_se = md.mean_se(r.scores["edit_acc"])
                bg, bg_se = md.mean_se(r.scores["bg_psnr"])
                rows.append({"editor": editor, "n_max": n_max, "steps": steps, "edit_acc": round(acc, 3), "edit_acc_se": round(acc_se, 3),
                             "bg_psnr": round(bg, 3), "bg_psnr_se": round(bg_se, 3)})
    return rows


def matched_gain(rows: list[dict], editor: str, baseline: str, steps: int) -> dict | None:
    """FlowEdit's background advantage over ``baseline`` at matched edit accuracy, on the T = ``steps`` curves.

    The baseline's curve (its points sorted by edit accuracy) is interpolated linearly at each of
    ``editor``'s points whose accuracy lies within the baseline's range. Each gain's s.e. combines the two
    points' as if independent (the interpolation breaks the pairing by edit), and the mean gain's s.e. is
    the mean of those (the points of one curve share their edits, so their errors are taken as fully
    correlated: conservative). Returns ``{"gain", "gain_se", "min_gain", "n_matched"}`` (the mean gain,
    its s.e., the smallest gain) or None when no point can be matched.
    """
    mine = [r for r in rows if r["editor"] == editor and r["steps"] == steps]
    base = sorted((r for r in rows if r["editor"] == baseline and r["steps"] == steps), key=lambda r: (r["edit_acc"], -r["bg_psnr"]))
    if not mine or not base:
        return None
    acc = np.array([r["edit_acc"] for r in base])
    gains, ses = [], []
    for r in mine:
        if not acc[0] <= r["edit_acc"] <= acc[-1]:
            continue
        j = int(np.clip(np.searchsorted(acc, r["edit_acc"]), 1, len(base) - 1)) if len(base) > 1 else 0
        lo, hi = base[max(j - 1, 0)], base[j]
        t = 0.0 if hi["edit_acc"] == lo["edit_acc"] else (r["edit_acc"] - lo["edit_acc"]) / (hi["edit_acc"] - lo["edit_acc"])
        bg = (1 - t) * lo["bg_psnr"] + t * hi["bg_psnr"]
        se = np.hypot((1 - t) * lo["bg_psnr_se"], t * hi["bg_psnr_se"])
        gains.append(r["bg_psnr"] - bg)
        ses.append(float(np.hypot(r["bg_psnr_se"], se)))
    if not gains:
        return None
    g, s = np.array(gains), np.array(ses)
    return {"gain": round(float(g.mean()), 3), "gain_se": round(float(s.mean()), 3),
            "min_gain": round(float(g.min()), 3), "n_matched": len(g)}
