"""The detailed shapes world: 64² scenes of one or two objects on textured backgrounds, with hidden
continuous factors, compositional captions, truly held-out combinations, exact edits and masks, and a
reader fitted with scikit-learn.

Example:
    >>> from toy.detailed import sample_scenes, render, read, truth
    >>> scenes = sample_scenes(4, seed=0, split="heldout")
    >>> images = render(scenes)  # (4, 3, 64, 64) in [-1, 1]
"""
from toy.detailed.edits import EDIT_KINDS, Edit, change_mask, edit_caption, edit_scene, edit_set, random_edit, valid_edits
from toy.detailed.reader import Reading, degrade, fit_reader, prompt_accuracy, read, truth
from toy.detailed.world import (
    COLORS, IMAGE_SIZE, KINDS, SPLITS, TEXTURES, UNSEEN_OBJECTS, UNSEEN_PAIR, VOCAB, Described, Obj, Scene,
    caption, caption_from, describe, is_seen, object_coverage, parse_caption, render, sample_scenes,
)

__all__ = [
    "COLORS", "EDIT_KINDS", "IMAGE_SIZE", "KINDS", "SPLITS", "TEXTURES", "UNSEEN_OBJECTS", "UNSEEN_PAIR", "VOCAB",
    "Described", "Edit", "Obj", "Reading", "Scene", "caption", "caption_from", "change_mask", "degrade", "describe", "edit_caption", "edit_scene",
    "edit_set", "fit_reader", "is_seen", "object_coverage", "parse_caption", "prompt_accuracy", "random_edit", "read",
    "render", "sample_scenes", "truth", "valid_edits",
]
