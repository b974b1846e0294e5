"""tiny-flow-64 (SD3's layout on the detailed world) and FlowEdit's detailed benchmark: the architecture
and shift as documented, FlowEdit and its baselines on the detailed world's exact edits, and the
matched-accuracy comparison and verdicts computed from the numbers."""
import pytest
import torch

from benchmarks import flow_detailed
from benchmarks.flow_detailed import expectations
from toy.shapes.flow_editing import matched_gain
from toy.detailed.editing import editing_cases


@pytest.fixture(scope="module")
def random_flow_64(tmp_path_factory):
    """tiny-flow-64's architecture, randomly initialised around the shipped vae-64."""
    from diffusers import AutoencoderKL

    from toy.tiny_models import build_tiny_flow_64
    from toy.training import WEIGHTS

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-flow-64-random")
    build_tiny_flow_64(AutoencoderKL.from_pretrained(WEIGHTS / "vae-64"), folder / "tok").save_pretrained(folder / "pipe")
    return str(folder / "pipe")


def test_tiny_flow_64_is_sd3s_layout_on_16x16_latents(random_flow_64):
    from minidiff.pipelines import load_pipeline
    from minidiff.settings import settings_for
    from toy.tiny_models import FLOW_64_SHIFT

    model = load_pipeline(random_flow_64, device="cpu")
    t = model.pipe.transformer.config
    assert (t.sample_size // t.patch_size) ** 2 == 64  # 64 image tokens, patch 2, as SD3 patchifies
    assert t.attention_head_dim >= 32 and model.image_size == 64
    assert model.pipe.scheduler.config.shift == FLOW_64_SHIFT == 3.0  # SD3-medium's
    row = settings_for("tiny-flow-64")
    assert row["family"] == "sd3" and row["flowedit"]["n_max"] == 33 and row["resolution"] == 64
    # at shift 3, SD3's n_max = 33 of 50 starts FlowEdit at σ ≈ 0.85 (at shift 1: 0.66)
    u = 33 / 50
    assert abs(3 * u / (1 + 2 * u) - 0.853) < 1e-3


def test_the_recipe_is_registered():
    from toy import train

    for name in ("tiny-flow-64", "tiny-flux-64"):
        assert name in train.RECIPES and name in train.DEFAULTS


def test_flowedit_and_its_baselines_run_on_the_detailed_world(random_flow_64):
    from minidiff.pipelines import load_pipeline
    from toy.shapes.flow_editing import METHODS, SD3_SETTING, run_edits

    model = load_pipeline(random_flow_64, device="cpu")
    cases = editing_cases(4)
    runs = run_edits(model, cases, SD3_SETTING.but(steps=3, n_max=2), METHODS)
    assert set(runs) == set(METHODS)
    for r in runs.values():
        assert r.images.shape == (4, 3, 64, 64)
        assert {k: v.shape for k, v in r.scores.items()} == {k: (4,) for k in ("edit_acc", "bg_psnr", "gt_psnr", "cost")}


def _row(editor, acc, bg, se=0.5, steps=50, n_max=33):
    return {"editor": editor, "n_max": n_max, "steps": steps, "edit_acc": acc, "edit_acc_se": 0.05, "bg_psnr": bg, "bg_psnr_se": se}


def test_matched_gain_interpolates_the_baseline_at_equal_accuracy():
    rows = [_row("inversion", 0.0, 30.0), _row("inversion", 1.0, 10.0), _row("flowedit", 0.5, 25.0), _row("flowedit", 0.25, 26.0)]
    m = matched_gain(rows, "flowedit", "inversion", 50)
    # the baseline at 0.5 is 20 dB and at 0.25 is 25 dB: gains 5 and 1
    assert m["gain"] == pytest.approx(3.0) and m["min_gain"] == pytest.approx(1.0) and m["n_matched"] == 2
    assert m["gain_se"] > 0
    outside = [_row("inversion", 0.2, 30.0), _row("inversion", 0.4, 10.0), _row("flowedit", 0.9, 25.0)]
    assert matched_gain(outside, "flowedit", "inversion", 50) is None
    assert matched_gain(rows, "flowedit", "inversion", 10) is None


def test_the_verdicts_follow_the_numbers():
    def figures(gain):
        m = {"gain": gain, "gain_se": 0.5, "min_gain": gain - 1, "n_matched": 3}
        return {"flow_matched": {f"flowedit_vs_{b}_{t}": m for b in ("inversion", "sdedit", "inversion_w1") for t in (50, 20, 10)}}

    assert [e["holds"] for e in expectations(figures(4.0))] == [True, True]
    assert [e["holds"] for e in expectations(figures(0.5))] == [False, False]
    assert [e["holds"] for e in expectations({"flow_prompt_acc": 0.9})] == [True]
    assert [e["holds"] for e in expectations({"flow_prompt_acc": 0.5, "flow_prompt_acc_w1": 0.2})] == [False]
    assert expectations({}) == []


def test_the_benchmark_prints_every_figure(random_flow_64):
    figures = flow_detailed.run({"flow": random_flow_64}, n=4, shares=(0.5,), steps_values=(4, 2), n_prompts=2)
    keys = ["flow_prompt_acc", "flow_prompt_acc_unseen", "flow_prompt_acc_w1", "flow_prompt_fields", "flow_cost_ratio", "flow_flowedit_seconds_per_edit"]
    keys += [f"flow_{m}_{s}{se}" for m in ("flowedit", "inversion", "inversion_w1", "sdedit") for s in ("edit_acc", "bg_psnr", "cost") for se in ("", "_se")]
    assert not [k for k in keys if k not in figures]
    assert {(r["editor"], r["steps"]) for r in figures["flow_pareto"]} == {(e, t) for e in ("flowedit", "inversion", "inversion_w1", "sdedit") for t in (4, 2)}
    assert set(figures["flow_pareto"][0]) == {"editor", "n_max", "steps", "edit_acc", "edit_acc_se", "bg_psnr", "bg_psnr_se"}


def test_the_speed_attribution_separates_passes_from_the_transformer_at_equal_tokens(random_flow_64, tmp_path):
    from diffusers import AutoencoderKL

    from minidiff.pipelines import load_pipeline
    from toy.tiny_models import build_tiny_flux_64
    from toy.training import WEIGHTS

    torch.manual_seed(0)
    build_tiny_flux_64(AutoencoderKL.from_pretrained(WEIGHTS / "vae-64"), tmp_path / "tok").save_pretrained(tmp_path / "pipe")
    flow, flux = load_pipeline(random_flow_64, device="cpu"), load_pipeline(str(tmp_path / "pipe"), device="cpu")
    f = flow_detailed.speed_figures(flow, flux, steps=2, n=2)
    assert f["tokens"] == 64 and f["flow_transformer_params"] > 0 and f["flux_transformer_params"] > 0
    # a ratio of measured times, never asserted against a threshold; only its arithmetic is a fact
    assert f["total_ratio"] == pytest.approx(f["passes_ratio"] * f["transformer_ratio"], rel=0.02)


def test_tiny_flux_64_packs_64_tokens_and_samples_at_flux_devs_native_shift(tmp_path):
    import math

    from diffusers import AutoencoderKL

    import minidiff as md
    from minidiff.pipelines import load_pipeline
    from toy.distill import sampled_shift
    from toy.tiny_models import build_tiny_flux_64
    from toy.training import WEIGHTS

    torch.manual_seed(0)
    build_tiny_flux_64(AutoencoderKL.from_pretrained(WEIGHTS / "vae-64"), tmp_path / "tok").save_pretrained(tmp_path / "pipe")
    flux = load_pipeline(str(tmp_path / "pipe"), device="cpu")
    assert flux.image_size == 64 and flux.transformer.config.in_channels == 16  # 2×2-packed 4-channel latents
    # FLUX.1-dev's μ at its native 4 096 tokens is 1.15; scaled to this world, at its native 64 tokens
    assert sampled_shift(flux.pipe.scheduler.config, 64) == pytest.approx(math.exp(1.15))
    images = md.generate(flux, ["a red circle on a blue striped background"], guidance=3.5, steps=2)
    assert images.shape == (1, 3, 64, 64) and torch.isfinite(images).all()
