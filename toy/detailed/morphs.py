"""Morphs on the detailed world: pairs whose in-betweens are continuous, one-parameter strips, the
offline perceptual distance's calibration, and realism read from pixels.

A **morph pair** is one held-out one-object scene rendered at two values of one hidden factor, every
other factor kept (:func:`morph_pairs`):

* ``"hue"``: the object's hue from −12° to +12° within its colour name;
* ``"size_position"``: the object smaller and to one side, then larger and to the other;
* ``"superellipse"``: a circle (exponent 2) into a square (exponent 8.25), through the exponents
  between the two kinds' ranges, which no training scene has;
* ``"frequency"``: a named striped texture from 2 to 6 cycles across the image.

The captions of the two ends are identical except for the superellipse's kind word, so textual
inversion has what the caption leaves out to learn.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from minidiff.perceptual import Calibration
from toy.detailed.reader import _hue_distance, _segments, _to_hsv, read
from toy.detailed.world import FREQUENCY, HUE_JITTER, Scene, caption, render, sample_scenes

PAIR_KINDS = ("hue", "size_position", "superellipse", "frequency")
STRIP_FACTORS = ("hue", "size", "roundness", "position", "frequency")
K = 11  # frames of a one-parameter strip
#: A pixel of an object's segment is off-colour when its hue is this far from the segment's mean hue.
OFF_HUE = 20.0
#: ... and an image reads as clean when at most this share of an object's pixels is off-colour.
MAX_OFF_SHARE = 0.25


@dataclass(frozen=True)
class MorphPair:
    """Two scenes that differ in one hidden factor family (``kind``, one of :data:`PAIR_KINDS`)."""

    kind: str
    a: Scene
    b: Scene

    @property
    def scenes(self) -> list[Scene]:
        return [self.a, self.b]

    @property
    def captions(self) -> list[str]:
        return [caption(self.a), caption(self.b)]


def _pair(scene: Scene, kind: str) -> MorphPair:
    """Raises ValueError when the scene cannot carry this kind of pair (an end leaves the image)."""
    o = scene.objects[0]
    r = dataclasses.replace
    if kind == "hue":
        return MorphPair(kind, r(scene, objects=(r(o, hue=-HUE_JITTER),)), r(scene, objects=(r(o, hue=HUE_JITTER),)))
    if kind == "size_position":
        small, large = r(o, size=o.size * 0.8, cx=o.cx - 5), r(o, size=o.size * 1.2, cx=o.cx + 5)
        return MorphPair(kind, r(scene, objects=(small,)), r(scene, objects=(large,)))
    if kind == "superellipse":
        return MorphPair(kind, r(scene, objects=(r(o, kind="circle", roundness=0.0),)),
                         r(scene, objects=(r(o, kind="square", roundness=0.5),)))
    if kind == "frequency":
        striped = r(scene, texture="striped", texture_named=True)
        return MorphPair(kind, r(striped, frequency=FREQUENCY[0]), r(striped, frequency=FREQUENCY[1]))
    raise ValueError(f"kind={kind!r}: expected one of {', '.join(PAIR_KINDS)}")


def morph_pairs(n_per_kind: int, seed: int = 300, kinds: tuple[str, ...] = PAIR_KINDS) -> list[MorphPair]:
    """``n_per_kind`` pairs of each kind, in turn (hue, size_position, …), from held-out one-object scenes."""
    if not isinstance(n_per_kind, int) or n_per_kind < 1:
        raise ValueError(f"n_per_kind={n_per_kind!r}: expected a positive integer")
    scenes = iter(s for s in sample_scenes(50 * n_per_kind * len(kinds), seed=seed, split="heldout") if len(s.objects) == 1)
    out = {k: [] for k in kinds}
    for scene in scenes:
        for k in kinds:
            if len(out[k]) < n_per_kind:
                try:
                    out[k].append(_pair(scene, k))
                except ValueError:
                    continue
                break
        if all(len(v) == n_per_kind for v in out.values()):
            return [out[k][i] for i in range(n_per_kind) for k in kinds]
    raise RuntimeError("not enough held-out scenes for the morph pairs")


def strip(scene: Scene, factor: str, k: int = K) -> list[Scene]:
    """``k`` copies of a one-object ``scene`` with ``factor`` (one of :data:`STRIP_FACTORS`) evenly spaced
    over its range, the rest fixed."""
    o = scene.objects[0]
    changes = {
        "hue": lambda t: dataclasses.replace(o, hue=-HUE_JITTER + 2 * HUE_JITTER * t),
        "size": lambda t: dataclasses.replace(o, size=o.size * (0.8 + 0.3 * t)),
        "roundness": lambda t: dataclasses.replace(o, roundness=t),
        "position": lambda t: dataclasses.replace(o, cx=o.cx - 3 + 6 * t),
    }
    if factor == "frequency":
        return [dataclasses.replace(scene, texture="striped", frequency=2 + 4 * t) for t in np.linspace(0, 1, k)]
    if factor not in changes:
        raise ValueError(f"factor={factor!r}: expected one of {', '.join(STRIP_FACTORS)}")
    return [dataclasses.replace(scene, objects=(changes[factor](t),)) for t in np.linspace(0, 1, k)]


def off_colour_share(images: torch.Tensor) -> torch.Tensor:
    """For each image (B, 3, H, W) in [−1, 1]: the largest share, over its object segments, of pixels whose
    hue is more than :data:`OFF_HUE` from the segment's mean hue; 1 where no object is seen. A render's
    anti-aliased rim gives a few percent; a ghost of two overlapping objects, or a blend of an object with
    the background, gives far more."""
    out = []
    for im in _to_hsv(images):
        _, masks = _segments(im)
        if not masks:
            out.append(1.0)
            continue
        shares = []
        for m in masks:
            h = im[..., 0][m] * 360
            ang = np.radians(h)
            mean = np.degrees(np.arctan2(np.sin(ang).sum(), np.cos(ang).sum())) % 360
            shares.append(float((_hue_distance(h, mean) > OFF_HUE).mean()))
        out.append(max(shares))
    return torch.tensor(out)


def reads_as_scene(images: torch.Tensor, pair: MorphPair) -> torch.Tensor:
    """Whether each frame (B, 3, H, W) reads as a clean scene of the pair's world: the offline stand-in for
    FID's realism. A frame passes when the reader sees one object, of the ends' colour and of one of
    their kinds, on their background colour with one of their textures, and the object is one clean colour
    (:func:`off_colour_share` ≤ :data:`MAX_OFF_SHARE`). Returns a bool tensor (B,)."""
    kinds = {o.kind for s in pair.scenes for o in s.objects}
    colour, background = pair.a.objects[0].color, pair.a.background
    textures = {s.texture for s in pair.scenes}
    ok = [len(r.objects) == 1 and r.objects[0][0] == colour and r.objects[0][1] in kinds and r.background == background
          and r.texture in textures for r in read(images)]
    return torch.tensor(ok) & (off_colour_share(images) <= MAX_OFF_SHARE)



#: The factors the proxy grows along monotonically (texture frequency does not: stripes realign).
CALIBRATION_FACTORS = ("hue", "size", "roundness", "position")
#: The anchor: a one-object scene with its object's kind changed, the world's nearest analogue of a
#: subject replacement, whose LPIPS is 0.15-0.25 on SD3 (FlowEdit's cats → dogs: 0.15, inversion: 0.25);
#: its median calibrated distance is set to IMPUS's δ = 0.2, one perceptual step per kind change.
ANCHOR_VALUE = 0.2
ANCHOR = "median over held-out kind edits of one-object scenes = 0.2 (IMPUS's δ; LPIPS of SD3 subject swaps 0.15-0.25)"
#: :func:`fit_proxy_calibration` on vae-64 (8 scenes, 32 strips, 16 anchor pairs): γ = 1.64 ± 0.02, a = 1.18
#: (another 8 scenes: 1.63, 1.24). Calibrated, the strips' γ is 1.00 and their rPPD 0.08 (additive: 0.10;
#: raw: 0.019). ``tests/test_impus.py`` refits it.
PROXY_CALIBRATION = Calibration(1.635, 1.18, ANCHOR)


def calibration_data(n_scenes: int = 8, seed: int = 5) -> tuple[list[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Strips of :data:`CALIBRATION_FACTORS` on up to ``n_scenes`` held-out one-object scenes, and the anchor
    pairs: (strips, (images, kind-edited images))."""
    from toy.detailed.edits import Edit, edit_scene
    from toy.detailed.world import KINDS

    scenes = [s for s in sample_scenes(8 * n_scenes, seed=seed, split="heldout") if len(s.objects) == 1][:n_scenes]
    strips = []
    for s in scenes:
        for factor in CALIBRATION_FACTORS:
            try:
                strips.append(render(strip(s, factor)))
            except ValueError:  # the strip leaves the image
                continue
    a, b = [], []
    for s in scenes:
        for kind in KINDS:
            if kind != s.objects[0].kind:
                try:
                    b.append(edit_scene(s, Edit("shape", kind)))
                    a.append(s)
                except ValueError:
                    continue
    return strips, (render(a), render(b))


def fit_proxy_calibration(vae, n_scenes: int = 8, seed: int = 5):
    """:func:`minidiff.fit_calibration` of the VAE-feature proxy on this world (:func:`calibration_data`)."""
    import minidiff as md

    strips, anchors = calibration_data(n_scenes, seed)
    dist = lambda x, y: md.perceptual_distance(x, y, vae, backend="vae")  # noqa: E731
    return md.fit_calibration(strips, anchors, dist, ANCHOR_VALUE, ANCHOR)
