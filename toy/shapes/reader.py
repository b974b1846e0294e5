"""Attribute reader: recover (kind, colour, background) of a shapes-world image from pixels.

The reader is an exact measurement, not a learned classifier, so it can score images
from any generator (prompt accuracy, edit success) without bias of its own. It only
assumes what the world guarantees: a plain background showing along the image border,
one shape of another palette colour, and an apex-up triangle.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from scipy import ndimage

from toy.shapes.world import COLORS, PALETTE_TENSOR, Attributes, parse_caption, to_world

# Palette colours are at least 2 apart (in [-1, 1] units); a pixel farther than half of
# that from the background colour is mostly shape.
FAR_FROM_BACKGROUND = 1.0
# Vertical skewness of the shape mask: 0 for the symmetric circle and square,
# -2*sqrt(2)/5 ~ -0.57 for the apex-up triangle, whose mass sits at the bottom.
TRIANGLE_SKEW = -0.25
# Share of its bounding box a shape fills: pi/4 for a circle, 1 for a square.
SQUARE_FILL = (1 + math.pi / 4) / 2
# A pixel within this RGB distance of a palette colour shows that colour (half the
# palette's minimum spacing of 2, less a margin for the VAE's small colour shifts).
NEAR_COLOR = 0.6


def _nearest_color(rgb: torch.Tensor, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Index into ``COLORS`` of the palette colour nearest to each RGB value.

    Args:
        rgb: Tensor of shape (N, 3) in [-1, 1] units.
        exclude: Optional tensor of shape (N,) with one palette index per row that may
            not be chosen.

    Returns:
        Long tensor of shape (N,).
    """
    dist = torch.cdist(rgb, PALETTE_TENSOR)
    if exclude is not None:
        dist[torch.arange(len(rgb)), exclude] = math.inf
    return dist.argmin(dim=1)


def _read_kind(alpha: np.ndarray) -> str:
    """Classify the shape from its coverage map.

    Args:
        alpha: Array of shape (H, W): estimated share of each pixel covered by the
            shape (about 0 on background, 1 inside, noisy values allowed).

    Returns:
        One of ``KINDS``. An image with no visible shape reads as a circle.
    """
    # The largest blob above half coverage (or the peak, for a faint shape) is the
    # shape; stray specks are ignored.
    labels, _ = ndimage.label(alpha >= min(0.5, alpha.max()))
    blob = labels == np.bincount(labels.ravel())[1:].argmax() + 1
    ys, xs = np.nonzero(blob)

    rows = ys - ys.mean()
    var = (rows**2).mean()
    skew = (rows**3).mean() / var**1.5 if var > 0 else 0.0
    if skew < TRIANGLE_SKEW:
        return "triangle"

    # Bounding box from the longest column and row of soft coverage: unlike a box of
    # whole mask pixels it is exact for anti-aliased edges and robust to blur.
    window = np.clip(alpha, 0, 1)[
        max(ys.min() - 1, 0) : ys.max() + 2, max(xs.min() - 1, 0) : xs.max() + 2
    ]
    box = window.sum(axis=0).max() * window.sum(axis=1).max()
    fill = window.sum() / max(box, 1e-12)
    return "square" if fill > SQUARE_FILL else "circle"


def read_attributes(images: torch.Tensor) -> list[Attributes]:
    """Read kind, shape colour and background colour from pixels.

    The background is the palette colour nearest to the median border pixel; the shape
    colour is the other palette colour nearest to the median pixel far from the
    background; the kind comes from the geometry of the resulting coverage map.

    Args:
        images: Tensor of shape (B, 3, H, W) in [-1, 1], e.g. renders or samples; read on
            the world's 32² grid (``to_world``), so a full-scale model's 512² images read too.

    Returns:
        B ``Attributes`` (kind, color, background).
    """
    images = to_world(images.detach().cpu().float())
    border = torch.ones(images.shape[-2:], dtype=torch.bool)
    border[1:-1, 1:-1] = False
    bg_index = _nearest_color(images[:, :, border].median(dim=2).values)
    bg = PALETTE_TENSOR[bg_index][:, :, None, None]
    dist = (images - bg).norm(dim=1)

    results = []
    for image, bg_i, bg_rgb, d in zip(images, bg_index, bg, dist):
        # If nothing is far from the background, the most distinct pixels are the shape.
        far = d >= min(FAR_FROM_BACKGROUND, d.max().item())
        fg_i = _nearest_color(image[:, far].median(dim=1).values[None], bg_i[None])[0]
        direction = PALETTE_TENSOR[fg_i][:, None, None] - bg_rgb
        # Anti-aliased pixels are bg + alpha * (fg - bg); project to recover alpha.
        alpha = ((image - bg_rgb) * direction).sum(0) / direction.square().sum()
        results.append(Attributes(_read_kind(alpha.numpy()), COLORS[fg_i], COLORS[bg_i]))
    return results


def reads_as_scene(images: torch.Tensor) -> torch.Tensor:
    """Whether each image reads as a clean shapes-world scene: the offline stand-in for FID.

    FID scores a generator's realism against real images with an ImageNet network that
    cannot be downloaded here. In the shapes world "real" is exact instead: a scene is a
    plain background and one flat-coloured shape. With the background and shape colour
    named by :func:`read_attributes`, an image passes when

    * at least half its pixels show the background colour,
    * at least 8 pixels show the shape colour, and
    * fewer pixels show neither colour than show the shape colour,

    where "shows" means within ``NEAR_COLOR`` in RGB. Anti-aliased edges are the only
    such pixels of a render, so every render in the world's size range passes. Blends of
    two colours, ghosts of two shapes and washed-out samples fail the last two tests: a
    half-way cross-fade of two scenes with different shape colours, or different
    backgrounds, never reads as a scene. A cross-fade between two kinds of one colour can
    still pass, since the overlap of the two shapes is a clean shape. It measures per image
    and says nothing about diversity, which FID also scores.

    Args:
        images: Tensor of shape (B, 3, H, W) in [-1, 1].

    Returns:
        Bool tensor of shape (B,).
    """
    images = to_world(images.detach().cpu().float())
    out = torch.zeros(len(images), dtype=torch.bool)
    for i, (image, read) in enumerate(zip(images, read_attributes(images))):
        shows = lambda color: (image - PALETTE_TENSOR[COLORS.index(color)][:, None, None]).norm(dim=0) < NEAR_COLOR  # noqa: E731
        bg, fg = shows(read.background), shows(read.color)
        out[i] = bg.float().mean() >= 0.5 and fg.sum() >= 8 and (~bg & ~fg).sum() < fg.sum()
    return out


def prompt_accuracy(images: torch.Tensor, captions: Sequence[str]) -> float:
    """Share of images whose kind, colour and background all match their caption.

    Args:
        images: Tensor of shape (B, 3, H, W) in [-1, 1].
        captions: B captions in the world's template (see ``parse_caption``).

    Returns:
        Accuracy in [0, 1].
    """
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    read = read_attributes(images)
    return sum(r == parse_caption(c) for r, c in zip(read, captions)) / len(captions)
