"""Tiny, randomly initialised pipelines with the *full-scale* architectures of SD 1.5, SD3 and FLUX.1.

The shipped tiny models (:mod:`toy.tiny_models`) are shaped for training on a laptop: a 3-block VAE
(factor 4), a 2-level UNet, SD3 without T5. The builders here keep instead exactly the component
classes and block layout of each real model and scale only the sizes down (channels, layers, heads,
context lengths), so that a test exercises the code path a full-scale checkpoint takes — SD 1.5's
4-level UNet with its attention-free outer blocks and a factor-8 VAE, SD3's three text encoders with
T5 and a patch-2 MMDiT over 16-channel latents — in well under a second per step on a CPU. The
weights are random: these models are for checking code (shapes, adapters, closed-form properties of
the methods), not images.

Tokenizers are built offline over a closed vocabulary, ``toy.shapes.VOCAB`` plus "hexagon". In the
SD 1.5 model "hexagon" is a word of two BPE tokens ("hex" + "agon</w>"), as words often are in CLIP's
real vocabulary, so that Prompt-to-Prompt's word ↔ token alignment is tested with a multi-token word.
"""
from __future__ import annotations

import json
from pathlib import Path
from tempfile import mkdtemp

from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer, T5Config, T5EncoderModel

from .shapes import VOCAB
from .tiny_models import SD_SCHEDULER, build_tiny_flux
from .tokenizer import BOS, EOS, build_t5_word_tokenizer, build_word_tokenizer, learn_unit_merges

IMAGE_SIZE = 64  # a factor-8 VAE gives 8×8 latents, as SD's 512² images give 64×64
WORDS = tuple(sorted(set(VOCAB) | {"hexagon"}))
#: the words that the SD 1.5-arch tokenizer splits into several BPE tokens
SPLIT_WORDS = {"hexagon": ("hex", "agon")}
CLIP_LENGTH = 16  # CLIP's context length (77 in the real models)
T5_LENGTH = 256  # SD3's max_sequence_length for T5 (the pipeline's default)

#: SD 1.5's VAE layout (4 DownEncoderBlock2D, 2 layers each, factor 8, 4 latent channels) with
#: channels (128, 256, 512, 512) scaled to (32, 32, 64, 64).
SD15_VAE_CONFIG = dict(
    in_channels=3, out_channels=3, latent_channels=4, sample_size=IMAGE_SIZE,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(32, 32, 64, 64), layers_per_block=2, norm_num_groups=32, scaling_factor=0.18215,
)
#: SD 1.5's UNet layout with channels (320, 640, 1280, 1280) scaled to (32, 64, 64, 64) and
#: cross_attention_dim 768 → 32 (the CLIP hidden size); attention_head_dim=8 as in SD 1.5's config
#: (where diffusers reads it as the number of heads).
SD15_UNET_CONFIG = dict(
    sample_size=IMAGE_SIZE // 8, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(32, 64, 64, 64),
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32,
)
#: SD3's VAE: the same 4-block layout with 16 latent channels, SD3's scaling and shift factors and
#: no quant convs.
SD3_VAE_CONFIG = SD15_VAE_CONFIG | dict(latent_channels=16, scaling_factor=1.5305, shift_factor=0.0609,
                                        use_quant_conv=False, use_post_quant_conv=False)
#: SD3-medium's CLIP-L (hidden 768, projection 768) and CLIP-G (hidden 1280, projection 1280), scaled.
CLIP_L = dict(hidden_size=32, intermediate_size=64, projection_dim=32, hidden_act="quick_gelu")
CLIP_G = dict(hidden_size=64, intermediate_size=128, projection_dim=64, hidden_act="gelu")
#: T5-v1.1-XXL (d_model 4096, 24 layers, 64 heads, gated-GELU), scaled: d_model 128 ≥ 32 + 64, the
#: two CLIP hidden sizes that SD3 zero-pads to T5's width and concatenates with T5's sequence.
SD3_T5_CONFIG = dict(d_model=128, d_kv=16, d_ff=256, num_layers=2, num_heads=4, feed_forward_proj="gated-gelu",
                     pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
#: SD3-medium's MMDiT (patch 2, 16 channels, 24 layers × 24 heads of 64, joint_attention_dim 4096 = T5's
#: d_model, pooled_projection_dim 2048 = 768 + 1280, caption_projection_dim 1536 = 24·64), scaled.
SD3_TRANSFORMER_CONFIG = dict(
    sample_size=IMAGE_SIZE // 8, patch_size=2, in_channels=16, out_channels=16, num_layers=2,
    attention_head_dim=16, num_attention_heads=4, joint_attention_dim=SD3_T5_CONFIG["d_model"],
    caption_projection_dim=4 * 16, pooled_projection_dim=CLIP_L["projection_dim"] + CLIP_G["projection_dim"],
    pos_embed_max_size=3 * IMAGE_SIZE // 8 // 2,  # SD3: 192 for a 64-patch grid
)
#: SD3's scheduler: rectified flow with the time shift 3.0.
SD3_SCHEDULER = dict(num_train_timesteps=1000, shift=3.0)


def build_bpe_tokenizer(words, folder: str | Path, max_length: int = CLIP_LENGTH,
                        split: dict[str, tuple[str, ...]] = SPLIT_WORDS) -> CLIPTokenizer:
    """A CLIP BPE tokenizer over ``words`` in which every word is one token except those of ``split``,
    which are the given pieces (``"hexagon"`` → ``"hex"`` + ``"agon</w>"``), built offline.

    Mirrors how CLIP's real BPE vocabulary cuts rarer words into several tokens. The merges are
    learned on the whole words and on the pieces as separate units, so no merge meant for a piece
    breaks a whole word (a piece merge ranked before the vocabulary's, such as ``a g`` for "agon",
    would otherwise leave "magenta" without a token). The result is checked word by word.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    whole = sorted(set(words) - set(split))
    units = [list(w[:-1]) + [w[-1] + "</w>"] for w in whole]
    pieces = []
    for word, parts in split.items():
        if "".join(parts) != word:
            raise ValueError(f"the pieces {parts} do not spell {word!r}.")
        pieces += [f"{p}</w>" if i == len(parts) - 1 else p for i, p in enumerate(parts)]
        units += [list(p) for p in parts[:-1]] + [list(parts[-1][:-1]) + [parts[-1][-1] + "</w>"]]
    vocab = {BOS: 0, EOS: 1} | {f"{w}</w>": i + 2 for i, w in enumerate(whole)}
    vocab |= {p: len(vocab) + i for i, p in enumerate(dict.fromkeys(pieces))}
    merges = learn_unit_merges(units)
    (folder / "vocab.json").write_text(json.dumps(vocab, indent=0))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_length)
    for word in words:
        want = [vocab[p] for p in pieces_of(word, split)]
        got = tokenizer(word, add_special_tokens=False).input_ids
        if got != want:
            raise RuntimeError(f"the BPE merges tokenise {word!r} as {tokenizer.convert_ids_to_tokens(got)}, "
                               f"not {tokenizer.convert_ids_to_tokens(want)}.")
    tokenizer.save_pretrained(folder)
    return tokenizer


def pieces_of(word: str, split: dict[str, tuple[str, ...]] = SPLIT_WORDS) -> list[str]:
    """The BPE tokens of ``word`` in :func:`build_bpe_tokenizer`'s vocabulary."""
    parts = split.get(word, (word,))
    return [f"{p}</w>" if i == len(parts) - 1 else p for i, p in enumerate(parts)]


def _clip_config(vocab_size: int, **sizes) -> CLIPTextConfig:
    """A 2-layer, 4-head CLIP text transformer with a 16-token context (the real ones: 12 or 32 layers, 77 tokens)."""
    base = dict(hidden_size=32, intermediate_size=64, hidden_act="quick_gelu")
    return CLIPTextConfig(vocab_size=vocab_size, num_hidden_layers=2, num_attention_heads=4,
                          max_position_embeddings=CLIP_LENGTH, bos_token_id=0, eos_token_id=1, pad_token_id=1,
                          **(base | sizes))


def build_sd15_arch(tokenizer_dir: str | Path | None = None) -> StableDiffusionPipeline:
    """A random ``StableDiffusionPipeline`` with Stable Diffusion 1.5's architecture, scaled down.

    Mirrors ``stable-diffusion-v1-5/stable-diffusion-v1-5``: a ``UNet2DConditionModel`` with SD 1.5's
    block layout (three ``CrossAttnDownBlock2D`` then a ``DownBlock2D``; ``UpBlock2D`` then three
    ``CrossAttnUpBlock2D``; a cross-attention mid block; ``layers_per_block=2``; 4 resolution
    levels), an ``AutoencoderKL`` with 4 down blocks (factor 8, 4 latent channels, scaling 0.18215),
    a ``CLIPTextModel`` (ViT-L/14's text tower) and SD's ``DDIMScheduler`` settings, ε-prediction.
    Scaled down: UNet channels 320–1280 → 32–64 and cross-attention width 768 → 32; VAE channels
    128–512 → 32–64; CLIP 12 layers × 768 → 2 × 32 with a 16-token context; 512² images → 64²,
    so latents are 8×8 (SD: 64×64). The tokenizer (written to ``tokenizer_dir``, a new temporary
    folder by default) is a BPE one over the shapes vocabulary plus "hexagon", which is two tokens.
    """
    tokenizer = build_bpe_tokenizer(WORDS, tokenizer_dir or mkdtemp())
    return StableDiffusionPipeline(
        vae=AutoencoderKL(**SD15_VAE_CONFIG), text_encoder=CLIPTextModel(_clip_config(len(tokenizer.get_vocab()))),
        tokenizer=tokenizer, unet=UNet2DConditionModel(**SD15_UNET_CONFIG), scheduler=DDIMScheduler(**SD_SCHEDULER),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def build_sd3_arch(tokenizer_dir: str | Path | None = None) -> StableDiffusion3Pipeline:
    """A random ``StableDiffusion3Pipeline`` with SD3-medium's architecture, all three text encoders included.

    Mirrors ``stabilityai/stable-diffusion-3-medium-diffusers``: two ``CLIPTextModelWithProjection``
    (CLIP-L and CLIP-G, each with its CLIP tokenizer), a ``T5EncoderModel`` (T5-v1.1-XXL) with a T5
    tokenizer, an ``SD3Transformer2DModel`` (MMDiT, patch size 2, 16 latent channels) whose
    ``joint_attention_dim`` is T5's width and at least the two CLIP widths together (SD3 zero-pads the
    concatenated CLIP states to T5's width), whose ``pooled_projection_dim`` is the sum of the two CLIP
    projections, an ``AutoencoderKL`` with 16 latent channels, 4 down blocks (factor 8), SD3's scaling
    and shift factors and no quant convs, and ``FlowMatchEulerDiscreteScheduler`` with shift 3.0.
    Scaled down: CLIP-L 768 → 32 and CLIP-G 1280 → 64 wide, 2 layers, 16-token context; T5 4096 → 128
    wide, 2 layers, its 256-token sequence kept; the MMDiT 24 layers × 24 heads → 2 × 4 heads of 16;
    VAE channels 128–512 → 32–64; 1024² images → 64², 8×8 latents (SD3: 128×128). Tokenizers are
    written under ``tokenizer_dir`` (a new temporary folder by default); every word, "hexagon" too, is
    one token, for CLIP and for T5.
    """
    folder = Path(tokenizer_dir or mkdtemp())
    clip_tokenizer = build_word_tokenizer(list(WORDS), folder / "clip", CLIP_LENGTH)
    vocab = len(clip_tokenizer.get_vocab())
    return StableDiffusion3Pipeline(
        transformer=SD3Transformer2DModel(**SD3_TRANSFORMER_CONFIG),
        scheduler=FlowMatchEulerDiscreteScheduler(**SD3_SCHEDULER), vae=AutoencoderKL(**SD3_VAE_CONFIG),
        text_encoder=CLIPTextModelWithProjection(_clip_config(vocab, **CLIP_L)), tokenizer=clip_tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(_clip_config(vocab, **CLIP_G)),
        tokenizer_2=build_word_tokenizer(list(WORDS), folder / "clip_2", CLIP_LENGTH),
        text_encoder_3=T5EncoderModel(T5Config(vocab_size=len(WORDS) + 3, **SD3_T5_CONFIG)),
        tokenizer_3=build_t5_word_tokenizer(list(WORDS), folder / "t5", T5_LENGTH),
    )


def build_flux_arch(tokenizer_dir: str | Path | None = None) -> FluxPipeline:
    """A random ``FluxPipeline`` with FLUX.1-dev's architecture: :func:`toy.tiny_models.build_tiny_flux` as is.

    Mirrors ``black-forest-labs/FLUX.1-dev``: ``CLIPTextModel`` (pooled) + ``T5EncoderModel``,
    ``FluxTransformer2DModel`` with double- and single-stream blocks, RoPE and a guidance embedding
    over 2×2-packed latents, and the resolution-shifted ``FlowMatchEulerDiscreteScheduler``. Scaled
    down: 19 + 38 blocks → 2 + 2, 24 heads of 128 → 4 of 16, T5 and CLIP to 64 wide with 16-token
    contexts, and its VAE (the shipped tiny one: 3 blocks, factor 4, 4 latent channels, instead of
    FLUX's factor 8 and 16 channels) on 32² images. Its vocabulary is ``toy.shapes.VOCAB``.
    """
    return build_tiny_flux(tokenizer_dir=tokenizer_dir)
