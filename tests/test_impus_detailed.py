"""IMPUS on the detailed world: the perceptual proxy's calibration (closed form, and refitted to the shipped
constants), morph pairs that change only their factor, and realism read from pixels."""
import dataclasses

import pytest
import torch

import minidiff as md
from toy.detailed import caption, render
from toy.detailed.morphs import (ANCHOR_VALUE, PAIR_KINDS, PROXY_CALIBRATION, calibration_data, fit_proxy_calibration,
                                 morph_pairs, reads_as_scene)
from toy.training import WEIGHTS

#: the hidden factors each pair kind may change (everything else in the scene stays fixed)
CHANGES = {"hue": {"hue"}, "size_position": {"size", "cx"}, "superellipse": {"kind", "roundness"}, "frequency": {"frequency"}}


def _constant_strip(k: int, step: float) -> torch.Tensor:
    return torch.arange(k, dtype=torch.float32).mul(step).view(k, 1, 1, 1).expand(k, 3, 4, 4).contiguous()


def _squared_mean_difference(a, b):
    return (a - b).mean((1, 2, 3)).square()


def test_a_squared_distance_has_growth_exponent_two_and_its_calibration_is_additive():
    strips = [_constant_strip(6, 0.1), _constant_strip(9, 0.05)]
    gamma, se = md.growth_exponent(strips, _squared_mean_difference)
    assert gamma == pytest.approx(2.0, abs=1e-6) and se == pytest.approx(0.0, abs=1e-6)
    anchors = (torch.zeros(3, 3, 4, 4), torch.full((3, 3, 4, 4), 0.5))
    cal = md.fit_calibration(strips, anchors, _squared_mean_difference, anchor_value=0.2, anchor="test")
    assert cal.exponent == pytest.approx(2.0, abs=1e-6) and cal.scale == pytest.approx(0.4, rel=1e-5)
    assert cal(torch.tensor([0.25])).item() == pytest.approx(0.2, rel=1e-5)
    calibrated = cal.apply(_squared_mean_difference)
    assert md.growth_exponent(strips, calibrated)[0] == pytest.approx(1.0, abs=1e-5)
    frames = strips[0]  # additive: consecutive steps sum to the ends' distance
    steps = calibrated(frames[1:], frames[:-1]).sum()
    assert steps.item() == pytest.approx(calibrated(frames[-1:], frames[:1]).item(), rel=1e-4)


def test_calibration_bad_input_is_explained():
    with pytest.raises(ValueError, match="each strip must be frames"):
        md.growth_exponent([torch.zeros(3, 4, 4), torch.zeros(3, 4, 4)], _squared_mean_difference)
    with pytest.raises(ValueError, match="at least two strips"):
        md.growth_exponent([_constant_strip(5, 0.1)], _squared_mean_difference)
    with pytest.raises(ValueError, match="anchors must be two image batches"):
        md.fit_calibration([_constant_strip(5, 0.1)] * 2, (torch.zeros(2, 3, 4, 4), torch.zeros(3, 3, 4, 4)), _squared_mean_difference)


@pytest.mark.skipif(not (WEIGHTS / "vae-64").exists(), reason="vae-64 is not shipped")
def test_the_shipped_proxy_calibration_refits_and_makes_the_strips_additive():
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(WEIGHTS / "vae-64")
    fitted = fit_proxy_calibration(vae)
    assert fitted.exponent == pytest.approx(PROXY_CALIBRATION.exponent, abs=0.03)
    assert fitted.scale == pytest.approx(PROXY_CALIBRATION.scale, rel=0.05)
    strips, (a, b) = calibration_data()
    dist = PROXY_CALIBRATION.apply(lambda x, y: md.perceptual_distance(x, y, vae, backend="vae"))
    gamma, se = md.growth_exponent(strips, dist)
    assert abs(gamma - 1) < 0.1 and se < 0.1  # raw: γ ≈ 1.6
    assert dist(a, b).median().item() == pytest.approx(ANCHOR_VALUE, rel=0.1)


def test_morph_pairs_change_only_their_factor_and_keep_the_caption_but_the_kind_word():
    pairs = morph_pairs(2)
    assert [p.kind for p in pairs] == list(PAIR_KINDS) * 2
    for p in pairs:
        (oa,), (ob,) = p.a.objects, p.b.objects
        changed = {f.name for f in dataclasses.fields(oa) if getattr(oa, f.name) != getattr(ob, f.name)}
        scene_changes = {f.name for f in dataclasses.fields(p.a) if f.name != "objects" and getattr(p.a, f.name) != getattr(p.b, f.name)}
        assert changed | scene_changes and changed | scene_changes <= CHANGES[p.kind]
        ca, cb = caption(p.a).split(), caption(p.b).split()
        assert len(ca) == len(cb) and sum(x != y for x, y in zip(ca, cb)) == (1 if p.kind == "superellipse" else 0)
    with pytest.raises(ValueError, match="n_per_kind"):
        morph_pairs(0)


def test_realism_passes_the_ends_and_fails_a_ghosted_cross_fade():
    pairs = [p for p in morph_pairs(3) if p.kind == "size_position"]
    for p in pairs:
        ends = render(p.scenes)
        assert reads_as_scene(ends, p).all()
        # the pixel cross-fade's midpoint: two half-bright objects, offset, which no scene of the world is
        assert not reads_as_scene(ends.mean(0, keepdim=True), p).item()


def _pair_figures(ppl_impus, ppl_slerp, realism_impus=0.9, realism_slerp=0.8, override=1.0, rppd=0.5):
    keys = ("impus", "no_lora", "no_bias", "no_ti", "impus_w1", "slerp", "crossfade")
    out = {"vae_psnr": 35.0, "lora_rank": 16, "rppd": rppd, "lora_rank_by_rule": md.lora_rank(rppd), "variance_override": override,
           "variance": 0.6, "fit_seconds": 1.0, "search_seconds": 1.0, "endpoint_psnr": 30.0, "frames_perceptual": 9,
           "max_over_mean_perceptual": 1.2, "max_over_mean_uniform": 2.6}
    for k in keys:
        out |= {f"ppl_{k}": ppl_slerp if k == "slerp" else ppl_impus, f"ppl_{k}_boot_se": 0.1, f"total_{k}": 1.0,
                f"largest_{k}": 0.3, f"max_over_mean_{k}": 1.5, f"realism_{k}": realism_slerp if k == "slerp" else realism_impus}
    return out


def test_the_morph_expectations_are_computed_from_the_numbers():
    from benchmarks.morph import expectations, summarise

    clear = summarise([_pair_figures(1.0, 3.0 + 0.1 * i, override=float(i > 0)) for i in range(4)])
    assert clear["ppl_slerp_minus_impus"] == pytest.approx(2.15) and clear["lora_rank_by_rule"] == [8] * 4
    assert [e["holds"] for e in expectations(clear)] == [True, True, True, True]
    noisy = summarise([_pair_figures(1.0, 3.0 * (-1) ** i, realism_impus=0.5) for i in range(4)])
    # a PPL gap within its s.e. (with CFG's schedule and without); every pair overridden
    assert [e["holds"] for e in expectations(noisy)] == [False, False, True, False]
