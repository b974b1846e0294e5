"""Ground-truth edits of detailed-world scenes: one caption word changed, every hidden factor kept.

An edit of kind ``shape`` or ``color`` changes one object (``index`` 0 = the left one); ``background``
changes the background colour; ``texture`` changes the texture, and exists only when the caption
names it. The hidden factors (position, size, rotation, roundness, hue jitter, texture frequency,
phase, orientation, contrast, the other object) are kept, so the target image and its change mask
are exact.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from toy.detailed.world import COLORS, KINDS, MARGIN, IMAGE_SIZE, TEXTURES, Scene, caption, is_seen, render

EDIT_KINDS = ("shape", "color", "background", "texture")
CHANGE_THRESHOLD = 1e-3  # any visible change moves a channel by far more than float error


@dataclass(frozen=True)
class Edit:
    """One caption word changed: ``kind`` (one of ``EDIT_KINDS``), the object ``index`` for shape and
    colour edits, and the new word."""

    kind: str
    value: str
    index: int = 0

    def __post_init__(self) -> None:
        if self.kind not in EDIT_KINDS:
            raise ValueError(f"Edit(kind={self.kind!r}): expected one of {', '.join(EDIT_KINDS)}")


def edit_scene(scene: Scene, edit: Edit) -> Scene:
    """The edited scene.

    Raises:
        ValueError: if the edit changes nothing, names an object the scene lacks, edits an unnamed
            texture, or makes two colours equal (the message says which).
    """
    if edit.kind in ("shape", "color"):
        if not 0 <= edit.index < len(scene.objects):
            raise ValueError(f"Edit(index={edit.index}): the scene has {len(scene.objects)} object(s)")
        field = "kind" if edit.kind == "shape" else "color"
        obj = scene.objects[edit.index]
        if getattr(obj, field) == edit.value:
            raise ValueError(f"Edit: object {edit.index}'s {edit.kind} is already {edit.value!r}")
        objects = list(scene.objects)
        objects[edit.index] = dataclasses.replace(obj, **{field: edit.value})
        edited = dataclasses.replace(scene, objects=tuple(objects))
        # A square's corners reach farther than a circle's: the new kind must still fit the margin.
        o = edited.objects[edit.index]
        if not all(MARGIN + o.extent <= c <= IMAGE_SIZE - MARGIN - o.extent for c in (o.cx, o.cy)):
            raise ValueError(f"Edit: a {o.kind} would leave the image at this position")
        return edited
    if edit.kind == "texture" and not scene.texture_named:
        raise ValueError("Edit(kind='texture'): the caption does not name the texture")
    field = "background" if edit.kind == "background" else "texture"
    if getattr(scene, field) == edit.value:
        raise ValueError(f"Edit: the {field} is already {edit.value!r}")
    return dataclasses.replace(scene, **{field: edit.value})


def edit_caption(scene: Scene, edit: Edit) -> str:
    """The target caption: the source caption with one word changed."""
    return caption(edit_scene(scene, edit))


def _candidates(scene: Scene, kind: str) -> list[Edit]:
    used = {o.color for o in scene.objects} | {scene.background}
    if kind == "shape":
        return [Edit("shape", k, i) for i, o in enumerate(scene.objects) for k in KINDS if k != o.kind]
    if kind == "color":
        return [Edit("color", c, i) for i in range(len(scene.objects)) for c in COLORS if c not in used]
    if kind == "background":
        return [Edit("background", c) for c in COLORS if c not in used]
    return [Edit("texture", t) for t in TEXTURES if t != scene.texture] if scene.texture_named else []


def valid_edits(scene: Scene, kind: str, allow_unseen: bool = False) -> list[Edit]:
    """Every edit of ``kind`` that the scene allows (by default, only to seen combinations)."""
    out = []
    for e in _candidates(scene, kind):
        try:
            target = edit_scene(scene, e)
        except ValueError:
            continue
        if allow_unseen or is_seen(target):
            out.append(e)
    return out


def random_edit(scene: Scene, rng: np.random.Generator, kind: str | None = None) -> Edit | None:
    """A uniformly chosen valid edit of ``kind`` (any kind the scene allows if None); None if there is none."""
    kinds = [kind] if kind else [k for k in EDIT_KINDS if valid_edits(scene, k)]
    if not kinds:
        return None
    edits = valid_edits(scene, kinds[rng.integers(len(kinds))])
    return edits[rng.integers(len(edits))] if edits else None


def change_mask(scene_a: Scene, scene_b: Scene) -> torch.Tensor:
    """Pixels that differ between two scenes' renders: bool (1, 64, 64)."""
    images = render([scene_a, scene_b])
    return (images[0] - images[1]).abs().amax(dim=0, keepdim=True) > CHANGE_THRESHOLD


def edit_set(scenes: list[Scene], per_kind: int, seed: int = 0) -> list[tuple[Scene, Edit]]:
    """``per_kind`` (scene, edit) pairs of each edit kind, drawn in order from ``scenes``.

    Raises:
        ValueError: if the scenes do not allow that many edits of some kind.
    """
    rng = np.random.default_rng(seed)
    out = []
    for kind in EDIT_KINDS:
        chosen = []
        for s in scenes:
            if len(chosen) == per_kind:
                break
            e = random_edit(s, rng, kind)
            if e is not None:
                chosen.append((s, e))
        if len(chosen) < per_kind:
            raise ValueError(f"edit_set: only {len(chosen)} scenes allow a {kind} edit; pass more scenes")
        out += chosen
    return out
