"""The detailed world's editing benchmark: balanced exact cases, scores that are exact on the ground
truth, the edited words' attention maps, and every figure of the benchmark's ``"detailed"`` object."""
import numpy as np
import pytest
import torch

from toy.detailed import EDIT_KINDS, is_seen, parse_caption, render
from toy.detailed.editing import change_masks, editing_cases, score_edits


@pytest.fixture(scope="module")
def cases():
    return editing_cases(32)


def test_cases_cover_every_kind_once_per_word(cases):
    assert [sum(c.attribute == k for c in cases) for k in EDIT_KINDS] == [8, 8, 8, 8]
    for c in cases:
        src, tar = c.source_caption.split(), c.target_caption.split()
        assert len(src) == len(tar) and sum(a != b for a, b in zip(src, tar)) == 1
        assert is_seen(c.target) and parse_caption(c.target_caption)
        for words, prompt in zip(c.blend_words, (src, tar)):
            assert set(words.split()) <= set(prompt)
    with pytest.raises(ValueError, match="multiple of 4"):
        editing_cases(30)


def test_scores_are_exact_on_the_ground_truth(cases):
    truth = score_edits(render([c.target for c in cases]), cases)
    assert truth["edit_acc"].mean() >= 0.9  # the reader's own error, ≤ 2 % on renders
    assert truth["bg_psnr"].min() > 60  # outside the true change the target is the source
    unedited = score_edits(render([c.source for c in cases]), cases)
    assert unedited["edit_acc"].mean() <= 0.1
    assert (unedited["bg_psnr"] > 100).all()  # identical outside the change: the 1e-10 MSE floor
    assert change_masks(cases).shape == (32, 1, 64, 64)


@pytest.fixture(scope="module")
def random_64(tmp_path_factory):
    """tiny-sd-64's architecture, randomly initialised around the shipped vae-64."""
    from diffusers import AutoencoderKL

    from toy.tiny_models import build_tiny_sd_64
    from toy.training import WEIGHTS

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-sd-64-random")
    build_tiny_sd_64(AutoencoderKL.from_pretrained(WEIGHTS / "vae-64"), folder / "tok").save_pretrained(folder / "pipe")
    return str(folder / "pipe")


def test_word_maps_are_shares_of_attention(random_64, cases):
    from minidiff.p2p import P2PEdit, p2p_sample
    from minidiff.pipelines import load_pipeline

    model = load_pipeline(random_64, device="cpu")
    few = cases[:2]
    latent = model.encode(render([c.source for c in few]))
    maps = {}
    edits = [P2PEdit(c.source_caption, c.target_caption, blend_words=c.blend_words) for c in few]
    p2p_sample(model, latent, edits, 2, 7.5, word_maps=maps)
    assert sorted(maps) == [4, 8, 16]  # tiny-sd-64's cross-attention at 16², 8² and the 4² mid-block
    for side, m in maps.items():
        assert m.shape == (2, 2, side, side) and (m >= 0).all() and (m <= 1 + 1e-6).all()
    with pytest.raises(ValueError, match="blend_words"):
        p2p_sample(model, latent, [P2PEdit(c.source_caption, c.target_caption) for c in few], 2, word_maps={})


def test_the_detailed_benchmark_prints_every_figure(random_64):
    from benchmarks import detailed

    figures = detailed.run(random_64, n=4, steps=2, inversions=("ddim_w1", "ddim_w7_5", "nti", "freeinv"), editors=("p2p", "p2p_lb", "p2p_lb16", "p2p_lb8"),
                           guidances=(1.5, 7.5), n_prompts=2, n_recon=2, n_reader=10)
    keys = ["model", "n_edits", "vae_psnr", "ddim_w1_recon_psnr", "ddim_w7_5_recon_psnr", "nti_recon_psnr",
            "prompt_acc_w1", "prompt_acc_w7_5", "prompt_acc_unseen_w7_5", "prompt_fields_w7_5", "reader_acc", "word_map_mass_ratio"]
    keys += [f"{i}_{e}_mask_iou" for i in ("ddim_w1", "ddim_w7_5", "nti") for e in ("p2p_lb", "p2p_lb16", "p2p_lb8")]
    keys += [f"{m}_recon_psnr_{t}{se}" for m in ("ddim", "freeinv") for t in (10, 20) for se in ("", "_se")]
    keys += [f"nti_{e}_{m}{se}" for e in ("p2p", "p2p_lb") for m in ("edit_acc", "bg_psnr", "gt_psnr") for se in ("", "_se")]
    assert not [k for k in keys if k not in figures]
    assert figures["n_edits"] == 4 and 0 <= figures["reader_acc"] <= 1
    rows = figures["guidance_sweep"]
    assert {(r["guidance"], r["inversion"], r["editor"]) for r in rows} == {
        (w, i, e) for w in (1.5, 7.5) for i in ("ddim_w1_cfg", "nti", "npi", "direct") for e in ("p2p", "p2p_lb")}
    assert all(set(r) >= {"guidance", "inversion", "editor", "edit_acc", "bg_psnr"} for r in rows)
    assert np.isfinite([figures["word_map_mass_ratio"], figures["freeinv_gain_10"], figures["freeinv_p2p_bg_psnr"]]).all()
    assert all(isinstance(e["holds"], bool) for e in figures["expectations"]) and len(figures["expectations"]) >= 7
    assert any(e["expectation"].startswith("6c.") for e in figures["expectations"])


def test_the_detailed_command_refuses_unknown_names():
    from benchmarks import detailed

    with pytest.raises(SystemExit):
        detailed.main(["--editors", "p2p,p2p_lb9"])
