"""minidiff.footprint: the real models' sizes from their configs, on the meta device, and the passes
each method makes; measure_denoiser on a tiny pipeline."""
import pytest

from conftest import saved_and_loaded

from minidiff.footprint import denoiser_flops, measure_denoiser, model_calls, parameter_counts
from minidiff.settings import FULL_SCALE
from toy.full_arch import build_sd15_arch


@pytest.mark.parametrize("family, part, published", [
    ("sd15", "unet", 859.5e6), ("sd15", "text_encoder", 123.1e6), ("sd15", "vae", 83.7e6),
    ("sd3", "transformer", 2.03e9), ("sd3", "text_encoder_2", 695e6), ("sd3", "text_encoder_3", 4.76e9),
    ("flux", "transformer", 11.9e9),
])
def test_parameter_counts_match_the_model_cards(family, part, published):
    assert parameter_counts(family)[part] == pytest.approx(published, rel=0.02)


def test_flops_of_sd15_scale_with_the_pixels():
    at_512, at_256 = denoiser_flops("sd15", 512), denoiser_flops("sd15", 256)
    assert 1.5e12 / 2 < at_512 < 2.5e12 / 2        # ≈ 0.8 TFLOP per image per call
    assert 4 < at_512 / at_256 < 5  # pixels × 4, attention a little more
    assert denoiser_flops("sd15", 256, batch=2) == pytest.approx(2 * at_256, rel=1e-6)


def test_passes_per_method_follow_the_algorithms():
    sd, sd3, flux = FULL_SCALE["sd15"], FULL_SCALE["sd3"], FULL_SCALE["flux"]
    assert model_calls("freeinv", sd) == model_calls("ddim_inversion", sd) == 50
    assert model_calls("null_text", sd | {"nti_inner_steps": 0}) == model_calls("ddim_inversion", sd) + model_calls("cfg_sampling", sd)
    assert model_calls("null_text", sd) == 50 + 50 * 32
    assert model_calls("flowedit", sd3) == model_calls("inversion_edit", sd3) == 4 * 33
    assert model_calls("flowedit", flux) == 2 * 24 and model_calls("cfg_sampling", flux) == 28
    with pytest.raises(ValueError, match="unknown method"):
        model_calls("sdxl_turbo", sd)


def test_a_denoiser_call_is_timed(tmp_path_factory):
    out = measure_denoiser(saved_and_loaded(tmp_path_factory, build_sd15_arch), batch=1, repeats=2)
    assert out["seconds"] > 0 and out["peak_gib"] is None  # no CUDA here


def test_the_impus_budget_is_the_official_codes():
    sd = FULL_SCALE["sd15"]
    assert sd["impus"] == {"ti_iters": 2500, "lora_iters": 150, "uncond_iters": 15}
    assert model_calls("impus_fit", sd) == 3 * 2 * (2500 + 150 + 15) + 4 * 50
