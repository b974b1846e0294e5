"""What the full-scale models cost: exact parameter counts and FLOPs from their configs, and the
model calls each method makes, for estimates where no GPU is at hand.

Nothing here downloads weights. :func:`build_on_meta` builds a component of SD 1.5, SD3-medium or
FLUX.1-dev from its published config on PyTorch's ``meta`` device (shapes only, no memory), so
:func:`parameter_counts` is exact, and :func:`denoiser_flops` counts the floating-point operations
of one denoiser call with ``torch.utils.flop_counter`` on meta tensors (matrix multiplications,
convolutions and attention; element-wise operations are not counted, a few per cent more).

:func:`model_calls` counts each method's denoiser passes per image from its algorithm
(``../shared/PAPERS.md``), a backward pass counting as two forward passes. Seconds estimated from
these are ``calls × FLOPs per call / sustained throughput``, an assumption that a lesson must
state; :func:`measure_denoiser` times the real thing where a GPU and the weights are present.
"""
from __future__ import annotations

import time

import torch
from diffusers import AutoencoderKL, FluxTransformer2DModel, SD3Transformer2DModel, UNet2DConditionModel
from torch.utils.flop_counter import FlopCounterMode
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel

_CLIP_L = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
               max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768)
_CLIP_G = dict(vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
               max_position_embeddings=77, hidden_act="gelu", projection_dim=1280)
_T5_XXL = dict(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
               feed_forward_proj="gated-gelu", is_encoder_decoder=False)
_VAE = dict(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(128, 256, 512, 512), layers_per_block=2)

#: family → component → (class, config): the published configs of the three pipelines
CONFIGS: dict[str, dict[str, tuple[type, dict]]] = {
    "sd15": {
        "unet": (UNet2DConditionModel, dict(sample_size=64, cross_attention_dim=768, attention_head_dim=8)),
        "vae": (AutoencoderKL, _VAE | dict(latent_channels=4)),
        "text_encoder": (CLIPTextModel, _CLIP_L),
    },
    "sd3": {
        "transformer": (SD3Transformer2DModel, dict(sample_size=128, patch_size=2, in_channels=16, out_channels=16,
                                                    num_layers=24, attention_head_dim=64, num_attention_heads=24,
                                                    joint_attention_dim=4096, caption_projection_dim=1536,
                                                    pooled_projection_dim=2048, pos_embed_max_size=192)),
        "vae": (AutoencoderKL, _VAE | dict(latent_channels=16, use_quant_conv=False, use_post_quant_conv=False)),
        "text_encoder": (CLIPTextModelWithProjection, _CLIP_L),
        "text_encoder_2": (CLIPTextModelWithProjection, _CLIP_G),
        "text_encoder_3": (T5EncoderModel, _T5_XXL),
    },
    "flux": {
        "transformer": (FluxTransformer2DModel, dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38,
                                                     attention_head_dim=128, num_attention_heads=24, joint_attention_dim=4096,
                                                     pooled_projection_dim=768, guidance_embeds=True, axes_dims_rope=(16, 56, 56))),
        "vae": (AutoencoderKL, _VAE | dict(latent_channels=16, use_quant_conv=False, use_post_quant_conv=False)),
        "text_encoder": (CLIPTextModel, _CLIP_L),
        "text_encoder_2": (T5EncoderModel, _T5_XXL),
    },
}
DENOISER = {"sd15": "unet", "sd3": "transformer", "flux": "transformer"}
#: text tokens the denoiser attends to: CLIP's 77; SD3's CLIP 77 + T5 256; Flux's T5 512
TEXT_TOKENS = {"sd15": 77, "sd3": 77 + 256, "flux": 512}


def build_on_meta(family: str, component: str) -> torch.nn.Module:
    """One component of ``family``'s pipeline, built from its config on the meta device (no memory)."""
    cls, config = CONFIGS[family][component]
    with torch.device("meta"):
        if issubclass(cls, (CLIPTextModel, CLIPTextModelWithProjection)):
            return cls(CLIPTextConfig(**config))
        if cls is T5EncoderModel:
            return cls(T5Config(**config))
        return cls(**config)


def parameter_counts(family: str) -> dict[str, int]:
    """{component: number of parameters} of ``family``'s pipeline ("sd15", "sd3", "flux"), exact."""
    return {name: sum(p.numel() for p in build_on_meta(family, name).parameters()) for name in CONFIGS[family]}


def denoiser_flops(family: str, resolution: int, batch: int = 1) -> float:
    """FLOPs of one denoiser call on ``batch`` images of ``resolution``² pixels (the VAE's factor 8)."""
    model, side = build_on_meta(family, DENOISER[family]), resolution // 8
    text = TEXT_TOKENS[family]
    with torch.device("meta"):
        t = torch.ones(batch)
        if family == "sd15":
            args = dict(sample=torch.randn(batch, 4, side, side), timestep=t, encoder_hidden_states=torch.randn(batch, text, 768))
        elif family == "sd3":
            args = dict(hidden_states=torch.randn(batch, 16, side, side), timestep=t,
                        encoder_hidden_states=torch.randn(batch, text, 4096), pooled_projections=torch.randn(batch, 2048))
        else:  # Flux packs 2×2 latent patches into tokens of 64 channels
            tokens = (side // 2) ** 2
            args = dict(hidden_states=torch.randn(batch, tokens, 64), timestep=t, guidance=t,
                        encoder_hidden_states=torch.randn(batch, text, 4096), pooled_projections=torch.randn(batch, 768),
                        img_ids=torch.zeros(tokens, 3), txt_ids=torch.zeros(text, 3))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(**args)
    return float(counter.get_total_flops())


def model_calls(method: str, settings: dict) -> float:
    """Denoiser passes per image (a backward pass = two forward passes) of ``method`` with a
    ``minidiff.settings`` row: T = steps, N = null-text's inner steps, FlowEdit's n_max and n_avg.

    Methods: "ddim_inversion", "cfg_sampling", "null_text", "negative_prompt", "direct_inversion",
    "p2p_edit", "freeinv", "flowedit", "inversion_edit" (flows), "impus_fit" (per morph: two images).
    Null-text's count is its budget: the early stop ends most inner loops sooner.
    """
    T = settings["steps"]
    cfg = 1 if settings["family"] == "flux" else 2  # Flux's guidance is an input: one pass a step
    # Direct Inversion's source-branch offsets come from the editor's own source step: no pass of their own
    if method in ("ddim_inversion", "negative_prompt", "freeinv", "direct_inversion"):
        return T
    if method == "cfg_sampling":
        return cfg * T
    if method == "null_text":  # DDIM inversion, then per step: ε_c once, N × (ε_∅ forward + backward), one step with ∅_t
        return T + T * (1 + 3 * settings["nti_inner_steps"] + 1)
    if method == "p2p_edit":  # source and target branch, each under CFG
        return 2 * cfg * T
    fe = settings.get("flowedit")
    if method == "flowedit":  # source and target velocities, each under CFG, n_avg draws, n_max steps
        return fe["n_max"] * fe["n_avg"] * 2 * cfg
    if method == "inversion_edit":  # invert to t_{T - n_max} at the source guidance, sample back at the target's
        return 2 * cfg * fe["n_max"]
    if method == "impus_fit":
        it = settings["impus"]
        # forward + backward; textual inversion per image, each LoRA iteration on both images
        training = 3 * 2 * (it["ti_iters"] + it["lora_iters"] + it["uncond_iters"])
        return training + 2 * 2 * T  # both images inverted, before and after the LoRAs
    raise ValueError(f"unknown method {method!r}")


def measure_denoiser(model, batch: int = 1, repeats: int = 3) -> dict:
    """Seconds per denoiser call of a loaded minidiff ``model`` on ``batch`` noise latents (the median
    of ``repeats`` after a warm-up), and the peak CUDA memory in GiB (None on the CPU)."""
    cuda = model.device.type == "cuda"
    x = model.noise(batch, torch.Generator().manual_seed(0))
    cond = model.embed([""] * batch)
    t = 0.5 if model.prediction == "velocity" else 500
    if cuda:
        torch.cuda.reset_peak_memory_stats(model.device)
    seconds = []
    with torch.no_grad():
        for _ in range(repeats + 1):
            if cuda:
                torch.cuda.synchronize(model.device)
            start = time.perf_counter()
            model(x, t, cond)
            if cuda:
                torch.cuda.synchronize(model.device)
            seconds.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(model.device) / 2**30 if cuda else None
    return {"seconds": sorted(seconds[1:])[len(seconds[1:]) // 2], "peak_gib": peak}
