"""Thin denoiser adapters for diffusers text-to-image pipelines, and one loading function.

``load_pipeline("stable-diffusion-v1-5/stable-diffusion-v1-5")`` and ``load_pipeline(path_to_tiny_sd)``
run the same code: diffusers' ``DiffusionPipeline.from_pretrained`` reads ``model_index.json`` and
builds the pipeline class it names; the matching adapter wraps it as a minidiff denoiser:

* :class:`StableDiffusionDenoiser` (``UNet2DConditionModel``, ε-prediction): ``cond`` is the text
  encoder's hidden states (B, L, D).
* :class:`SD3Denoiser` (``SD3Transformer2DModel``, velocity): ``cond`` is the pair
  (prompt embeddings (B, L, D), pooled embeddings (B, P)) from the pipeline's own ``encode_prompt``.

Both also give ``embed(prompts)``, ``null`` (the embedding of the empty prompt), ``encode(images)``
(pixels in [−1, 1] → scaled VAE latents) and ``decode(latents)``.
"""
from __future__ import annotations

import numpy as np
import torch
from diffusers import DiffusionPipeline

from ._checks import check_known_words, check_latents


def _device(device: str | torch.device | None) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def load_pipeline(model: str, device: str | torch.device | None = None, dtype: torch.dtype = torch.float32):
    """Load a pipeline by hub id or local folder and wrap it in its minidiff adapter.

    Args:
        model: e.g. ``"stable-diffusion-v1-5/stable-diffusion-v1-5"``,
            ``"stabilityai/stable-diffusion-3-medium-diffusers"`` or a local ``save_pretrained`` folder.
        device: defaults to CUDA when available, else CPU.
        dtype: torch.float32, or half precision on a GPU.
    """
    device = _device(device)
    if device.type == "cpu" and dtype in (torch.float16, torch.bfloat16):
        raise ValueError(f"{dtype} on the CPU is not supported here (slow, and inaccurate for inversion); use dtype=torch.float32.")
    index = DiffusionPipeline.load_config(model)
    # components stored as [null, null] (SD3 without T5) must be passed explicitly as None
    absent = {k: None for k, v in index.items() if not k.startswith("_") and v == [None, None]}
    pipe = DiffusionPipeline.from_pretrained(model, torch_dtype=dtype, **absent).to(device)
    pipe.set_progress_bar_config(disable=True)
    if hasattr(pipe, "unet"):
        return StableDiffusionDenoiser(pipe)
    if type(pipe.transformer).__name__ == "SD3Transformer2DModel":
        return SD3Denoiser(pipe)
    raise NotImplementedError(f"no minidiff adapter for {type(pipe).__name__} yet")


class _ImageModel:
    """Shared text and image handling of the adapters."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.vae = pipe.vae
        self.device, self.dtype = pipe.device, pipe.vae.dtype
        self.scheduler_config = dict(pipe.scheduler.config)
        self.image_size = self.sample_size * pipe.vae_scale_factor
        self._null = None

    def check_prompts(self, prompts: str | list[str]) -> list[str]:
        """Raise a ValueError for a word the tokenizer can only map to its unknown token."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        check_known_words(self.pipe.tokenizer, prompts)
        return prompts

    @property
    def null(self):
        """The embedding of the empty prompt ∅ (batch 1)."""
        if self._null is None:
            self._null = self.embed([""])
        return self._null

    def to_tensor(self, images) -> torch.Tensor:
        """PIL image(s) or a (B, 3, H, W) tensor in [−1, 1] → (B, 3, H, W) float tensor, checked."""
        size = self.image_size
        if not isinstance(images, torch.Tensor):
            images = [images] if not isinstance(images, (list, tuple)) else images
            arrays = []
            for im in images:
                if getattr(im, "mode", "RGB") != "RGB":
                    raise ValueError(f"image mode is {im.mode!r}; this model needs RGB: use image.convert('RGB').")
                if getattr(im, "size", (size, size)) != (size, size):
                    raise ValueError(f"image is {im.size[0]}×{im.size[1]}; this model needs {size}×{size}: use image.resize(({size}, {size})).")
                arrays.append(np.asarray(im, dtype=np.float32) / 127.5 - 1)
            images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        if images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (size, size):
            raise ValueError(f"images must have shape (B, 3, {size}, {size}), got {tuple(images.shape)}.")
        if images.min() < -1.001 or images.max() > 1.001:
            raise ValueError("image values must lie in [-1, 1] (pixels / 127.5 - 1).")
        return images.to(self.device, self.dtype)

    @torch.no_grad()
    def encode(self, images) -> torch.Tensor:
        """Images → latents z0 = (mean of q(z|x) − shift) · scaling_factor, shape (B, C, h, w)."""
        x = self.to_tensor(images)
        z = self.vae.encode(x).latent_dist.mean
        return (z - (self.vae.config.shift_factor or 0.0)) * self.vae.config.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (B, C, h, w) → images (B, 3, H, W) in [−1, 1]."""
        check_latents(latents, "latents")
        z = latents / self.vae.config.scaling_factor + (self.vae.config.shift_factor or 0.0)
        return self.vae.decode(z.to(self.dtype)).sample.clamp(-1, 1)

    def noise(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Standard normal latents of this model's shape, (batch, C, h, w), on the model's device."""
        shape = (batch, self.latent_channels, self.sample_size, self.sample_size)
        return torch.randn(shape, generator=generator).to(self.device, self.dtype)


class StableDiffusionDenoiser(_ImageModel):
    """ε-prediction denoiser over a ``StableDiffusionPipeline`` (SD 1.x / 2.x, tiny-sd)."""

    prediction = "epsilon"

    def __init__(self, pipe):
        self.unet = pipe.unet
        self.sample_size = pipe.unet.config.sample_size
        self.latent_channels = pipe.unet.config.in_channels
        super().__init__(pipe)

    def embed(self, prompts: str | list[str]) -> torch.Tensor:
        """Text-encoder hidden states, shape (B, L, D), via the pipeline's ``encode_prompt``."""
        prompts = self.check_prompts(prompts)
        with torch.no_grad():
            return self.pipe.encode_prompt(prompts, self.device, 1, False)[0]

    def __call__(self, x: torch.Tensor, t, cond: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(x.shape[0])
        return self.unet(x, t, encoder_hidden_states=cond.expand(x.shape[0], -1, -1)).sample


class SD3Denoiser(_ImageModel):
    """Velocity denoiser over a ``StableDiffusion3Pipeline`` (SD3, tiny-flow); t = σ ∈ [0, 1]."""

    prediction = "velocity"

    def __init__(self, pipe, max_sequence_length: int | None = None):
        self.transformer = pipe.transformer
        # T5's context length (SD3: 256); without T5 the pipeline pads with this many zero tokens,
        # so a model trained without T5 keeps its CLIP context length
        self.max_sequence_length = max_sequence_length or (256 if pipe.text_encoder_3 is not None else pipe.tokenizer.model_max_length)
        self.sample_size = pipe.transformer.config.sample_size
        self.latent_channels = pipe.transformer.config.in_channels
        super().__init__(pipe)

    def embed(self, prompts: str | list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(prompt embeddings (B, L, D), pooled embeddings (B, P)) via the pipeline's ``encode_prompt``."""
        prompts = self.check_prompts(prompts)
        with torch.no_grad():
            embeds, _, pooled, _ = self.pipe.encode_prompt(prompts, None, None, device=self.device,
                                                           do_classifier_free_guidance=False,
                                                           max_sequence_length=self.max_sequence_length)
        return embeds, pooled

    def __call__(self, x: torch.Tensor, t, cond: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        embeds, pooled = cond
        b = x.shape[0]
        # diffusers' SD3 transformer takes the scheduler's timestep, σ · num_train_timesteps
        timestep = (torch.as_tensor(t, device=x.device, dtype=x.dtype) * self.scheduler_config["num_train_timesteps"]).reshape(-1).expand(b)
        return self.transformer(hidden_states=x, timestep=timestep, encoder_hidden_states=embeds.expand(b, -1, -1),
                                pooled_projections=pooled.expand(b, -1)).sample
