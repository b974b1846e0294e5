"""The tiny text-to-image models of the shapes world, built from configs.

Both are the real diffusers pipelines in miniature, so they are saved with ``save_pretrained`` and
loaded with ``DiffusionPipeline.from_pretrained`` exactly like ``stable-diffusion-v1-5`` or SD3:

* **tiny-sd** — ``StableDiffusionPipeline``: ``AutoencoderKL`` (32×32×3 → 8×8×4), ``CLIPTextModel``
  with the world's word-level ``CLIPTokenizer``, ``UNet2DConditionModel`` with cross-attention,
  ε-prediction, SD 1.5's ``DDIMScheduler`` settings.
* **tiny-flow** — ``StableDiffusion3Pipeline``: the same VAE, two ``CLIPTextModelWithProjection``
  encoders (SD3's CLIP-L and CLIP-G; the optional T5 is left out, as SD3 allows),
  ``SD3Transformer2DModel`` (MMDiT), rectified flow with ``FlowMatchEulerDiscreteScheduler``.
* **tiny-flux** — ``FluxPipeline``: the same VAE,
  ``CLIPTextModel`` (pooled) + ``T5EncoderModel``, ``FluxTransformer2DModel`` with a guidance embedding
  over 2×2-packed latents, FLUX.1-dev's dynamically shifted ``FlowMatchEulerDiscreteScheduler``;
  guidance-distilled from tiny-flow (:mod:`toy.distill`).

Random initialisation from these configs is also how the tests exercise the full-scale code path.
"""
from __future__ import annotations

from pathlib import Path
from tempfile import mkdtemp

from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel

from .detailed.world import IMAGE_SIZE as DETAILED_SIZE
from .detailed.world import VOCAB as DETAILED_VOCAB
from .shapes import IMAGE_SIZE, VOCAB
from .tokenizer import build_t5_word_tokenizer, build_word_tokenizer

WEIGHTS = Path(__file__).parent / "weights"
TEXT_LEN = 16  # "a red circle on a blue background" is 9 tokens with BOS/EOS

VAE_CONFIG = dict(
    in_channels=3, out_channels=3, latent_channels=4, sample_size=IMAGE_SIZE,
    down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(16, 32, 64), layers_per_block=1, norm_num_groups=16,
)
UNET_CONFIG = dict(
    sample_size=IMAGE_SIZE // 4, in_channels=4, out_channels=4, layers_per_block=1,
    block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=64,
    attention_head_dim=8, norm_num_groups=16,
)
TRANSFORMER_CONFIG = dict(
    sample_size=IMAGE_SIZE // 4, patch_size=1, in_channels=4, out_channels=4, num_layers=4,
    attention_head_dim=32, num_attention_heads=2, joint_attention_dim=128, caption_projection_dim=64,
    pooled_projection_dim=64, pos_embed_max_size=IMAGE_SIZE // 4,
)
#: FLUX.1's transformer in miniature: double- then single-stream blocks, RoPE over (text, row, column)
#: axes, a guidance embedding; 2×2-packed 4-channel latents make 16 input channels.
FLUX_CONFIG = dict(
    patch_size=1, in_channels=16, num_layers=2, num_single_layers=2, attention_head_dim=16,
    num_attention_heads=4, joint_attention_dim=64, pooled_projection_dim=64, guidance_embeds=True,
    axes_dims_rope=(4, 6, 6),
)
T5_CONFIG = dict(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, feed_forward_proj="gated-gelu",
                 pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
#: FLUX.1-dev's scheduler: the shift μ grows with the number of image tokens.
FLUX_SCHEDULER = dict(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5,
                      max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096)
#: Stable Diffusion 1.5's scheduler settings (PAPERS.md): scaled_linear β 0.00085 → 0.012.
SD_SCHEDULER = dict(
    num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
    clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon",
)


#: The detailed world's VAE: factor 4 (two downsamplings), 64×64×3 → 16×16×4. Without the mid-block's
#: attention it is fully convolutional, so it trains on 32² crops at a quarter of the cost.
VAE_64_CONFIG = dict(VAE_CONFIG, sample_size=DETAILED_SIZE, mid_block_add_attention=False)
#: tiny-sd-64's UNet on 16×16 latents: cross-attention at 16×16 and 8×8 (and the 4×4 mid-block), each head
#: 32 wide (diffusers' ``attention_head_dim`` of UNet2DConditionModel is the number of heads).
UNET_64_CONFIG = dict(
    sample_size=DETAILED_SIZE // 4, in_channels=4, out_channels=4, layers_per_block=1,
    block_out_channels=(32, 64, 128), down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=128,
    attention_head_dim=(1, 2, 4), norm_num_groups=16,
)


#: tiny-flow-64's MMDiT on 16×16×4 latents: patch 2, i.e. 8×8 = 64 image tokens, as SD3 patchifies; heads
#: 32 wide. The two CLIP encoders are 128 wide, so their concatenated embeddings are 256 (joint_attention_dim).
TRANSFORMER_64_CONFIG = dict(
    sample_size=DETAILED_SIZE // 4, patch_size=2, in_channels=4, out_channels=4, num_layers=6,
    attention_head_dim=32, num_attention_heads=4, joint_attention_dim=256, caption_projection_dim=128,
    pooled_projection_dim=64, pos_embed_max_size=DETAILED_SIZE // 8,
)
#: tiny-flux-64's transformer on 16×16×4 latents packed 2×2: 64 tokens of 16 channels, as FLUX.1 packs;
#: heads 32 wide; its text encoders (CLIP pooled, T5) are 128 wide.
FLUX_64_CONFIG = dict(FLUX_CONFIG, num_layers=3, num_single_layers=3, attention_head_dim=32, num_attention_heads=4,
                      joint_attention_dim=128, pooled_projection_dim=128, axes_dims_rope=(8, 12, 12))
T5_64_CONFIG = dict(T5_CONFIG, d_model=128, d_kv=32, d_ff=256)
#: FLUX.1-dev's dynamic shift with its token range scaled to this world (4 096 → 64 tokens, 256 → 16): at
#: the world's native 64 tokens μ = 1.15 (a shift of e^1.15 ≈ 3.2), as FLUX.1-dev at its native 1024².
FLUX_64_SCHEDULER = dict(FLUX_SCHEDULER, base_image_seq_len=16, max_image_seq_len=64)
#: SD3-medium's shift. SD3 sets its shift for the resolution a model is trained and sampled at (3.0 at its
#: native 1024², after training at 256² with 1.0); tiny-flow-64 is trained and sampled only at its own
#: native 64², which stands in for SD3's 1024², so it takes SD3's native value. The paper's step settings
#: (FlowEdit's n_max = 33 of 50) then start at SD3's noise level, σ ≈ 0.85, instead of 0.66 at shift 1.
FLOW_64_SHIFT = 3.0


def text_config(projection: bool = False, vocab: tuple[str, ...] = VOCAB, hidden: int = 64) -> CLIPTextConfig:
    extra = dict(projection_dim=32) if projection else {}
    return CLIPTextConfig(
        vocab_size=len(vocab) + 2, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=TEXT_LEN, bos_token_id=0, eos_token_id=1, pad_token_id=1, **extra,
    )


def build_vae() -> AutoencoderKL:
    return AutoencoderKL(**VAE_CONFIG)


def build_tiny_sd(vae: AutoencoderKL | None = None, tokenizer_dir: str | Path | None = None) -> StableDiffusionPipeline:
    """A randomly initialised tiny-sd pipeline (the given VAE, or a new one); the tokenizer files are
    written to ``tokenizer_dir`` (a new temporary folder by default)."""
    return StableDiffusionPipeline(
        vae=vae or build_vae(), text_encoder=CLIPTextModel(text_config()),
        tokenizer=build_word_tokenizer(list(VOCAB), tokenizer_dir or mkdtemp(), TEXT_LEN),
        unet=UNet2DConditionModel(**UNET_CONFIG), scheduler=DDIMScheduler(**SD_SCHEDULER),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def build_vae_64() -> AutoencoderKL:
    return AutoencoderKL(**VAE_64_CONFIG)


def build_tiny_sd_64(vae: AutoencoderKL | None = None, tokenizer_dir: str | Path | None = None) -> StableDiffusionPipeline:
    """A randomly initialised tiny-sd-64 pipeline for the detailed world (SD 1.5's layout on 16×16 latents)."""
    return StableDiffusionPipeline(
        vae=vae or build_vae_64(), text_encoder=CLIPTextModel(text_config(vocab=DETAILED_VOCAB, hidden=128)),
        tokenizer=build_word_tokenizer(list(DETAILED_VOCAB), tokenizer_dir or mkdtemp(), TEXT_LEN),
        unet=UNet2DConditionModel(**UNET_64_CONFIG), scheduler=DDIMScheduler(**SD_SCHEDULER),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def build_tiny_flow(vae: AutoencoderKL | None = None, tokenizer_dir: str | Path | None = None) -> StableDiffusion3Pipeline:
    """A randomly initialised tiny-flow pipeline (SD3 architecture, no T5)."""
    tokenizer = build_word_tokenizer(list(VOCAB), tokenizer_dir or mkdtemp(), TEXT_LEN)
    return StableDiffusion3Pipeline(
        transformer=SD3Transformer2DModel(**TRANSFORMER_CONFIG),
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0),
        vae=vae or build_vae(), text_encoder=CLIPTextModelWithProjection(text_config(True)), tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(text_config(True)), tokenizer_2=tokenizer,
        text_encoder_3=None, tokenizer_3=None,
    )


def build_tiny_flow_64(vae: AutoencoderKL | None = None, tokenizer_dir: str | Path | None = None) -> StableDiffusion3Pipeline:
    """A randomly initialised tiny-flow-64 pipeline for the detailed world (SD3's layout on 16×16 latents,
    no T5, scheduler shift :data:`FLOW_64_SHIFT`)."""
    tokenizer = build_word_tokenizer(list(DETAILED_VOCAB), tokenizer_dir or mkdtemp(), TEXT_LEN)
    return StableDiffusion3Pipeline(
        transformer=SD3Transformer2DModel(**TRANSFORMER_64_CONFIG),
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=FLOW_64_SHIFT),
        vae=vae or build_vae_64(), tokenizer=tokenizer, tokenizer_2=tokenizer,
        text_encoder=CLIPTextModelWithProjection(text_config(True, DETAILED_VOCAB, 128)),
        text_encoder_2=CLIPTextModelWithProjection(text_config(True, DETAILED_VOCAB, 128)),
        text_encoder_3=None, tokenizer_3=None,
    )


def build_tiny_flux(vae: AutoencoderKL | None = None, tokenizer_dir: str | Path | None = None,
                    guidance_embeds: bool = True) -> FluxPipeline:
    """A randomly initialised tiny-flux pipeline (FLUX.1-dev's architecture): ``CLIPTextModel`` (pooled)
    and ``T5EncoderModel`` with word-level tokenizers, ``FluxTransformer2DModel`` with a guidance
    embedding (without one, ``guidance_embeds=False``: FLUX.1-schnell's kind)."""
    folder = Path(tokenizer_dir or mkdtemp())
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER), vae=vae or build_vae(),
        text_encoder=CLIPTextModel(text_config()), tokenizer=build_word_tokenizer(list(VOCAB), folder / "clip", TEXT_LEN),
        text_encoder_2=T5EncoderModel(T5Config(vocab_size=len(VOCAB) + 3, **T5_CONFIG)),
        tokenizer_2=build_t5_word_tokenizer(list(VOCAB), folder / "t5", TEXT_LEN),
        transformer=FluxTransformer2DModel(**dict(FLUX_CONFIG, guidance_embeds=guidance_embeds)),
    )


def build_tiny_flux_64(vae: AutoencoderKL | None = None, tokenizer_dir: str | Path | None = None) -> FluxPipeline:
    """A randomly initialised tiny-flux-64 pipeline for the detailed world (FLUX.1-dev's layout on 16×16
    latents, its dynamic shift scaled to 64 tokens: :data:`FLUX_64_SCHEDULER`)."""
    folder = Path(tokenizer_dir or mkdtemp())
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**FLUX_64_SCHEDULER), vae=vae or build_vae_64(),
        text_encoder=CLIPTextModel(text_config(vocab=DETAILED_VOCAB, hidden=128)),
        tokenizer=build_word_tokenizer(list(DETAILED_VOCAB), folder / "clip", TEXT_LEN),
        text_encoder_2=T5EncoderModel(T5Config(vocab_size=len(DETAILED_VOCAB) + 3, **T5_64_CONFIG)),
        tokenizer_2=build_t5_word_tokenizer(list(DETAILED_VOCAB), folder / "t5", TEXT_LEN),
        transformer=FluxTransformer2DModel(**FLUX_64_CONFIG),
    )


def shipped_folder(name: str) -> str:
    """The folder of the shipped tiny model ``name`` ("tiny-sd", "tiny-flow", "tiny-flux", "tiny-sd-noisy",
    "tiny-sd-64", "tiny-flow-64", "tiny-flux-64").

    Registered as a ``minidiff.models`` entry point, so ``minidiff.load_pipeline("tiny-sd")`` finds it.
    """
    path = WEIGHTS / name
    if not (path / "model_index.json").exists():
        raise FileNotFoundError(f"{name} weights are missing at {path}; train them: python -m toy.train {name}")
    return str(path)
