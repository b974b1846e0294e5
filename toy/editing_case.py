"""What every world's editing case gives the world-agnostic benchmark
(:func:`toy.shapes.inversion_editing.evaluate`): its captions, its sources rendered at a model's size,
and its scores. A world's ``EditCase`` dataclass inherits :class:`WorldCase` and names its editing
module as ``world``, which provides ``caption``, ``render``, ``IMAGE_SIZE`` and ``score_edits``.
"""
from __future__ import annotations

from types import ModuleType

import numpy as np
import torch


class WorldCase:
    """Mixin of a world's edit case (``source`` and ``target`` scenes)."""

    world: ModuleType

    @property
    def source_caption(self) -> str:
        return self.world.caption(self.source)

    @property
    def target_caption(self) -> str:
        return self.world.caption(self.target)

    @classmethod
    def images(cls, cases: list, size: int | None = None) -> torch.Tensor:
        """The sources rendered at ``size`` (the world's own by default): (N, 3, size, size) in [-1, 1]."""
        return cls.world.render([c.source for c in cases], size=size or cls.world.IMAGE_SIZE)

    @classmethod
    def score(cls, edited: torch.Tensor, cases: list) -> dict[str, np.ndarray]:
        """The world's per-edit scores (``score_edits``) of ``edited`` (N, 3, H, W)."""
        return cls.world.score_edits(edited, cases)
