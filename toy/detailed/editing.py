"""The detailed world's editing benchmark: held-out scenes, one ground-truth edit each, scored exactly.

Each case changes one caption word — an object's shape or colour, the background colour, or a named
texture — and re-renders the same scene (:mod:`toy.detailed.edits`), so the target image and the
pixels that must change are known. An edit is scored as in the fast world
(:mod:`toy.shapes.editing`):

* **edit accuracy**: the reader (:func:`toy.detailed.read`) agrees with the whole target caption;
* **background PSNR**: PSNR to the source image outside the true change mask (what must stay);
* **ground-truth PSNR**: PSNR to the exactly rendered target scene.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch

from minidiff.metrics import psnr_per_image
from toy.editing_case import WorldCase
from toy.detailed.edits import EDIT_KINDS, Edit, change_mask, edit_scene, edit_set
from toy.detailed.reader import read
# caption, render and IMAGE_SIZE are also this module's world interface (toy.editing_case.WorldCase)
from toy.detailed.world import IMAGE_SIZE, Scene, caption, describe, render, sample_scenes

ATTRIBUTES = EDIT_KINDS


@dataclass(frozen=True)
class EditCase(WorldCase):
    """A source scene and one :class:`~toy.detailed.Edit` of it. ``blend_words`` are the words whose
    cross-attention maps make local blending's mask: the edited object's colour and kind, or the
    background word for background and texture edits, as (words of the source, words of the target)."""

    source: Scene
    edit: Edit
    world = sys.modules[__name__]

    @property
    def target(self) -> Scene:
        return edit_scene(self.source, self.edit)

    @property
    def attribute(self) -> str:
        return self.edit.kind


    @property
    def blend_words(self) -> tuple[str, str]:
        if self.edit.kind in ("background", "texture"):
            return "background", "background"
        before, after = self.source.objects[self.edit.index], self.target.objects[self.edit.index]
        return f"{before.color} {before.kind}", f"{after.color} {after.kind}"


def editing_cases(n: int = 32, seed: int = 300) -> list[EditCase]:
    """``n`` held-out cases (a multiple of 4): ``n / 4`` of each edit kind, on scenes of the held-out
    split (seen combinations only, so that every target is a prompt the reader and the model know)."""
    if n % len(ATTRIBUTES):
        raise ValueError(f"n must be a multiple of {len(ATTRIBUTES)} so that every edit kind is equally represented, got {n}.")
    # texture edits need a caption that names the texture (half of them do): draw enough scenes
    pairs = edit_set(sample_scenes(4 * n, seed, split="heldout"), n // len(ATTRIBUTES), seed)
    return [EditCase(scene, edit) for scene, edit in pairs]


def change_masks(cases: list[EditCase]) -> torch.Tensor:
    """The true change of every case: bool (N, 1, 64, 64)."""
    return torch.stack([change_mask(c.source, c.target) for c in cases])


def score_edits(edited: torch.Tensor, cases: list[EditCase]) -> dict[str, np.ndarray]:
    """Per-edit scores of ``edited`` (N, 3, H, W) in [−1, 1] against the ground truth of ``cases``, on the
    world's 64² grid (larger images are area-averaged to it).

    Returns arrays of shape (N,): ``edit_acc`` (0/1), ``bg_psnr`` and ``gt_psnr`` in dB (an MSE floor of 1e-10 caps them at 106).
    """
    if len(edited) != len(cases):
        raise ValueError(f"{len(edited)} edited images for {len(cases)} cases.")
    edited = edited.detach().cpu().float()
    if edited.shape[-1] != IMAGE_SIZE:
        edited = torch.nn.functional.interpolate(edited, size=IMAGE_SIZE, mode="area")
    sources, targets = render([c.source for c in cases]), render([c.target for c in cases])
    keep = ~change_masks(cases)
    readings = read(edited)
    return {
        "edit_acc": np.array([float(r.matches(describe(c.target))) for r, c in zip(readings, cases)]),
        "bg_psnr": psnr_per_image(edited, sources, keep),
        "gt_psnr": psnr_per_image(edited, targets),
    }
