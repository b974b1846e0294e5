"""Small, fixed-range figures for the course: point clouds, transport lines, trajectories, images."""
from __future__ import annotations

import textwrap
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

DPI = 72  # keeps committed notebooks light


def _np(x) -> np.ndarray:
    return x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def plot_points(ax, x: torch.Tensor, color: str = "C0", label: str | None = None, lim: float | None = 25, s: float = 2):
    """Scatter 2D points x (N, 2) on a square axis of half-width ``lim``."""
    p = _np(x)
    ax.scatter(p[:, 0], p[:, 1], s=s, c=color, label=label, alpha=0.6, linewidths=0)
    if lim is not None:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    return ax


def plot_transport(ax, x: torch.Tensor, y: torch.Tensor, n_lines: int = 150, title: str | None = None, lim: float = 25):
    """Source points x (N, 2) in blue, their edits y (N, 2) in red, and a grey line for each of
    the first ``n_lines`` pairs: the map the edit method defines (FlowEdit, Fig. 3)."""
    px, py = _np(x), _np(y)
    for a, b in zip(px[:n_lines], py[:n_lines]):
        ax.plot([a[0], b[0]], [a[1], b[1]], color="0.6", lw=0.4, zorder=0)
    plot_points(ax, px, "C0", "source", lim)
    plot_points(ax, py, "C3", "edit", lim)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_trajectories(ax, trajectory: Sequence[torch.Tensor], n: int = 100, color: str = "C2", lim: float | None = 25, title: str | None = None):
    """Paths of the first ``n`` points through a trajectory (a list of (N, 2) tensors), start dot
    hollow, end dot filled."""
    path = np.stack([_np(x)[:n] for x in trajectory])  # (T + 1, n, 2)
    ax.plot(path[:, :, 0], path[:, :, 1], color=color, lw=0.5, alpha=0.6)
    ax.scatter(path[0, :, 0], path[0, :, 1], s=6, facecolors="none", edgecolors=color, linewidths=0.5)
    ax.scatter(path[-1, :, 0], path[-1, :, 1], s=6, c=color)
    if lim is not None:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def hist2d_row(trajectory: Sequence[torch.Tensor], labels: Sequence[str], lim: float = 25, bins: int = 60, size: float = 1.8):
    """A row of 2D histograms, one per snapshot in ``trajectory`` (each (N, 2)), on fixed ranges."""
    fig, axes = plt.subplots(1, len(trajectory), figsize=(size * len(trajectory), size), dpi=DPI)
    for ax, x, label in zip(np.atleast_1d(axes), trajectory, labels):
        p = _np(x)
        ax.hist2d(p[:, 0], p[:, 1], bins=bins, range=[[-lim, lim], [-lim, lim]], cmap="magma")
        ax.set_title(label, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal")
    fig.tight_layout()
    return fig


def subplots(n: int, size: float = 3.0, **kwargs):
    """A row of ``n`` square axes at the course's figure size and resolution."""
    fig, axes = plt.subplots(1, n, figsize=(size * n, size), dpi=DPI, **kwargs)
    return fig, np.atleast_1d(axes)


def show_images(images: torch.Tensor, titles: Sequence[str] | None = None, ncols: int = 8, size: float = 1.4,
                row_labels: Sequence[str] | None = None, fontsize: float = 7):
    """Show images (B, 3, H, W) in [−1, 1] in a grid, with optional titles and a label left of each row.

    Titles are wrapped to their image's width (a caption never runs into its neighbour's) and the
    figure grows by the lines they take.
    """
    imgs = (_np(images.clamp(-1, 1)).transpose(0, 2, 3, 1) + 1) / 2
    nrows = -(-len(imgs) // ncols)
    ncols = min(ncols, len(imgs))
    # characters that fit in one image's width at this font size (a glyph is at most about 0.65 em wide)
    width = max(6, int(size * 72 / (0.65 * fontsize)))
    wrapped = [textwrap.fill(str(t), width) for t in titles] if titles is not None else None
    lines = max((t.count("\n") + 1 for t in wrapped), default=0) if wrapped else 0
    title_inches = lines * fontsize * 1.25 / 72
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + title_inches) * nrows), dpi=DPI, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(imgs):
            ax.imshow(imgs[i], interpolation="nearest")
            if wrapped is not None:
                ax.set_title(wrapped[i], fontsize=fontsize)
    for row, label in enumerate(row_labels or []):
        axes[row, 0].text(-0.08, 0.5, label, transform=axes[row, 0].transAxes, ha="right", va="center", fontsize=fontsize)
    fig.tight_layout()
    return fig
