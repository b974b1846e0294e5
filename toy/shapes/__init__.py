"""Shapes world: seeded synthetic scenes with captions, exact edits and an attribute reader.

Example:
    >>> from toy.shapes import heldout_scenes, read_attributes, render
    >>> scenes = heldout_scenes(4, seed=0)
    >>> images = render(scenes)  # (4, 3, 32, 32) in [-1, 1]
    >>> read_attributes(images) == [s.attributes for s in scenes]
    True
"""

from toy.shapes.edits import (
    ATTRIBUTES,
    background_mask,
    change_mask,
    edit_caption,
    edit_scene,
    random_edit,
)
from toy.shapes.reader import prompt_accuracy, read_attributes, reads_as_scene
from toy.shapes.world import (
    COLORS,
    IMAGE_SIZE,
    KINDS,
    PALETTE,
    SPLITS,
    VOCAB,
    Attributes,
    Scene,
    caption,
    coverage,
    heldout_scenes,
    parse_caption,
    render,
    sample_scenes,
    to_pil,
    to_uint8,
    to_world,
    train_scenes,
)

__all__ = [
    "ATTRIBUTES",
    "COLORS",
    "IMAGE_SIZE",
    "KINDS",
    "PALETTE",
    "SPLITS",
    "VOCAB",
    "Attributes",
    "Scene",
    "background_mask",
    "caption",
    "change_mask",
    "coverage",
    "edit_caption",
    "edit_scene",
    "heldout_scenes",
    "parse_caption",
    "prompt_accuracy",
    "random_edit",
    "read_attributes",
    "reads_as_scene",
    "render",
    "sample_scenes",
    "to_pil",
    "to_uint8",
    "to_world",
    "train_scenes",
]
