"""The full-scale code path (diffusers pipelines through from_pretrained) on tiny random models of
the SD and SD3 architectures, built from configs: loading, adapters, methods, and bad input."""
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import saved_and_loaded

import minidiff as md
from minidiff.pipelines import FluxDenoiser, SD3Denoiser, StableDiffusionDenoiser, load_pipeline
from toy.tiny_models import build_tiny_flow, build_tiny_flux, build_tiny_sd

PROMPT = "a red circle on a blue background"


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    return saved_and_loaded(tmp_path_factory, build_tiny_sd)


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    return saved_and_loaded(tmp_path_factory, build_tiny_flow)


@pytest.fixture(scope="module")
def flux(tmp_path_factory):
    return saved_and_loaded(tmp_path_factory, build_tiny_flux)


def test_flux_adapter_samples_exactly_as_the_flux_pipeline(flux):
    """FLUX.1's architecture (T5 + pooled CLIP, packed latents, guidance embedding) through
    from_pretrained: minidiff's Euler loop on unpacked latents reproduces FluxPipeline's own sampling."""
    assert isinstance(flux, FluxDenoiser) and flux.embedded_guidance
    cond = flux.embed(PROMPT)
    assert cond[0].shape == (1, 16, 64) and cond[1].shape == (1, 64)
    z = flux.noise(2, torch.Generator().manual_seed(0))
    assert z.shape == (2, 4, 8, 8)
    torch.testing.assert_close(flux.unpack(flux.pack(z)), z, atol=0, rtol=0)
    ours = md.flow_sample(flux, z, cond, steps=4, guidance=3.5)
    theirs = flux.pipe(prompt=[PROMPT] * 2, num_inference_steps=4, guidance_scale=3.5, latents=flux.pack(z), height=32,
                       width=32, output_type="latent", max_sequence_length=16).images
    torch.testing.assert_close(ours, flux.unpack(theirs), atol=1e-5, rtol=0)


def test_flux_guidance_is_an_input_and_flowedit_keeps_the_source(flux):
    cond, z = flux.embed(PROMPT), flux.noise(1, torch.Generator().manual_seed(1))
    calls = []
    original = flux.transformer.forward
    flux.transformer.forward = lambda *a, **k: calls.append(k["guidance"]) or original(*a, **k)
    try:
        md.flow_sample(flux, z, cond, steps=2, guidance=5.5)
    finally:
        flux.transformer.forward = original
    assert len(calls) == 2 and all(float(g) == 5.5 for g in calls)  # one pass per step, no CFG batch
    same = md.flowedit(flux, z, cond, cond, steps=8, n_max=6, guidance_src=1.5, guidance_tar=1.5)
    torch.testing.assert_close(same, z, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="does not know the word 'purple'"):
        flux.embed("a purple circle on a blue background")


def test_flux_without_a_guidance_embedding_gets_no_guidance_input(tmp_path_factory):
    """FLUX.1-schnell's kind (``guidance_embeds=False``): the adapter passes ``guidance=None``, samples as
    FluxPipeline does, and guidance ≠ 1 is classifier-free guidance (two branches) with ``null``."""
    schnell = saved_and_loaded(tmp_path_factory, lambda vae=None, tokenizer_dir=None: build_tiny_flux(vae, tokenizer_dir, guidance_embeds=False))
    assert isinstance(schnell, FluxDenoiser) and not schnell.embedded_guidance
    cond, z = schnell.embed(PROMPT), schnell.noise(2, torch.Generator().manual_seed(0))
    calls = []
    original = schnell.transformer.forward
    schnell.transformer.forward = lambda *a, **k: calls.append((k["guidance"], k["hidden_states"].shape[0])) or original(*a, **k)
    try:
        ours = md.flow_sample(schnell, z, cond, steps=3)
        md.flow_sample(schnell, z, cond, steps=1, guidance=3.0, null=schnell.null)
    finally:
        schnell.transformer.forward = original
    assert [g for g, _ in calls] == [None] * 4 and [b for _, b in calls] == [2, 2, 2, 4]
    theirs = schnell.pipe(prompt=[PROMPT] * 2, num_inference_steps=3, latents=schnell.pack(z), height=32, width=32,
                          output_type="latent", max_sequence_length=16).images
    torch.testing.assert_close(ours, schnell.unpack(theirs), atol=1e-5, rtol=0)


def _readme_five_lines() -> str:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("**Your own pipeline in five lines.**", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert len(block.strip().splitlines()) == 5
    return block


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_the_readmes_five_lines_run_on_a_loaded_pipeline(prediction_type):
    """The README's five lines, as written there, on a StableDiffusionPipeline built in memory (never
    through load_pipeline), with a 50×40 image: a reconstruction and an edit of the model's size."""
    torch.manual_seed(0)
    pipe = _build_v() if prediction_type == "v_prediction" else build_tiny_sd()
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8))
    scope = dict(md=md, pipe=pipe, image=image, source=PROMPT, target="a red square on a blue background",
                 word="circle", new_word="square")
    exec(_readme_five_lines(), scope)
    assert isinstance(scope["model"], StableDiffusionDenoiser)
    assert scope["recon"].shape == scope["edited"].shape == (3, 32, 32)
    assert torch.isfinite(scope["edited"]).all() and not torch.equal(scope["recon"], scope["edited"])


def test_wrap_picks_the_adapter_and_fit_states_its_policy(flow, flux):
    """wrap on SD3 and Flux pipelines; fit centre-crops to the largest square, then resizes; anything
    that is not a pipeline is refused with what to pass."""
    assert isinstance(md.wrap(flow.pipe), SD3Denoiser) and isinstance(md.wrap(flux.pipe), FluxDenoiser)
    wide = np.zeros((40, 60, 3), dtype=np.uint8)
    wide[:, 10:50] = 255  # the centre 40×40 square is white, the side bands black
    fitted = flow.fit(wide)
    assert len(fitted) == 1 and fitted[0].size == (32, 32) and np.asarray(fitted[0]).min() == 255
    assert flow.encode(flow.fit([Image.fromarray(wide)] * 2)).shape[0] == 2
    with pytest.raises(TypeError, match="loaded diffusers pipeline.*load_pipeline"):
        md.wrap("stable-diffusion-v1-5/stable-diffusion-v1-5")
    with pytest.raises(ValueError, match="use model.fit"):
        flow.encode(Image.fromarray(wide))


def test_loading_picks_the_adapter(sd, flow):
    assert isinstance(sd, StableDiffusionDenoiser) and sd.prediction == "epsilon"
    assert isinstance(flow, SD3Denoiser) and flow.prediction == "velocity"
    assert sd.scheduler_config["beta_schedule"] == "scaled_linear" and sd.image_size == 32


def _build_v(vae=None, tokenizer_dir=None):
    """tiny-sd with an SD 2.x-768 kind of scheduler: the UNet is read as predicting v."""
    from diffusers import DDIMScheduler

    from toy.tiny_models import SD_SCHEDULER

    pipe = build_tiny_sd(vae, tokenizer_dir)
    pipe.scheduler = DDIMScheduler(**dict(SD_SCHEDULER, prediction_type="v_prediction"))
    return pipe


@pytest.fixture(scope="module")
def sd_v(tmp_path_factory):
    return saved_and_loaded(tmp_path_factory, _build_v)


def test_v_prediction_unets_are_converted_to_epsilon(sd_v):
    """An SD 2.x-768 kind of UNet (prediction_type "v_prediction"): the adapter returns
    ε = √ᾱ v + √(1−ᾱ) x_t, and minidiff's DDIM then samples exactly as StableDiffusionPipeline does."""
    assert sd_v.prediction == "epsilon" and sd_v.unet_prediction == "v_prediction"
    assert sd_v.scheduler_config["prediction_type"] == "epsilon"
    cond, z = sd_v.embed(PROMPT), sd_v.noise(2, torch.Generator().manual_seed(0))
    ab = sd_v.pipe.scheduler.alphas_cumprod[500]
    v = sd_v.unet(z, torch.tensor([500, 500]), encoder_hidden_states=cond.expand(2, -1, -1)).sample
    torch.testing.assert_close(sd_v(z, 500, cond), ab.sqrt() * v + (1 - ab).sqrt() * z)
    ours = md.ddim_sample(sd_v, z, cond, steps=5, guidance=3.0, null=sd_v.null)
    theirs = sd_v.pipe(prompt=[PROMPT] * 2, num_inference_steps=5, guidance_scale=3.0, latents=z, eta=0.0,
                       output_type="latent").images
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


def test_every_epsilon_method_runs_on_a_v_prediction_unet(sd_v):
    """DDIM, null-text, negative-prompt and Direct Inversion, P2P and IMPUS's textual inversion on the
    v-prediction UNet, with their closed-form facts: null-text with no iterations is DDIM inversion,
    negative-prompt inversion at w = 1 reconstructs as DDIM, Direct Inversion's source branch lands on x_0."""
    z0 = sd_v.encode(torch.rand(1, 3, 32, 32) * 2 - 1)
    cond = sd_v.embed(PROMPT)
    zT = md.ddim_invert(sd_v, z0, cond, steps=5)
    nti = md.null_text_invert(sd_v, z0, cond, steps=5, inner_steps=0)
    torch.testing.assert_close(nti.latent, zT)
    npi = md.negative_prompt_inversion(sd_v, z0, cond, steps=5)
    torch.testing.assert_close(md.ddim_sample(sd_v, npi.latent, cond, steps=5), md.ddim_sample(sd_v, zT, cond, steps=5))
    di = md.direct_inversion(sd_v, z0, cond, steps=5)
    out = md.p2p_sample(sd_v, di.latent, md.P2PEdit(PROMPT, "a red square on a blue background"), steps=5,
                        source_path=di.source_path)
    torch.testing.assert_close(out[0, 0], z0[0], atol=1e-5, rtol=0)
    emb, losses = md.textual_inversion(sd_v, z0, cond, iters=2, generator=torch.Generator().manual_seed(0))
    assert emb.shape == cond.shape and len(losses) == 2 and all(np.isfinite(losses))


def test_sd_embed_encode_decode_and_ddim(sd):
    cond = sd.embed(PROMPT)
    assert cond.shape == (1, 16, 64) and sd.null.shape == (1, 16, 64)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    z0 = sd.encode(images)
    assert z0.shape == (2, 4, 8, 8)
    assert sd.decode(z0).shape == (2, 3, 32, 32)
    zT = md.ddim_invert(sd, z0, cond, steps=5, guidance=7.5, null=sd.null)
    assert torch.isfinite(md.ddim_sample(sd, zT, cond, steps=5, guidance=7.5, null=sd.null)).all()


def test_sd3_tuple_conditioning_cfg_and_flowedit(flow):
    cond = flow.embed(PROMPT)
    assert isinstance(cond, tuple) and cond[1].shape == (1, 64)
    z = flow.noise(2, torch.Generator().manual_seed(0))
    out = md.flow_sample(flow, z, cond, steps=4, guidance=3.5, null=flow.null)
    assert out.shape == (2, 4, 8, 8)
    x_src = flow.encode(torch.zeros(1, 3, 32, 32))
    same = md.flowedit(flow, x_src, cond, cond, steps=8, n_max=6, guidance_src=3.5, guidance_tar=3.5, null=flow.null)
    torch.testing.assert_close(same, x_src, atol=1e-5, rtol=0)


def test_unknown_word_is_named(sd):
    with pytest.raises(ValueError, match="does not know the word 'purple'.*Known words: a, background"):
        sd.embed("a purple circle on a blue background")


def test_bad_images_are_explained(sd):
    with pytest.raises(ValueError, match="convert\\('RGB'\\)"):
        sd.encode(Image.new("RGBA", (32, 32)))
    with pytest.raises(ValueError, match="needs 32×32"):
        sd.encode(Image.new("RGB", (64, 64)))
    with pytest.raises(ValueError, match="shape \\(B, 3, 32, 32\\)"):
        sd.encode(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="\\[-1, 1\\]"):
        sd.encode(torch.full((1, 3, 32, 32), 255.0))
    ok = sd.encode(Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)))
    assert ok.shape == (1, 4, 8, 8)
    with pytest.raises(TypeError, match="pass PIL images, a uint8 numpy array"):
        sd.encode([[0, 1]])
    with pytest.raises(ValueError, match="must be uint8"):
        sd.encode(np.zeros((32, 32, 3), dtype=np.float64))
    with pytest.raises(ValueError, match="channels first"):
        sd.encode(np.zeros((2, 3, 32, 32), dtype=np.uint8))
    with pytest.raises(ValueError, match="needs 32×32"):
        sd.encode(np.zeros((16, 16, 3), dtype=np.uint8))


def test_numpy_hwc_uint8_images_are_accepted(sd):
    """A (H, W, 3) / (B, H, W, 3) uint8 array encodes exactly as the same PIL image does."""
    pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    from_pil = sd.encode([Image.fromarray(p) for p in pixels])
    torch.testing.assert_close(sd.encode(pixels), from_pil)
    torch.testing.assert_close(sd.encode(pixels[0]), from_pil[:1])
    torch.testing.assert_close(sd.encode(list(pixels)), from_pil)


def test_shipped_models_load_by_name():
    """The README's load_pipeline("tiny-sd"): names come from the minidiff.models entry points."""
    assert {"tiny-sd", "tiny-flow", "tiny-flux", "tiny-sd-noisy", "tiny-sd-64", "tiny-flow-64", "tiny-flux-64"} <= set(md.pipelines.registered_models())
    detailed = load_pipeline("tiny-sd-64", device="cpu")
    assert isinstance(detailed, StableDiffusionDenoiser) and detailed.image_size == 64 and detailed.sample_size == 16
    assert isinstance(load_pipeline("tiny-sd", device="cpu"), StableDiffusionDenoiser)
    assert isinstance(load_pipeline("tiny-flow", device="cpu"), SD3Denoiser)
    assert isinstance(load_pipeline("tiny-flux", device="cpu"), FluxDenoiser)
    for name, kind in (("tiny-flow-64", SD3Denoiser), ("tiny-flux-64", FluxDenoiser)):
        model = load_pipeline(name, device="cpu")
        assert isinstance(model, kind) and model.image_size == 64 and model.sample_size == 16


def test_uncached_hub_id_fails_fast_and_says_why(monkeypatch):
    """Fails before diffusers' download retries: from_pretrained is never reached."""
    monkeypatch.setattr(md.pipelines.hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(md.pipelines, "_hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setattr(md.pipelines.DiffusionPipeline, "load_config", lambda *a, **k: pytest.fail("reached diffusers"))
    with pytest.raises(OSError, match="not in the Hugging Face cache.*cannot reach the hub.*download it on a connected machine"):
        load_pipeline("no-such-org/no-such-model", device="cpu")


def test_unreachable_hub_is_detected(monkeypatch):
    """One TCP connection with a timeout, no retries (nothing listens on the discard port)."""
    monkeypatch.setattr(md.pipelines.hf_constants, "ENDPOINT", "http://127.0.0.1:9")
    calls = []
    real = md.pipelines.socket.create_connection
    monkeypatch.setattr(md.pipelines.socket, "create_connection", lambda *a, **k: calls.append(k) or real(*a, **k))
    assert not md.pipelines._hub_reachable(timeout=2.0)
    assert calls == [{"timeout": 2.0}]


@pytest.mark.parametrize("path", ["./no/such/folder", "/no/such/folder", "a/b/c"])
def test_bad_local_paths_are_named(path):
    with pytest.raises(FileNotFoundError, match="no pipeline folder at"):
        load_pipeline(path, device="cpu")


def test_a_folder_without_a_pipeline_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no model_index.json"):
        load_pipeline(str(tmp_path), device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_explained():
    with pytest.raises(ValueError, match="sees no CUDA GPU.*device='cpu'"):
        load_pipeline("tiny-sd", device="cuda")


def test_half_precision_on_cpu_is_refused(tmp_path):
    with pytest.raises(ValueError, match="float32"):
        load_pipeline(str(tmp_path), device="cpu", dtype=torch.float16)


def test_p2p_processors_match_diffusers_attention_and_are_removed(sd):
    from minidiff.p2p import P2PEdit, p2p_sample

    before = {k: type(v) for k, v in sd.unet.attn_processors.items()}
    z = sd.noise(1, torch.Generator().manual_seed(0))
    edit = P2PEdit(PROMPT, "a red square on a blue background", cross_replace=0.0, self_replace=0.0)
    plain = md.ddim_sample(sd, z.expand(2, -1, -1, -1), sd.embed([edit.source, edit.target]), 4, 7.5, sd.null)
    one = p2p_sample(sd, z, edit, steps=4)
    assert one.shape == p2p_sample(sd, z, [edit], steps=4).shape == (1, 2, 4, 8, 8)  # one edit or a list of one: one shape
    torch.testing.assert_close(one[0], plain, atol=1e-4, rtol=0)
    assert {k: type(v) for k, v in sd.unet.attn_processors.items()} == before


def test_p2p_injection_ties_the_target_to_the_source(sd):
    from minidiff.p2p import AttentionControl, P2PEdit, p2p_sample

    z = sd.noise(1, torch.Generator().manual_seed(1))
    same = p2p_sample(sd, z, P2PEdit(PROMPT, PROMPT), steps=4)[0]
    torch.testing.assert_close(same[0], same[1])
    swap = AttentionControl(P2PEdit(PROMPT, "a red square on a blue background", 0.5, 0.25, {"square": 2.0}), sd.pipe.tokenizer, 4)
    probs = torch.rand(4 * 2, 6, 16)  # [∅ src, ∅ tar, c src, c tar] × 2 heads, 6 queries, 16 tokens
    for step in range(4):
        cross = swap("layer", probs, True, heads=2).view(4, 2, 6, 16)
        self_ = swap("self-layer", probs, False, heads=2).view(4, 2, 6, 16)
        assert torch.equal(cross[:3], probs.view(4, 2, 6, 16)[:3])  # only the conditional target changes
        src = probs.view(4, 2, 6, 16)[2]
        expected = src * swap.scale if step < 2 else probs.view(4, 2, 6, 16)[3]
        torch.testing.assert_close(cross[3], expected)
        assert torch.equal(self_[3], src if step < 1 else probs.view(4, 2, 6, 16)[3])
    assert swap.scale[3] == 2.0 and swap.scale.sum() == 17  # BOS, "a", "red", then "square"
    refine = AttentionControl(P2PEdit(PROMPT, "a red circle on a blue background", 0.5, 0.25), sd.pipe.tokenizer, 4)
    refine = AttentionControl(P2PEdit("a circle on a blue background", PROMPT), sd.pipe.tokenizer, 4)  # "red" added
    assert refine.aligned[:4].tolist() == [True, True, False, True]  # BOS, a, (red keeps its own map), circle
    assert refine.mapper[3, 2] == 1 and refine.mapper[2].sum() == 0
    with pytest.raises(ValueError, match="not a word of the target"):
        AttentionControl(P2PEdit(PROMPT, PROMPT, reweight={"green": 2.0}), sd.pipe.tokenizer, 4)


def test_sampling_dtype_follows_each_family():
    from minidiff.pipelines import sampling_dtype

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert sampling_dtype("auto", cpu, flux=True, tiny=False) == torch.float32
    assert sampling_dtype("auto", cuda, flux=False, tiny=False) == torch.float16   # SD 1.5, SD3
    assert sampling_dtype("auto", cuda, flux=True, tiny=False) == torch.bfloat16   # FLUX.1-dev
    assert sampling_dtype("auto", cuda, flux=True, tiny=True) == torch.float32     # the shipped tiny models
    with pytest.raises(ValueError, match="bfloat16"):
        sampling_dtype(torch.float16, cuda, flux=True, tiny=False)


def test_offload_needs_a_gpu():
    with pytest.raises(ValueError, match="offload"):
        load_pipeline("tiny-sd", device="cpu", offload=True)


def test_every_family_has_its_papers_settings():
    from minidiff.settings import FULL_SCALE, settings_for

    assert settings_for("black-forest-labs/FLUX.1-dev")["flowedit"] == {"n_max": 24, "n_avg": 1, "source_guidance": 1.5, "target_guidance": 5.5}
    assert settings_for("sd3")["flowedit"]["n_max"] == 33 and settings_for("sd15")["nti_inner_steps"] == 10
    assert settings_for("flux")["dtype"] == "bfloat16" and settings_for("tiny-flux")["dtype"] == "float32"
    assert {settings_for(r["model"])["family"] for r in FULL_SCALE.values()} == {"sd15", "sd3", "flux"}
    with pytest.raises(ValueError, match="sd15, sd3, flux"):
        settings_for("sdxl")
