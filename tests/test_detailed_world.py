"""The detailed shapes world: scenes, captions, the held-out split, exact edits and masks, the reader."""
import dataclasses

import numpy as np
import pytest
import torch

from toy.detailed import (
    EDIT_KINDS, IMAGE_SIZE, degrade, UNSEEN_OBJECTS, UNSEEN_PAIR, Edit, Obj, Scene, caption, change_mask, describe,
    edit_caption, edit_scene, edit_set, is_seen, object_coverage, parse_caption, prompt_accuracy, read, render,
    sample_scenes, truth,
)


@pytest.fixture(scope="module")
def heldout():
    return sample_scenes(300, seed=1, split="heldout")


def test_render_shape_and_range(heldout):
    x = render(heldout[:8])
    assert x.shape == (8, 3, IMAGE_SIZE, IMAGE_SIZE) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1


def test_sampling_is_deterministic_and_extends():
    a, b = sample_scenes(20, seed=3), sample_scenes(30, seed=3)
    assert a == b[:20]
    assert sample_scenes(20, seed=3, split="heldout") != a


def test_scenes_have_one_or_two_objects_and_hidden_detail(heldout):
    counts = {n: sum(len(s.objects) == n for s in heldout) for n in (1, 2)}
    assert counts[1] > 100 and counts[2] > 100
    assert len({s.texture for s in heldout}) == 5
    assert 0.35 < np.mean([s.texture_named for s in heldout]) < 0.65
    # continuous hidden factors: no two scenes share them
    assert len({round(s.objects[0].hue, 6) for s in heldout}) == len(heldout)


def test_caption_round_trip(heldout):
    for s in heldout:
        assert parse_caption(caption(s)) == describe(s)
    assert caption(Scene((Obj("circle", "red", 20, 32, 8), Obj("square", "blue", 44, 32, 8)), "green", "striped", True)) \
        == "a red circle and a blue square on a green striped background"


@pytest.mark.parametrize("bad", ["a red circle", "a purple circle on a green background", "red circle on a green background",
                                 "a red circle and on a green background", 42])
def test_parse_caption_refuses_clearly(bad):
    with pytest.raises(ValueError, match="caption|word"):
        parse_caption(bad)


def test_unseen_combinations_never_in_training():
    train = sample_scenes(3000, seed=0, split="train")
    objects = {(o.color, o.kind) for s in train for o in s.objects}
    assert not objects & UNSEEN_OBJECTS
    assert all(tuple(o.kind for o in s.objects) != UNSEEN_PAIR for s in train)
    unseen = sample_scenes(200, seed=0, split="unseen")
    assert not any(is_seen(s) for s in unseen)
    assert any(len(s.objects) == 1 for s in unseen) and any(len(s.objects) == 2 for s in unseen)


def test_edits_keep_every_hidden_factor(heldout):
    pairs = edit_set(heldout, per_kind=8, seed=0)
    assert {e.kind for _, e in pairs} == set(EDIT_KINDS)
    for s, e in pairs:
        t = edit_scene(s, e)
        src, tar = caption(s).split(), edit_caption(s, e).split()
        assert len(src) == len(tar) and sum(a != b for a, b in zip(src, tar)) == 1, "one caption word changes"
        changed = {f.name for f in dataclasses.fields(Scene) if getattr(s, f.name) != getattr(t, f.name)}
        if e.kind in ("shape", "color"):
            assert changed == {"objects"}
            o, p = s.objects[e.index], t.objects[e.index]
            assert {f.name for f in dataclasses.fields(Obj) if getattr(o, f.name) != getattr(p, f.name)} == \
                {"kind" if e.kind == "shape" else "color"}
            assert all(a == b for i, (a, b) in enumerate(zip(s.objects, t.objects)) if i != e.index)
        else:
            assert changed == {e.kind}


def test_change_mask_is_exact(heldout):
    pairs = edit_set(heldout, per_kind=4, seed=1)
    for s, e in pairs:
        t = edit_scene(s, e)
        mask = change_mask(s, t)
        diff = (render([s])[0] - render([t])[0]).abs().amax(0)
        assert torch.equal(mask[0], diff > 1e-3)
        assert mask.any()
        if e.kind in ("shape", "color"):  # inside the union of the edited object's two footprints
            foot = (object_coverage([s], e.index)[0] > 0) | (object_coverage([t], e.index)[0] > 0)
            assert not (mask[0] & ~foot).any()
        else:  # the background changes, the objects do not
            objects = sum(object_coverage([s], k)[0] for k in range(2)) >= 1
            assert not (mask[0] & objects).any()


def test_edit_refuses_clearly(heldout):
    s = next(x for x in heldout if len(x.objects) == 1 and not x.texture_named)
    with pytest.raises(ValueError, match="index"):
        edit_scene(s, Edit("shape", "square" if s.objects[0].kind != "square" else "circle", index=1))
    with pytest.raises(ValueError, match="texture"):
        edit_scene(s, Edit("texture", "dotted"))
    with pytest.raises(ValueError, match="already"):
        edit_scene(s, Edit("color", s.objects[0].color))
    with pytest.raises(ValueError, match="kind"):
        Edit("size", "big")


def test_reader_agrees_with_ground_truth(heldout):
    """≥ 0.98 agreement on held-out renders, clean and blurred + noised."""
    images = render(heldout)
    truths = [truth(s) for s in heldout]
    clean = np.mean([r == t for r, t in zip(read(images), truths)])
    degraded = np.mean([r == t for r, t in zip(read(degrade(images)), truths)])
    assert clean >= 0.98 and degraded >= 0.98, (clean, degraded)
    assert prompt_accuracy(images, [caption(s) for s in heldout]) >= 0.98


def test_reader_refuses_clearly():
    with pytest.raises(ValueError, match="images"):
        read(torch.zeros(2, 64, 64))


def test_vae_64_is_factor_4_and_reaches_28_db():
    """The shipped vae-64 (``python -m toy.train vae-64``): 64² → 16×16×4, ≥ 28 dB on held-out scenes."""
    from diffusers import AutoencoderKL

    import minidiff as md
    from toy.tiny_models import WEIGHTS

    vae = AutoencoderKL.from_pretrained(WEIGHTS / "vae-64").eval()
    x = render(sample_scenes(48, seed=7, split="heldout"))
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mean
        y = vae.decode(z).sample.clamp(-1, 1)
    assert z.shape == (48, 4, 16, 16)
    assert md.psnr(x, y) >= 28


def test_noisy_captions_change_named_words_only():
    """tiny-sd-64's captions (SD's regime): each named word wrong with probability 0.2, the structure kept."""
    from toy.detailed import describe
    from toy.train import P_WRONG_WORD_64, noisy_detailed_captions

    scenes = sample_scenes(500, seed=2)
    noisy = noisy_detailed_captions(scenes, P_WRONG_WORD_64, seed=0)
    for s, c in zip(scenes, noisy):
        d, n = describe(s), parse_caption(c)
        assert len(n.objects) == len(d.objects) and (n.texture is None) == (d.texture is None)
        assert n.background not in {color for color, _ in n.objects}
    right = np.mean([c == caption(s) for s, c in zip(scenes, noisy)])
    assert 0.25 < right < 0.5  # 0.8 per named word, 3 to 6 named words
