"""The detailed shapes world: 64² scenes with detail that captions do not describe.

A scene is one or two objects on a textured background. Captions name each object's colour and
kind (left to right), the background colour and, in some captions, the texture:
``"a red circle and a blue square on a green striped background"``. Everything else is hidden
from the caption and continuous: position, size, rotation, a hue / saturation / value jitter within
each colour name, how round a circle or how sharp a square is (a superellipse exponent), and the
texture's frequency, orientation, phase and contrast. Hidden factors are stored as numbers in
:class:`Obj` and :class:`Scene`, so an edit that changes one caption word re-renders the same scene
with every hidden factor kept (:mod:`toy.detailed.edits`).

Some (colour, kind) objects and one left-to-right kind pairing never occur in training
(:data:`UNSEEN_OBJECTS`, :data:`UNSEEN_PAIR`), so prompt-following can be measured on truly unseen
prompts (split ``"unseen"``), not only on unseen positions (split ``"heldout"``).
"""
from __future__ import annotations

import colorsys
import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

IMAGE_SIZE = 64
SUPERSAMPLE = 4  # point samples per pixel side: anti-aliased edges
MARGIN = 3  # a ring of pure background along the border (the reader reads the background there)

KINDS = ("circle", "square", "triangle")
#: Colour names and their hue in degrees; each object or background draws a hue within ±HUE_JITTER.
HUES = {"red": 0.0, "yellow": 60.0, "green": 120.0, "cyan": 180.0, "blue": 240.0, "magenta": 300.0}
COLORS = tuple(HUES)
HUE_JITTER = 12.0
TEXTURES = ("plain", "striped", "checkered", "dotted", "shaded")
VOCAB = ("a", "and", "on", "background", *COLORS, *KINDS, *TEXTURES)
SPLITS = ("train", "heldout", "unseen")

#: Objects never drawn in training: one (colour, kind) per kind.
UNSEEN_OBJECTS = frozenset({("red", "triangle"), ("green", "circle"), ("blue", "square")})
#: A left-to-right kind pairing never drawn in training.
UNSEEN_PAIR = ("triangle", "circle")

SIZE_ONE = (8.0, 14.0)  # an object's radius in pixels, alone
SIZE_TWO = (6.5, 10.0)  # ... and beside another object
MIN_DX = 8.0  # two objects' centres differ by this much horizontally: "left to right" is unambiguous
P_TWO = 0.5  # share of two-object scenes
P_NAME_TEXTURE = 0.5  # share of captions that name the texture
# Superellipse |u|^p + |v|^p <= 1: p = 2 is a circle, p -> inf a square. Each kind spans an interval;
# the gap between them keeps the kind word well defined, and morphs can pass through it.
CIRCLE_P = (2.0, 3.0)
SQUARE_P = (4.5, 12.0)
TRIANGLE_SCALE = 1.25  # a triangle inscribed in 1.25 r has about the area of a circle of radius r
TRIANGLE_TILT = 20.0  # degrees either side of apex-up
FREQUENCY = (2.0, 6.0)  # texture cycles across the image: periods of 11-32 px, 3-8 latent cells
CONTRAST = (0.25, 0.45)  # the texture darkens the background colour by up to this share


def _rgb(color: str, hue: float, sat: float, val: float) -> tuple[float, float, float]:
    """RGB in [0, 1] of a colour name with its hue offset (degrees), saturation and value."""
    return colorsys.hsv_to_rgb(((HUES[color] + hue) / 360) % 1, sat, val)


@dataclass(frozen=True)
class Obj:
    """One object of a scene.

    Attributes:
        kind: One of ``KINDS``; named by the caption.
        color: One of ``COLORS``; named by the caption.
        cx, cy: Centre in pixels from the left / top (64-pixel grid).
        size: Radius in pixels.
        roundness: In [0, 1]: where the superellipse exponent sits in its kind's interval
            (``CIRCLE_P`` / ``SQUARE_P``); unused by triangles.
        spin: In [0, 1): rotation, 0-90° for circles and squares, ±``TRIANGLE_TILT`` for triangles.
        hue: Hue offset in degrees within ±``HUE_JITTER`` of the colour's hue.
        sat, val: HSV saturation and value.
    """

    kind: str
    color: str
    cx: float
    cy: float
    size: float
    roundness: float = 0.5
    spin: float = 0.0
    hue: float = 0.0
    sat: float = 0.9
    val: float = 0.95

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Obj(kind={self.kind!r}): expected one of {', '.join(KINDS)}")
        if self.color not in HUES:
            raise ValueError(f"Obj(color={self.color!r}): expected one of {', '.join(COLORS)}")

    @property
    def exponent(self) -> float:
        """The superellipse exponent p (circles and squares)."""
        lo, hi = CIRCLE_P if self.kind == "circle" else SQUARE_P
        return lo + self.roundness * (hi - lo)

    @property
    def angle(self) -> float:
        """Rotation in radians."""
        if self.kind == "triangle":
            return math.radians((2 * self.spin - 1) * TRIANGLE_TILT)
        return self.spin * math.pi / 2

    @property
    def extent(self) -> float:
        """Radius of a circle around the centre that holds the whole object."""
        if self.kind == "triangle":
            return self.size * TRIANGLE_SCALE
        return self.size * 2 ** max(0.0, 0.5 - 1 / self.exponent) if self.kind == "circle" else self.size * math.sqrt(2)

    @property
    def rgb(self) -> tuple[float, float, float]:
        return _rgb(self.color, self.hue, self.sat, self.val)


@dataclass(frozen=True)
class Scene:
    """One or two objects (left to right) on a textured background.

    Attributes:
        objects: One or two :class:`Obj`, ordered by ``cx``.
        background: Background colour name, different from every object's.
        texture: One of ``TEXTURES``.
        texture_named: Whether the caption names the texture.
        frequency: Texture cycles across the image.
        orientation: Texture direction in radians.
        phase: Texture phase in radians.
        contrast: Share by which the texture darkens the background.
        bg_hue, bg_sat, bg_val: The background colour's HSV jitter, as in :class:`Obj`.
    """

    objects: tuple[Obj, ...]
    background: str
    texture: str = "plain"
    texture_named: bool = False
    frequency: float = 3.0
    orientation: float = 0.0
    phase: float = 0.0
    contrast: float = 0.35
    bg_hue: float = 0.0
    bg_sat: float = 0.65
    bg_val: float = 0.7

    def __post_init__(self) -> None:
        if not 1 <= len(self.objects) <= 2:
            raise ValueError(f"Scene(objects=...): expected 1 or 2 objects, got {len(self.objects)}")
        if self.background not in HUES:
            raise ValueError(f"Scene(background={self.background!r}): expected one of {', '.join(COLORS)}")
        if self.texture not in TEXTURES:
            raise ValueError(f"Scene(texture={self.texture!r}): expected one of {', '.join(TEXTURES)}")
        colors = [o.color for o in self.objects]
        if self.background in colors or len(set(colors)) != len(colors):
            raise ValueError(f"Scene: object colours {colors} and background {self.background!r} must all differ")
        if len(self.objects) == 2 and self.objects[1].cx - self.objects[0].cx < MIN_DX:
            raise ValueError("Scene: objects must be ordered left to right, centres at least "
                             f"{MIN_DX} px apart horizontally")
        for o in self.objects:
            if not all(MARGIN + o.extent <= c <= IMAGE_SIZE - MARGIN - o.extent for c in (o.cx, o.cy)):
                raise ValueError(f"Scene: {o.kind} of radius {o.size:.1f} at ({o.cx:.1f}, {o.cy:.1f}) "
                                 f"leaves the image's {MARGIN}-pixel margin")

    @property
    def bg_rgb(self) -> tuple[float, float, float]:
        return _rgb(self.background, self.bg_hue, self.bg_sat, self.bg_val)


def caption(scene: Scene) -> str:
    """``"a red circle and a blue square on a green striped background"``; the texture word only
    when ``scene.texture_named``."""
    return caption_from(describe(scene))


def caption_from(d: "Described") -> str:
    """The caption that says ``d`` (the inverse of :func:`parse_caption`)."""
    things = " and ".join(f"a {color} {kind}" for color, kind in d.objects)
    texture = f" {d.texture}" if d.texture else ""
    return f"{things} on a {d.background}{texture} background"


@dataclass(frozen=True)
class Described:
    """What a caption says: objects as (colour, kind) left to right, background, texture or None."""

    objects: tuple[tuple[str, str], ...]
    background: str
    texture: str | None


def describe(scene: Scene) -> Described:
    """What the scene's caption says (see :func:`parse_caption`)."""
    return Described(tuple((o.color, o.kind) for o in scene.objects), scene.background,
                     scene.texture if scene.texture_named else None)


def parse_caption(text: str) -> Described:
    """Inverse of :func:`caption`.

    Raises:
        ValueError: naming an unknown word, or the template when the words do not follow it.
    """
    if not isinstance(text, str):
        raise ValueError(f"caption: expected a string, got {type(text).__name__}")
    words = text.lower().split()
    for w in words:
        if w not in VOCAB:
            raise ValueError(f"unknown word {w!r} in caption {text!r}; allowed words: {', '.join(VOCAB)}")
    template = "'a <color> <kind> [and a <color> <kind>] on a <color> [<texture>] background'"
    try:
        on = words.index("on")
        head, tail = words[:on], words[on + 1:]
        chunks = [head[i:i + 3] for i in range(0, len(head), 4)]
        if len(head) not in (3, 7) or (len(head) == 7 and head[3] != "and"):
            raise ValueError
        objects = []
        for a, color, kind in chunks:
            if a != "a" or color not in HUES or kind not in KINDS:
                raise ValueError
            objects.append((color, kind))
        if tail[0] != "a" or tail[1] not in HUES or tail[-1] != "background" or len(tail) not in (3, 4):
            raise ValueError
        texture = tail[2] if len(tail) == 4 else None
        if texture is not None and texture not in TEXTURES:
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError(f"caption {text!r} does not match {template}") from None
    return Described(tuple(objects), tail[1], texture)


def is_seen(scene_or_described) -> bool:
    """Whether a scene (or caption description) avoids every combination held out of training."""
    d = describe(scene_or_described) if isinstance(scene_or_described, Scene) else scene_or_described
    if any(o in UNSEEN_OBJECTS for o in d.objects):
        return False
    return tuple(k for _, k in d.objects) != UNSEEN_PAIR


def _draw_object(rng: np.random.Generator, kind: str, color: str, size: float) -> Obj:
    obj = Obj(kind, color, 0.0, 0.0, size, float(rng.uniform()), float(rng.uniform()),
              float(rng.uniform(-HUE_JITTER, HUE_JITTER)), float(rng.uniform(0.8, 1.0)), float(rng.uniform(0.85, 1.0)))
    room = MARGIN + obj.extent
    return dataclasses.replace(obj, cx=float(rng.uniform(room, IMAGE_SIZE - room)),
                               cy=float(rng.uniform(room, IMAGE_SIZE - room)))


def _draw_scene(rng: np.random.Generator) -> Scene:
    n = 2 if rng.uniform() < P_TWO else 1
    colors = [COLORS[i] for i in rng.choice(len(COLORS), size=n + 1, replace=False)]
    kinds = [KINDS[i] for i in rng.integers(len(KINDS), size=n)]
    while True:  # rejection: two objects apart and ordered left to right
        objs = [_draw_object(rng, k, c, float(rng.uniform(*(SIZE_ONE if n == 1 else SIZE_TWO))))
                for k, c in zip(kinds, colors)]
        if n == 1:
            break
        a, b = sorted(objs, key=lambda o: o.cx)
        if b.cx - a.cx >= MIN_DX and math.hypot(a.cx - b.cx, a.cy - b.cy) >= a.extent + b.extent + 2:
            objs = [a, b]
            break
    return Scene(tuple(objs), colors[n], TEXTURES[rng.integers(len(TEXTURES))], bool(rng.uniform() < P_NAME_TEXTURE),
                 float(rng.uniform(*FREQUENCY)), float(rng.uniform(0, math.pi)), float(rng.uniform(0, 2 * math.pi)),
                 float(rng.uniform(*CONTRAST)), float(rng.uniform(-HUE_JITTER, HUE_JITTER)),
                 float(rng.uniform(0.5, 0.8)), float(rng.uniform(0.55, 0.8)))


def sample_scenes(n: int, seed: int = 0, split: str = "train") -> list[Scene]:
    """``n`` random scenes, deterministically; a longer list extends a shorter one.

    Args:
        n: Number of scenes.
        seed: Seed of the split's numpy stream.
        split: ``"train"`` and ``"heldout"`` (separate streams) hold only seen combinations;
            ``"unseen"`` only scenes with a held-out object or pairing (:func:`is_seen` is False).
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: expected one of {', '.join(SPLITS)}")
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n={n!r}: expected a non-negative integer")
    rng = np.random.default_rng([100 + SPLITS.index(split), seed])
    out: list[Scene] = []
    while len(out) < n:
        scene = _draw_scene(rng)
        if is_seen(scene) == (split != "unseen"):
            out.append(scene)
    return out


def _texture(scenes: Sequence[Scene], size: int) -> torch.Tensor:
    """Texture field in [0, 1] of each scene at pixel centres: (B, size, size)."""
    c = (torch.arange(size, dtype=torch.float64) + 0.5) / size  # image units [0, 1]
    y, x = torch.meshgrid(c, c, indexing="ij")
    out = torch.zeros(len(scenes), size, size, dtype=torch.float64)
    for i, s in enumerate(scenes):
        cos, sin = math.cos(s.orientation), math.sin(s.orientation)
        u, v = (x * cos + y * sin) * 2 * math.pi * s.frequency, (-x * sin + y * cos) * 2 * math.pi * s.frequency
        if s.texture == "striped":
            out[i] = 0.5 + 0.5 * torch.sin(u + s.phase)
        elif s.texture == "checkered":
            out[i] = 0.5 + 0.5 * torch.sin(u + s.phase) * torch.sin(v + s.phase)
        elif s.texture == "dotted":  # a lattice of soft dots, one per period
            du = torch.remainder(u + s.phase, 2 * math.pi) - math.pi
            dv = torch.remainder(v + s.phase, 2 * math.pi) - math.pi
            out[i] = torch.exp(-(du**2 + dv**2) / 1.2)
        elif s.texture == "shaded":  # a ramp across the image along the orientation
            ramp = (x - 0.5) * cos + (y - 0.5) * sin
            out[i] = (ramp / (abs(cos) + abs(sin)) + 0.5).clamp(0, 1)
    return out


def object_coverage(scenes: Sequence[Scene], slot: int, size: int = IMAGE_SIZE) -> torch.Tensor:
    """Share of each pixel covered by object ``slot`` of each scene (0 where it has none).

    Returns:
        (B, size, size) float32, multiples of 1 / SUPERSAMPLE².
    """
    fine = size * SUPERSAMPLE
    g = (torch.arange(fine, dtype=torch.float64) + 0.5) / SUPERSAMPLE * (IMAGE_SIZE / size)
    out = torch.zeros(len(scenes), size, size)
    for i, s in enumerate(scenes):
        if slot >= len(s.objects):
            continue
        o = s.objects[slot]
        cos, sin = math.cos(o.angle), math.sin(o.angle)
        dx, dy = g[None, :] - o.cx, g[:, None] - o.cy
        u, v = (dx * cos + dy * sin) / o.size, (-dx * sin + dy * cos) / o.size
        if o.kind == "triangle":
            r = TRIANGLE_SCALE
            inside = (math.sqrt(3) * u - v <= r) & (-math.sqrt(3) * u - v <= r) & (v <= r / 2)
        else:
            inside = u.abs() ** o.exponent + v.abs() ** o.exponent <= 1
        out[i] = torch.nn.functional.avg_pool2d(inside[None, None].float(), SUPERSAMPLE)[0, 0]
    return out


def render(scenes: Sequence[Scene], size: int = IMAGE_SIZE) -> torch.Tensor:
    """Render scenes: (B, 3, size, size) float32 in [-1, 1], anti-aliased edges."""
    if len(scenes) == 0:
        return torch.zeros(0, 3, size, size)
    bg = torch.tensor([s.bg_rgb for s in scenes], dtype=torch.float64)[:, :, None, None]
    contrast = torch.tensor([s.contrast for s in scenes], dtype=torch.float64)[:, None, None, None]
    image = bg * (1 - contrast * _texture(scenes, size)[:, None])
    for slot in range(2):
        cov = object_coverage(scenes, slot, size)[:, None].double()
        rgb = torch.tensor([s.objects[slot].rgb if slot < len(s.objects) else (0.0, 0.0, 0.0) for s in scenes],
                           dtype=torch.float64)[:, :, None, None]
        image = image + cov * (rgb - image)
    return (image * 2 - 1).float()
