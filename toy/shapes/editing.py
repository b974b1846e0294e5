"""The shapes world's editing benchmark: held-out scenes, one ground-truth edit each, scored exactly.

Each case changes one caption word — the shape, its colour or the background — so the edited image,
its caption and the pixels that must change are known. An edit is scored by

* **edit accuracy**: the attribute reader agrees with the target caption;
* **background PSNR**: PSNR to the source image outside the true change mask (what must stay);
* **ground-truth PSNR**: PSNR to the exactly rendered target scene.

Scores are per edit, so a summary gives means with standard errors and a breakdown by edit kind.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch

from minidiff.metrics import psnr_per_image
from toy.editing_case import WorldCase
from toy.shapes.edits import ATTRIBUTES, change_mask, edit_scene
from toy.shapes.reader import read_attributes
# caption, render and IMAGE_SIZE are also this module's world interface (toy.editing_case.WorldCase)
from toy.shapes.world import COLORS, IMAGE_SIZE, KINDS, Scene, caption, heldout_scenes, parse_caption, render, to_world


@dataclass(frozen=True)
class EditCase(WorldCase):
    """A source scene, its edited target, which attribute changed, and the words whose
    cross-attention maps make local blending's mask: (words of the source, words of the target)."""

    source: Scene
    target: Scene
    attribute: str
    world = sys.modules[__name__]

    @property
    def blend_words(self) -> tuple[str, str]:
        if self.attribute == "background":
            return "background", "background"
        return f"{self.source.color} {self.source.kind}", f"{self.target.color} {self.target.kind}"



def editing_cases(n: int = 30, seed: int = 200) -> list[EditCase]:
    """``n`` held-out cases (a multiple of 3), the three edit kinds in turn, new values drawn with ``seed``."""
    if n % len(ATTRIBUTES):
        raise ValueError(f"n must be a multiple of {len(ATTRIBUTES)} so that every edit kind is equally represented, got {n}.")
    rng = np.random.default_rng(seed)
    cases = []
    for i, scene in enumerate(heldout_scenes(n, seed=seed)):
        attribute = ATTRIBUTES[i % len(ATTRIBUTES)]
        if attribute == "shape":
            choices = [k for k in KINDS if k != scene.kind]
        else:
            choices = [c for c in COLORS if c not in (scene.color, scene.background)]
        cases.append(EditCase(scene, edit_scene(scene, attribute, choices[rng.integers(len(choices))]), attribute))
    return cases


def score_edits(edited: torch.Tensor, cases: list[EditCase]) -> dict[str, np.ndarray]:
    """Per-edit scores of ``edited`` (N, 3, H, W) in [−1, 1] against the ground truth of ``cases``, on the
    world's 32² grid (``to_world``: a full-scale model's images are area-averaged to it).

    Returns arrays of shape (N,): ``edit_acc`` (0/1), ``bg_psnr`` and ``gt_psnr`` in dB (an MSE floor of 1e-10 caps them at 106).
    """
    if len(edited) != len(cases):
        raise ValueError(f"{len(edited)} edited images for {len(cases)} cases.")
    edited = to_world(edited.detach().cpu().float())
    sources, targets = render([c.source for c in cases]), render([c.target for c in cases])
    read = read_attributes(edited)
    return {
        "edit_acc": np.array([float(r == parse_caption(caption(c.target))) for r, c in zip(read, cases)]),
        "bg_psnr": psnr_per_image(edited, sources, torch.stack([~change_mask(c.source, c.target) for c in cases])),
        "gt_psnr": psnr_per_image(edited, targets),
    }


def summarize(scores: dict[str, np.ndarray], cases: list[EditCase]) -> dict[str, dict]:
    """{metric: {"mean", "se", and the mean of each edit kind}} (se = standard error of the mean); any
    world's cases (their ``attribute`` is the edit kind)."""
    kinds = np.array([c.attribute for c in cases])
    out = {}
    for metric, values in scores.items():
        out[metric] = {"mean": float(values.mean()), "se": float(values.std(ddof=1) / np.sqrt(len(values)))}
        out[metric] |= {kind: float(values[kinds == kind].mean()) for kind in dict.fromkeys(kinds.tolist())}
    return out
