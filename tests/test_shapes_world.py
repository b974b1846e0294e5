"""Tests of the shapes world: sampling, rendering, captions, edits and the reader."""

import math

import numpy as np
import pytest
import torch

from toy.shapes import (
    ATTRIBUTES,
    COLORS,
    IMAGE_SIZE,
    KINDS,
    VOCAB,
    Scene,
    background_mask,
    caption,
    change_mask,
    coverage,
    edit_caption,
    edit_scene,
    heldout_scenes,
    parse_caption,
    prompt_accuracy,
    random_edit,
    read_attributes,
    render,
    sample_scenes,
    to_pil,
    to_uint8,
    train_scenes,
)
from toy.shapes.world import MARGIN, PALETTE_TENSOR


@pytest.fixture(scope="module")
def heldout():
    scenes = heldout_scenes(300, seed=0)
    return scenes, render(scenes)


def test_sampling_and_rendering_are_deterministic():
    assert sample_scenes(50, seed=3) == sample_scenes(50, seed=3)
    assert torch.equal(render(sample_scenes(50, seed=3)), render(sample_scenes(50, seed=3)))
    assert sample_scenes(50, seed=3) != sample_scenes(50, seed=4)
    # A longer draw extends a shorter one.
    assert sample_scenes(80, seed=3)[:50] == sample_scenes(50, seed=3)


def test_train_and_heldout_streams_differ():
    train, heldout = train_scenes(100, seed=0), heldout_scenes(100, seed=0)
    assert train == sample_scenes(100, seed=0, split="train")
    assert not set(train) & set(heldout)
    with pytest.raises(ValueError, match="unknown split"):
        sample_scenes(1, seed=0, split="test")


def test_scenes_respect_the_world_rules():
    scenes = train_scenes(2000, seed=1)
    assert {s.kind for s in scenes} == set(KINDS)
    assert {s.color for s in scenes} == set(COLORS) == {s.background for s in scenes}
    for s in scenes:
        assert s.color != s.background
        assert 2 * s.size >= 8
        assert MARGIN <= min(s.cx, s.cy) - s.size
        assert max(s.cx, s.cy) + s.size <= IMAGE_SIZE - MARGIN


def test_invalid_scenes_are_rejected():
    with pytest.raises(ValueError, match="both 'red'"):
        Scene("circle", "red", "red", 16.0, 16.0, 5.0)
    with pytest.raises(ValueError, match="unknown kind 'star'"):
        Scene("star", "red", "blue", 16.0, 16.0, 5.0)
    with pytest.raises(ValueError, match="leaves image"):
        Scene("circle", "red", "blue", 3.0, 16.0, 5.0)


def test_render_shapes_ranges_and_antialiasing(heldout):
    scenes, images = heldout
    assert images.shape == (len(scenes), 3, IMAGE_SIZE, IMAGE_SIZE)
    assert images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    # The border ring is pure background; edge pixels blend the two colours.
    bg = PALETTE_TENSOR[[COLORS.index(s.background) for s in scenes]]
    assert torch.equal(images[:, :, 0, :], bg[:, :, None].expand(-1, -1, IMAGE_SIZE))
    cov = coverage(scenes)
    assert ((cov > 0) & (cov < 1)).any(dim=(1, 2)).all()
    assert to_uint8(images).shape == (len(scenes), IMAGE_SIZE, IMAGE_SIZE, 3)
    assert to_uint8(images).dtype == np.uint8
    assert to_pil(images[0]).size == (IMAGE_SIZE, IMAGE_SIZE)


def test_shape_kinds_are_measurably_distinct():
    r = 8.0
    scenes = [Scene(kind, "white", "black", 16.0, 16.0, r) for kind in KINDS]
    area = coverage(scenes).sum(dim=(1, 2))
    expected = torch.tensor([math.pi * r**2, 4 * r**2, 2 * r**2])
    assert torch.allclose(area, expected, rtol=0.02)
    for i in range(len(scenes)):
        for j in range(i + 1, len(scenes)):
            assert change_mask(scenes[i], scenes[j]).sum() >= 20


def test_caption_round_trip_and_vocab(heldout):
    scenes, _ = heldout
    assert caption(Scene("circle", "red", "blue", 16.0, 16.0, 5.0)) == (
        "a red circle on a blue background"
    )
    assert len(set(VOCAB)) == len(VOCAB)
    for s in scenes:
        assert parse_caption(caption(s)) == s.attributes
        assert set(caption(s).split()) <= set(VOCAB)


def test_parse_caption_errors_name_the_problem():
    with pytest.raises(ValueError) as error:
        parse_caption("a pink circle on a blue background")
    message = str(error.value)
    assert "'pink'" in message and all(word in message for word in VOCAB)
    with pytest.raises(ValueError, match="does not match"):
        parse_caption("a circle red on a blue background")


def test_edits_change_exactly_one_caption_word(heldout):
    scenes, _ = heldout
    rng = np.random.default_rng(0)
    for s in scenes:
        attribute, value = random_edit(s, rng)
        edited = edit_scene(s, attribute, value)
        assert (edited.cx, edited.cy, edited.size) == (s.cx, s.cy, s.size)
        words = zip(caption(s).split(), edit_caption(s, attribute, value).split())
        assert sum(a != b for a, b in words) == 1


def test_invalid_edits_are_rejected():
    scene = Scene("circle", "red", "blue", 16.0, 16.0, 5.0)
    with pytest.raises(ValueError, match="unknown attribute"):
        edit_scene(scene, "size", "big")
    with pytest.raises(ValueError, match="already"):
        edit_scene(scene, "color", "red")
    with pytest.raises(ValueError, match="both 'blue'"):
        edit_scene(scene, "color", "blue")


def test_change_mask_is_exactly_where_renders_differ(heldout):
    scenes, _ = heldout
    for s in scenes[:60]:
        new_color = next(c for c in COLORS if c not in (s.color, s.background))
        new_kind = next(k for k in KINDS if k != s.kind)
        edits = dict(zip(ATTRIBUTES, (new_kind, new_color, new_color)))
        masks = {}
        for attribute, value in edits.items():
            edited = edit_scene(s, attribute, value)
            masks[attribute] = change_mask(s, edited)
            diff = (render([s]) - render([edited])).abs().amax(dim=1)
            assert masks[attribute].shape == (1, IMAGE_SIZE, IMAGE_SIZE)
            assert masks[attribute].dtype == torch.bool
            assert masks[attribute].any() and torch.equal(masks[attribute], diff > 0)
        assert torch.equal(masks["background"], background_mask(s))
        assert torch.equal(masks["color"], coverage([s]) > 0)


def test_reader_is_exact_on_clean_heldout_renders(heldout):
    scenes, images = heldout
    assert read_attributes(images) == [s.attributes for s in scenes]
    assert prompt_accuracy(images, [caption(s) for s in scenes]) == 1.0


def test_reader_is_robust_to_noise(heldout):
    scenes, images = heldout
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(0))
    assert prompt_accuracy(images + 0.1 * noise, [caption(s) for s in scenes]) >= 0.95


def test_prompt_accuracy_rejects_edited_captions(heldout):
    scenes, images = heldout
    rng = np.random.default_rng(2)
    edited = [edit_caption(s, *random_edit(s, rng)) for s in scenes]
    assert prompt_accuracy(images, edited) == 0.0
