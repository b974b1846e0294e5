"""Prompt-to-Prompt as the official code does it: words of several tokens, local blending, the
self-attention size limit; and the editing inversions (negative-prompt, Direct Inversion)."""

import pytest
import torch

from conftest import saved_and_loaded

import minidiff as md
from minidiff.p2p import AttentionControl, P2PEdit, attention_control, p2p_sample
from toy.shapes import VOCAB
from toy.tiny_models import build_tiny_sd
from toy.full_arch import WORDS, build_bpe_tokenizer

SOURCE = "a red circle on a blue background"
TARGET = "a red hexagon on a blue background"  # "hexagon" is two BPE tokens: "hex" + "agon</w>"


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    """A CLIP BPE tokenizer in which every shapes-world word is one token and "hexagon" is two."""
    tok = build_bpe_tokenizer(WORDS, tmp_path_factory.mktemp("bpe"))
    assert [len(tok(w, add_special_tokens=False).input_ids) for w in ("hexagon", "magenta")] == [2, 1]
    assert all(len(tok(w, add_special_tokens=False).input_ids) == 1 for w in VOCAB)
    return tok


def test_word_swap_maps_one_token_to_several(bpe):
    control = AttentionControl(P2PEdit(SOURCE, TARGET), bpe, 10)
    assert control.tar_spans[2] == (3, 5) and control.src_spans[2] == (3, 4)
    # both tokens of "hexagon" take half of "circle"'s map; the words after it are shifted by one
    assert control.mapper[3, 3] == control.mapper[4, 3] == 0.5 and control.mapper[3:5].sum() == 1
    for j, i in [(0, 0), (1, 1), (2, 2), (5, 4), (6, 5), (7, 6), (8, 7), (9, 8), (15, 14)]:
        assert control.mapper[j, i] == 1 and control.mapper[j].sum() == 1, (j, i)
    assert control.aligned.all()
    back = AttentionControl(P2PEdit(TARGET, SOURCE), bpe, 10)
    assert back.mapper[3, 3] == back.mapper[3, 4] == 1  # one token takes the sum of both


def test_reweighting_scales_every_token_of_the_word(bpe):
    control = AttentionControl(P2PEdit(TARGET, TARGET, reweight={"hexagon": 3.0}), bpe, 10)
    assert control.scale[3] == control.scale[4] == 3.0 and control.scale.sum() == 16 + 2 * 2.0
    # swapped and re-weighted: each token of "hexagon" gets 3 · ½ · A_src["circle"]
    swap = AttentionControl(P2PEdit(SOURCE, TARGET, reweight={"hexagon": 3.0}), bpe, 10)
    probs = torch.rand(2 * 2, 6, 16)  # [source, target] × 2 heads, 6 queries, 16 tokens
    out = swap("l", probs, True, heads=2).view(2, 2, 6, 16)
    src = probs.view(2, 2, 6, 16)[0]
    for j in (3, 4):
        torch.testing.assert_close(out[1][..., j], 1.5 * src[..., 3])
    torch.testing.assert_close(out[1][..., 5], src[..., 4])  # "on" ← "on", unscaled


def test_mapped_maps_are_the_source_maps_combined():
    class Words:
        model_max_length = 8

        def __call__(self, text, add_special_tokens=False):
            return type("T", (), {"input_ids": [0] * (2 if text == "big" else 1)})()

    control = AttentionControl(P2PEdit("a x b", "a big b", cross_replace=1.0), Words(), 1)
    probs = torch.rand(2 * 3, 5, 8)  # [source, target] × 3 heads
    out = control("l", probs, True, heads=3).view(2, 3, 5, 8)
    src = probs.view(2, 3, 5, 8)[0]
    torch.testing.assert_close(out[1][..., 2], src[..., 2] / 2)  # "big" (2 tokens) ← "x"
    torch.testing.assert_close(out[1][..., 3], src[..., 2] / 2)
    torch.testing.assert_close(out[1][..., 4], src[..., 3])  # "b" ← "b", one position earlier


def test_self_attention_is_injected_only_in_small_layers():
    class Words:
        model_max_length = 4

        def __call__(self, text, add_special_tokens=False):
            return type("T", (), {"input_ids": [0]})()

    control = AttentionControl(P2PEdit("a", "a", self_replace=1.0, self_max_queries=16), Words(), 1)
    small, large = torch.rand(2, 16, 16), torch.rand(2, 64, 64)
    assert torch.equal(control("s", small, False, heads=1)[1], small[0])
    assert torch.equal(control("l", large, False, heads=1), large)
    # the official limit on SD 1.5 at 512²: the 32×32 layers are injected, the 64×64 ones are not
    official = AttentionControl(P2PEdit("a", "a", self_replace=1.0), Words(), 1)
    sd32, sd64 = torch.rand(2, 32 ** 2, 3), torch.rand(2, 64 ** 2, 3)
    assert torch.equal(official("32", sd32, False, heads=1)[1], sd32[0])
    assert torch.equal(official("64", sd64, False, heads=1), sd64)


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    return saved_and_loaded(tmp_path_factory, build_tiny_sd)


@pytest.fixture(scope="module")
def tiny_sd_shipped():
    from minidiff.pipelines import load_pipeline

    return load_pipeline("tiny-sd", device="cpu")


def test_every_self_attention_layer_of_tiny_sd_is_injected(sd):
    """tiny-sd's latents are 8×8: every self-attention layer has ≤ 64 ≤ 32² queries, so the official
    limit skips none of them, and each one's target map becomes the source's."""
    control = AttentionControl(P2PEdit(SOURCE, SOURCE, self_replace=1.0), sd.pipe.tokenizer, 1)
    queries, injected = {}, {}

    def recording(name, probs, is_cross, heads):
        out = control(name, probs, is_cross, heads)
        if not is_cross:
            p, o = probs.view(2, heads, *probs.shape[1:]), out.view(2, heads, *probs.shape[1:])
            queries[name], injected[name] = probs.shape[1], torch.equal(o[1], p[0])
        return out

    z = sd.noise(2, torch.Generator().manual_seed(0))
    with attention_control(sd.unet, recording):
        sd.unet(z, 500, encoder_hidden_states=sd.embed([SOURCE, "a red square on a blue background"]))
    self_layers = [name for name in sd.unet.attn_processors if ".attn1." in name]
    assert sorted(queries) == sorted(self_layers) and len(self_layers) > 0
    assert max(queries.values()) == 8 ** 2 <= 32 ** 2
    assert all(injected.values())


def test_local_blend_keeps_the_source_outside_its_mask(sd):
    z = sd.noise(1, torch.Generator().manual_seed(0))
    target = "a red square on a blue background"
    plain = p2p_sample(sd, z, P2PEdit(SOURCE, target), steps=5)[0]
    none = p2p_sample(sd, z, P2PEdit(SOURCE, target, blend_words=("circle", "square"), blend_threshold=2.0), steps=5)[0]
    torch.testing.assert_close(none[1], none[0])  # an empty mask: the edit is the source
    every = p2p_sample(sd, z, P2PEdit(SOURCE, target, blend_words=("circle", "square"), blend_threshold=-1.0), steps=5)[0]
    torch.testing.assert_close(every, plain)  # a full mask: no blending
    control = AttentionControl(P2PEdit(SOURCE, target, blend_words=("circle", "square")), sd.pipe.tokenizer, 5)
    assert control.blend[0, 3] == 1 and control.blend[1, 3] == 1 and control.blend.sum() == 2
    with pytest.raises(ValueError, match="not a word of the target"):
        AttentionControl(P2PEdit(SOURCE, target, blend_words=("circle", "hexagon")), sd.pipe.tokenizer, 5)
    with pytest.raises(ValueError, match="takes none"):
        P2PEdit(SOURCE, target, blend_words=("circle", "square"), blend_maps="difference")


def _control_with_maps(store: dict) -> AttentionControl:
    control = AttentionControl.__new__(AttentionControl)
    control.edit, control.store = P2PEdit(SOURCE, SOURCE), {q: m[None] for q, m in store.items()}
    control.edits = [control.edit]
    control.blends = torch.zeros(1, 2, 16)
    control.blends[..., 3] = 1
    return control


def test_local_blend_mask_takes_the_official_resolution_and_dilation_at_sd_scale():
    """SD's 64² latents: the 16² maps are used (not the 64², 32² or 8² ones), dilated 3×3."""
    store = {q: torch.zeros(2, q, 16) for q in (64 ** 2, 32 ** 2, 16 ** 2, 8 ** 2)}
    store[16 ** 2][0, 5 * 16 + 5, 3] = 1.0  # the source word at cell (5, 5) of 16², the target at (12, 2)
    store[16 ** 2][1, 12 * 16 + 2, 3] = 1.0
    store[64 ** 2][0, :, 3] = torch.rand(64 ** 2)  # other resolutions must not matter
    mask = _control_with_maps(store).blend_mask((64, 64))
    assert mask.shape == (1, 1, 64, 64)
    assert mask[0, 0, 22, 22] == 1 and mask[0, 0, 17, 17] == 1 and mask[0, 0, 50, 10] == 1  # dilated by one cell
    assert mask[0, 0, 22, 40] == 0 and mask.mean() < 0.1


def test_local_blend_mask_at_tiny_sd_scale_uses_the_4x4_maps_undilated():
    """8² latents: the finest maps of at most a quarter of the side do not exist, so the coarsest
    (4²) are used; one cell per 16 of 4 is no dilation; the map is rescaled from its minimum."""
    store = {q: torch.full((2, q, 16), 0.06) for q in (8 ** 2, 4 ** 2)}
    store[4 ** 2][:, 0, 3] = 0.07  # near-uniform attention, a little more at the top-left cell
    mask = _control_with_maps(store).blend_mask((8, 8))
    assert mask[0, 0, 0, 0] == 1 and mask[0, 0, 7, 7] == 0 and 0 < mask.mean() < 0.25


def test_difference_blending_is_local_on_tiny_sd_and_keeps_the_source_outside(tiny_sd_shipped):
    """The 'difference' mask on a colour edit of the shipped tiny-sd covers the shape, not the
    whole image, and outside it the edit is the source branch."""
    from toy.shapes import Scene, caption, render
    from toy.shapes.edits import change_mask, edit_scene

    model = tiny_sd_shipped
    scene = Scene("square", "red", "white", 20.0, 12.0, 6.0)
    target = edit_scene(scene, "color", "blue")
    z0 = model.encode(render([scene]))
    zT = md.ddim_invert(model, z0, model.embed(caption(scene)), 20)
    masks = []
    out = p2p_sample(model, zT, P2PEdit(caption(scene), caption(target), blend_maps="difference"), 20, 1.0, masks=masks)[0]
    final = masks[-1][0, 0].bool()
    assert 0.05 < final.float().mean() < 0.5
    changed = torch.nn.functional.avg_pool2d(change_mask(scene, target).float()[None], 4)[0, 0] > 0.5
    assert (final & changed).sum() >= 0.8 * changed.sum()  # the shape is inside the mask
    torch.testing.assert_close(out[1][:, ~final], out[0][:, ~final])


def test_direct_inversion_reconstructs_the_source_branch_exactly_under_cfg(sd):
    x0 = sd.encode(torch.rand(1, 3, 32, 32) * 2 - 1)
    cond = sd.embed(SOURCE)
    di = md.direct_inversion(sd, x0, cond, steps=5)
    torch.testing.assert_close(di.source_path[0], di.latent)
    torch.testing.assert_close(di.source_path[-1], x0)
    out = p2p_sample(sd, di.latent, P2PEdit(SOURCE, "a red square on a blue background"), steps=5, guidance=7.5,
                     source_path=di.source_path)[0]
    torch.testing.assert_close(out[0], x0[0], atol=1e-5, rtol=0)
    drift = p2p_sample(sd, di.latent, P2PEdit(SOURCE, SOURCE), steps=5, guidance=7.5)[0]
    assert (drift[0] - x0[0]).abs().max() > 1e-2  # without it, guidance pulls the source away


def test_negative_prompt_inversion_samples_the_source_at_w1(sd):
    x0 = sd.encode(torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    cond = sd.embed(SOURCE)
    npi = md.negative_prompt_inversion(sd, x0, cond, steps=5)
    assert torch.equal(npi.latent, md.ddim_invert(sd, x0, cond, 5)) and npi.null is cond
    out = p2p_sample(sd, npi.latent, P2PEdit(SOURCE, SOURCE), steps=5, guidance=7.5, null=npi.null)[0]
    # ε(c) + w·(ε(c) − ε(c)) is ε(c) up to float32 rounding, which w = 7.5 amplifies over the steps
    torch.testing.assert_close(out[0], md.ddim_sample(sd, npi.latent, cond, 5)[0], atol=1e-4, rtol=0)


@pytest.mark.parametrize("blend", [None, "attention", "difference"])
def test_a_batch_of_edits_equals_the_edits_one_by_one(sd, blend):
    """n pairs side by side, under CFG with per-image per-step ∅_t and Direct Inversion's source path,
    give what each edit gives alone."""
    targets = ["a red square on a blue background", "a green circle on a blue background"]
    words = [("circle", "square"), ("red", "green")] if blend == "attention" else [None, None]
    edits = [P2PEdit(SOURCE, t, reweight={t.split()[1]: 1.5}, blend_words=w,
                     blend_maps="difference" if blend == "difference" else "attention") for t, w in zip(targets, words)]
    z = sd.noise(2, torch.Generator().manual_seed(0))
    nulls = [sd.null.expand(2, -1, -1) + 0.01 * k * torch.arange(2.0).view(2, 1, 1) for k in range(4)]
    path = [torch.randn(2, *z.shape[1:], generator=torch.Generator().manual_seed(k)) for k in range(5)]
    batch = p2p_sample(sd, z, edits, steps=4, guidance=3.0, null=nulls, source_path=path)
    for i, e in enumerate(edits):
        alone = p2p_sample(sd, z[i:i + 1], e, steps=4, guidance=3.0, null=[n[i:i + 1] for n in nulls],
                           source_path=[p[i:i + 1] for p in path])[0]
        torch.testing.assert_close(batch[i], alone, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="share"):
        p2p_sample(sd, z, [edits[0], P2PEdit(SOURCE, targets[1], cross_replace=0.5)], steps=2)
