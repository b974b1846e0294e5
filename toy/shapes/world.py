"""Shapes world: seeded procedural scenes, their captions and anti-aliased renders.

A scene is one filled shape (circle, square or triangle) of one palette colour on a
plain background of another palette colour. Everything is a pure function of the
scene, so renders, captions and ground-truth edits are exact and reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import torch
from PIL import Image

# 32x32 keeps the tiny course models trainable on 2 CPU cores in under an hour; a VAE
# with downsampling factor 4 then works on 8x8 latents.
IMAGE_SIZE = 32
# Each pixel averages SUPERSAMPLE x SUPERSAMPLE point samples, giving smooth edges.
SUPERSAMPLE = 4
# Shapes are clipped to a ring of MARGIN background pixels so the border always shows
# the pure background colour (the attribute reader relies on it).
MARGIN = 2
# Half-extent of the shape in pixels: at least 8 px across, at most 20 px.
SIZE_RANGE = (4.0, 10.0)

KINDS = ("circle", "square", "triangle")
# Corners of the RGB cube, in [0, 1]: any two differ by a full channel swing, so the
# nearest-colour reading of a pixel is unambiguous even under strong noise.
PALETTE = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "cyan": (0.0, 1.0, 1.0),
    "magenta": (1.0, 0.0, 1.0),
    "white": (1.0, 1.0, 1.0),
    "black": (0.0, 0.0, 0.0),
}
COLORS = tuple(PALETTE)
# Palette in image units [-1, 1], rows ordered as COLORS. Shape (len(COLORS), 3).
PALETTE_TENSOR = torch.tensor([PALETTE[c] for c in COLORS]) * 2 - 1

# Every word a caption can contain, in caption order (basis of a word-level tokenizer).
VOCAB = ("a", *COLORS, *KINDS, "on", "background")
SPLITS = ("train", "heldout")


class Attributes(NamedTuple):
    """The three discrete attributes a caption names."""

    kind: str
    color: str
    background: str


@dataclass(frozen=True)
class Scene:
    """One shape on a plain background.

    Attributes:
        kind: Shape kind, one of ``KINDS``.
        color: Shape colour, one of ``COLORS``.
        background: Background colour, one of ``COLORS``, different from ``color``.
        cx: Horizontal centre of the shape's bounding box, in pixels from the left.
        cy: Vertical centre of the shape's bounding box, in pixels from the top.
        size: Half-extent of the bounding box in pixels (the circle's radius).
    """

    kind: str
    color: str
    background: str
    cx: float
    cy: float
    size: float

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; allowed: {', '.join(KINDS)}")
        for colour in (self.color, self.background):
            if colour not in PALETTE:
                raise ValueError(f"unknown colour {colour!r}; allowed: {', '.join(COLORS)}")
        if self.color == self.background:
            raise ValueError(f"shape and background are both {self.color!r}")
        if not all(self.size <= c <= IMAGE_SIZE - self.size for c in (self.cx, self.cy)):
            raise ValueError(f"shape of size {self.size} at ({self.cx}, {self.cy}) leaves image")

    @property
    def attributes(self) -> Attributes:
        """The (kind, color, background) triple named by the caption."""
        return Attributes(self.kind, self.color, self.background)


def caption(scene: Scene) -> str:
    """Caption of a scene, e.g. ``"a red circle on a blue background"``."""
    return f"a {scene.color} {scene.kind} on a {scene.background} background"


def parse_caption(text: str) -> Attributes:
    """Inverse of ``caption``: read the attributes named by a caption.

    Args:
        text: A caption of the form ``"a <color> <kind> on a <color> background"``
            (case and surrounding whitespace are ignored).

    Returns:
        The (kind, color, background) attributes.

    Raises:
        ValueError: If a word is not in ``VOCAB`` (the message names it and lists the
            allowed words) or the words do not follow the caption template.
    """
    words = text.lower().split()
    for word in words:
        if word not in VOCAB:
            raise ValueError(
                f"unknown word {word!r} in caption {text!r}; allowed words: {', '.join(VOCAB)}"
            )
    if (
        len(words) != 7
        or words[0::3] != ["a", "on", "background"]
        or words[4] != "a"
        or words[1] not in PALETTE
        or words[2] not in KINDS
        or words[5] not in PALETTE
    ):
        raise ValueError(
            f"caption {text!r} does not match 'a <color> <kind> on a <color> background'"
        )
    return Attributes(kind=words[2], color=words[1], background=words[5])


def sample_scenes(n: int, seed: int, split: str = "train") -> list[Scene]:
    """Draw random scenes, deterministically.

    Scenes are drawn one after another, so a longer list extends a shorter one drawn
    with the same seed and split.

    Args:
        n: Number of scenes.
        seed: Seed of the numpy Generator.
        split: One of ``SPLITS``; each split has its own random stream, so held-out
            scenes never come from the training stream.

    Returns:
        ``n`` scenes with uniform kind, shape colour, background colour (different
        from the shape colour), size in ``SIZE_RANGE`` and a position keeping the
        shape at least ``MARGIN`` pixels inside the image.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    rng = np.random.default_rng([SPLITS.index(split), seed])
    scenes = []
    for _ in range(n):
        kind = KINDS[rng.integers(len(KINDS))]
        color, background = (COLORS[i] for i in rng.choice(len(COLORS), size=2, replace=False))
        size = float(rng.uniform(*SIZE_RANGE))
        cx, cy = (float(c) for c in rng.uniform(size + MARGIN, IMAGE_SIZE - size - MARGIN, size=2))
        scenes.append(Scene(kind, color, background, cx, cy, size))
    return scenes


def train_scenes(n: int, seed: int = 0) -> list[Scene]:
    """``n`` scenes from the training stream (see ``sample_scenes``)."""
    return sample_scenes(n, seed, split="train")


def heldout_scenes(n: int, seed: int = 0) -> list[Scene]:
    """``n`` scenes from the held-out evaluation stream (see ``sample_scenes``)."""
    return sample_scenes(n, seed, split="heldout")


def coverage(scenes: Sequence[Scene], chunk: int = 1024, size: int = IMAGE_SIZE) -> torch.Tensor:
    """Fraction of each pixel covered by the shape.

    Args:
        scenes: B scenes.
        chunk: Scenes handled at once; bounds memory of the supersampled grid.
        size: Side in pixels. Scenes are defined on the 32-pixel grid; another size renders
            the same scene finer or coarser (a full-scale model's 512 or 1024).

    Returns:
        Tensor of shape (B, size, size) with values k / SUPERSAMPLE**2 in [0, 1] (exact in
        float32, so comparisons with 0 and 1 are exact).
    """
    fine = size * SUPERSAMPLE
    # Sample point centres in world units (32-pixel grid); pixel i spans [i, i + 1) · 32 / size.
    grid = (torch.arange(fine, dtype=torch.float64) + 0.5) / SUPERSAMPLE * (IMAGE_SIZE / size)
    out = []
    for start in range(0, len(scenes), chunk):
        batch = scenes[start : start + chunk]
        kind = torch.tensor([KINDS.index(s.kind) for s in batch])[:, None, None]
        cx, cy, r = (
            torch.tensor([getattr(s, f) for s in batch], dtype=torch.float64)[:, None, None]
            for f in ("cx", "cy", "size")
        )
        dx = grid[None, None, :] - cx
        dy = grid[None, :, None] - cy
        circle = dx**2 + dy**2 <= r**2
        square = (dx.abs() <= r) & (dy.abs() <= r)
        # Apex at the top centre, base along the bottom of the bounding box.
        triangle = (dy.abs() <= r) & (dx.abs() <= (dy + r) / 2)
        inside = torch.where(kind == 0, circle, torch.where(kind == 1, square, triangle))
        pooled = torch.nn.functional.avg_pool2d(inside[:, None].float(), SUPERSAMPLE)
        out.append(pooled[:, 0])
    return torch.cat(out) if out else torch.zeros(0, size, size)


def render(scenes: Sequence[Scene], size: int = IMAGE_SIZE) -> torch.Tensor:
    """Render scenes with anti-aliased edges.

    Args:
        scenes: B scenes.
        size: Side in pixels (see ``coverage``); ``to_world`` brings any render back to 32².

    Returns:
        Float32 tensor of shape (B, 3, size, size) in [-1, 1]; edge pixels blend the two
        colours in proportion to coverage.
    """
    cov = coverage(scenes, size=size)[:, None]
    fg = PALETTE_TENSOR[[COLORS.index(s.color) for s in scenes]][:, :, None, None]
    bg = PALETTE_TENSOR[[COLORS.index(s.background) for s in scenes]][:, :, None, None]
    return bg + cov * (fg - bg)


def to_world(images: torch.Tensor) -> torch.Tensor:
    """Images (B, 3, H, W) of any square size → (B, 3, 32, 32) by area averaging, the grid on which
    scenes, masks and the reader are defined (exact for a render whose side is a multiple of 32)."""
    if images.shape[-1] == IMAGE_SIZE and images.shape[-2] == IMAGE_SIZE:
        return images
    return torch.nn.functional.interpolate(images.float(), size=(IMAGE_SIZE, IMAGE_SIZE), mode="area")


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Convert images from [-1, 1] to displayable uint8.

    Args:
        images: Tensor of shape (B, 3, H, W) or (3, H, W), nominally in [-1, 1]
            (values outside are clipped).

    Returns:
        uint8 array of shape (B, H, W, 3) or (H, W, 3).
    """
    pixels = ((images.detach().cpu().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.movedim(-3, -1).numpy()


def to_pil(image: torch.Tensor) -> Image.Image:
    """Convert one image of shape (3, H, W) in [-1, 1] to a PIL RGB image."""
    return Image.fromarray(to_uint8(image))
