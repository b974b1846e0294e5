"""Ground-truth edits of shapes-world scenes and the exact pixels they change.

An edit changes one attribute (shape kind, shape colour or background colour) and
keeps position and size, so its target image, target caption and change mask are
known exactly: the reference against which inversion/editing methods are scored.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from toy.shapes.world import COLORS, KINDS, Scene, caption, coverage, render

ATTRIBUTES = ("shape", "color", "background")
# Scene field holding each editable attribute.
_FIELDS = {"shape": "kind", "color": "color", "background": "background"}
# Where two renders differ at all, some channel differs by at least 2/16 (one
# supersample of a full palette swing), far above this float tolerance.
CHANGE_THRESHOLD = 1e-3


def edit_scene(scene: Scene, attribute: str, new_value: str) -> Scene:
    """Change one attribute of a scene, keeping everything else.

    Args:
        scene: Source scene.
        attribute: One of ``ATTRIBUTES``.
        new_value: New kind (for ``"shape"``) or colour name.

    Returns:
        The edited scene.

    Raises:
        ValueError: If the attribute is unknown, the value is invalid for it, equals
            the current value, or would make shape and background the same colour.
    """
    if attribute not in _FIELDS:
        raise ValueError(f"unknown attribute {attribute!r}; allowed: {', '.join(ATTRIBUTES)}")
    field = _FIELDS[attribute]
    if getattr(scene, field) == new_value:
        raise ValueError(f"{attribute} is already {new_value!r}; an edit must change it")
    # Scene validation rejects unknown values and shape colour == background colour.
    return dataclasses.replace(scene, **{field: new_value})


def edit_caption(scene: Scene, attribute: str, new_value: str) -> str:
    """Caption of the edited scene: the source caption with one word changed."""
    return caption(edit_scene(scene, attribute, new_value))


def random_edit(scene: Scene, rng: np.random.Generator) -> tuple[str, str]:
    """Pick a valid edit uniformly: an attribute, then a new value for it.

    Args:
        scene: Source scene.
        rng: Random generator (the only source of randomness).

    Returns:
        ``(attribute, new_value)``, accepted by ``edit_scene``.
    """
    attribute = ATTRIBUTES[rng.integers(len(ATTRIBUTES))]
    if attribute == "shape":
        choices = [k for k in KINDS if k != scene.kind]
    else:
        choices = [c for c in COLORS if c not in (scene.color, scene.background)]
    return attribute, choices[rng.integers(len(choices))]


def change_mask(scene_a: Scene, scene_b: Scene) -> torch.Tensor:
    """Pixels whose rendered colour differs between two scenes.

    Args:
        scene_a: First scene.
        scene_b: Second scene, e.g. an edit of the first.

    Returns:
        Bool tensor of shape (1, 32, 32), True where any channel differs.
    """
    images = render([scene_a, scene_b])
    return (images[0] - images[1]).abs().amax(dim=0, keepdim=True) > CHANGE_THRESHOLD


def background_mask(scene: Scene) -> torch.Tensor:
    """Pixels showing some background, i.e. not fully covered by the shape.

    These are exactly the pixels a background-colour edit changes.

    Args:
        scene: A scene.

    Returns:
        Bool tensor of shape (1, 32, 32).
    """
    return coverage([scene]) < 1
