"""FlowEdit against editing-by-inversion and SDEdit on the shapes world's ground-truth edits.

Each editor turns the source latents of :func:`~toy.shapes.editing.editing_cases` into target latents
with a flow model (tiny-flow: SD3's architecture and settings; tiny-flux: FLUX.1-dev's), all cases in
one batch, and each edit is scored exactly (:func:`~toy.shapes.editing.score_edits`) plus the paper's
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
from toy.shapes.editing import EditCase, score_edits
from toy.shapes.world import caption, render

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


def run_edits(model, cases: list[EditCase], setting: FlowSetting, methods=METHODS, seed: int = 0,
              batch: int | None = None) -> dict[str, EditRun]:
    """Every editor in ``methods`` on every case; {method: EditRun}. ``batch`` cases go through the model
    at a time (None: all at once; chunk k draws its noise from ``seed + k``)."""
    z_src = model.encode(render([c.source for c in cases], size=model.image_size))
    cond_src = model.embed([caption(c.source) for c in cases])
    cond_tar = model.embed([caption(c.target) for c in cases])
    runs = {}
    for method in methods:
        start = time.perf_counter()
        z = torch.cat([edit(model, method, z_src[part], take(cond_src, part), take(cond_tar, part), setting, seed + k)
                       for k, part in enumerate(batches(len(cases), batch))])
        seconds = (time.perf_counter() - start) / len(cases)
        images = model.decode(z)
        scores = score_edits(images, cases) | {"cost": ((z - z_src) ** 2).flatten(1).sum(1).float().cpu().numpy()}
        runs[method] = EditRun(z, images, scores, seconds)
    return runs

