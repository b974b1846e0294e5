"""Thin denoiser adapters for diffusers text-to-image pipelines, and one loading function.

``load_pipeline("stable-diffusion-v1-5/stable-diffusion-v1-5")`` and ``load_pipeline(path_to_tiny_sd)``
run the same code: diffusers' ``DiffusionPipeline.from_pretrained`` reads ``model_index.json`` and
builds the pipeline class it names; the matching adapter wraps it as a minidiff denoiser:

* :class:`StableDiffusionDenoiser` (``UNet2DConditionModel``, ε-prediction): ``cond`` is the text
  encoder's hidden states (B, L, D).
* :class:`SD3Denoiser` (``SD3Transformer2DModel``, velocity): ``cond`` is the pair
  (prompt embeddings (B, L, D), pooled embeddings (B, P)) from the pipeline's own ``encode_prompt``.
* :class:`FluxDenoiser` (``FluxTransformer2DModel``, velocity, guidance as an input): the same pair
  (T5 embeddings, pooled CLIP embeddings); latents are packed 2×2 inside the adapter.

Both also give ``embed(prompts)``, ``null`` (the embedding of the empty prompt), ``encode(images)``
(pixels in [−1, 1] → scaled VAE latents) and ``decode(latents)``.
"""
from __future__ import annotations

import difflib
import socket
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from diffusers import DiffusionPipeline
from huggingface_hub import constants as hf_constants
from huggingface_hub import try_to_load_from_cache

from ._checks import check_known_words, check_latents, check_prompt_list
from .settings import FULL_SCALE


def _device(device: str | torch.device | None) -> torch.device:
    """CUDA when available and ``device`` is None; a clear error for a device this PyTorch cannot use."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r}, but this PyTorch sees no CUDA GPU (a CPU build, or no GPU visible); "
                         "use device='cpu', or leave device unset to pick CUDA when there is one.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device='mps', but MPS is not available here; use device='cpu'.")
    return device


def registered_models() -> dict[str, EntryPoint]:
    """Model names that packages register under the ``minidiff.models`` entry-point group (the
    course's ``toy`` registers "tiny-sd" and "tiny-flow"); each maps a name to a local folder."""
    return {ep.name: ep for ep in entry_points(group="minidiff.models")}


def locate(model: str) -> str:
    """The folder or hub id that ``from_pretrained`` should read for ``model``, checked.

    * a registered name ("tiny-sd") → its shipped folder;
    * a local folder → itself, if it holds a ``save_pretrained`` pipeline (``model_index.json``);
    * anything that looks like a path (``./x``, ``/x``, ``~/x``, ``a/b/c``) but is no folder → FileNotFoundError;
    * a hub id ("org/name") → itself when it is in the local Hugging Face cache or the hub can be
      reached; otherwise an OSError within seconds that says how to get it, instead of minutes of retries.
    """
    if not isinstance(model, (str, Path)):
        raise TypeError(f"model must be a name, a folder or a hub id (a string), got {type(model).__name__}.")
    model = str(model)
    names = registered_models()
    if model in names:
        return str(names[model].load()(model))
    if model in FULL_SCALE:  # the lessons' family names ("sd15") stand for their hub ids
        model = FULL_SCALE[model]["model"]
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").exists():
            raise FileNotFoundError(f"{path} has no model_index.json: it is not a diffusers pipeline folder. Pass the folder "
                                    "that save_pretrained wrote (it holds model_index.json and one folder per component).")
        return str(path)
    close = difflib.get_close_matches(model, [*names, *FULL_SCALE], n=1, cutoff=0.75)
    if close:
        raise ValueError(f"unknown model {model!r}: did you mean {close[0]!r}? Known names: "
                         f"{', '.join(sorted([*names, *FULL_SCALE]))}; or pass a local folder or a hub id.")
    if "/" not in model and not path.exists():
        raise ValueError(f"unknown model {model!r}. Known names: {', '.join(sorted([*names, *FULL_SCALE]))}; or pass a "
                         "local save_pretrained folder, or a hub id such as 'stable-diffusion-v1-5/stable-diffusion-v1-5'.")
    if model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model or path.exists():
        raise FileNotFoundError(f"no pipeline folder at {model!r}. Known model names: {', '.join(sorted(names)) or 'none'}; "
                                "or pass a hub id such as 'stable-diffusion-v1-5/stable-diffusion-v1-5'.")
    if try_to_load_from_cache(model, "model_index.json") is not None:
        return model
    if hf_constants.HF_HUB_OFFLINE or not _hub_reachable():
        raise OSError(
            f"{model!r} is not a known model name ({', '.join(sorted(names))}), not a local folder, and not in the "
            f"Hugging Face cache ({hf_constants.HF_HUB_CACHE}); this machine cannot reach the hub"
            f"{' (HF_HUB_OFFLINE is set)' if hf_constants.HF_HUB_OFFLINE else ''}. Either download it on a connected machine "
            f"(huggingface-cli download {model}) and copy the cache folder here, or pass the local folder that "
            "save_pretrained wrote."
        )
    return model


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub's endpoint opens within ``timeout`` seconds."""
    url = urlparse(hf_constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=timeout).close()
        return True
    except OSError:
        return False


def sampling_dtype(dtype: torch.dtype | str, device: torch.device, flux: bool, tiny: bool) -> torch.dtype:
    """``dtype`` checked, with "auto" resolved: float32 on the CPU and for the shipped tiny models,
    bfloat16 for Flux and float16 otherwise on a GPU. Flux in float16 is refused: it overflows."""
    if dtype == "auto":
        dtype = torch.float32 if device.type == "cpu" or tiny else (torch.bfloat16 if flux else torch.float16)
    if flux and dtype == torch.float16:
        raise ValueError("FLUX.1 in float16 overflows and gives NaN images; use dtype=torch.bfloat16 (or 'auto').")
    return dtype


DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _dtype(dtype) -> torch.dtype | str:
    """"auto", a torch dtype or its name ("float16") → "auto" or the torch dtype; a clear error otherwise."""
    if dtype == "auto" or dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in DTYPES:
        return DTYPES[dtype.removeprefix("torch.")]
    aliases = {"fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32", "bf16": "bfloat16"}
    hint = f" (did you mean {aliases[dtype]!r}?)" if isinstance(dtype, str) and dtype in aliases else ""
    raise ValueError(f"dtype must be 'auto', torch.float32, torch.float16 or torch.bfloat16 (or their names), "
                     f"got {dtype!r}{hint}.")


def load_pipeline(model: str, device: str | torch.device | None = None, dtype: torch.dtype | str = "auto",
                  offload: bool = False) -> StableDiffusionDenoiser | SD3Denoiser | FluxDenoiser:
    """Load a pipeline by name, local folder or hub id and wrap it in its minidiff adapter.

    Args:
        model: a registered name (``"tiny-sd"``, ``"tiny-flow"``), a local ``save_pretrained`` folder, or a
            hub id such as ``"stable-diffusion-v1-5/stable-diffusion-v1-5"``,
            ``"stabilityai/stable-diffusion-3-medium-diffusers"`` or ``"black-forest-labs/FLUX.1-dev"``
            (see :func:`locate`).
        device: defaults to CUDA when available, else CPU.
        dtype: ``"auto"`` (float32 on the CPU and for the shipped tiny models; on a GPU float16 for
            SD 1.5 and SD3 and bfloat16 for Flux, the papers' sampling precision), or a torch dtype.
            Lessons that optimise (null-text inversion, textual inversion, LoRA) need float32 and say so.
        offload: move each component to the GPU only while it runs (accelerate's model CPU offload),
            for a GPU too small to hold the whole pipeline; GPU only.
    """
    device = _device(device)
    dtype = _dtype(dtype)
    if device.type == "cpu" and dtype in (torch.float16, torch.bfloat16):
        raise ValueError(f"{dtype} on the CPU is not supported here (slow, and inaccurate for inversion); use dtype=torch.float32.")
    source = locate(model)
    index = DiffusionPipeline.load_config(source)
    dtype = sampling_dtype(dtype, device, flux=index.get("_class_name") == "FluxPipeline", tiny=model in registered_models())
    if offload and device.type != "cuda":
        raise ValueError("offload=True moves components to a CUDA GPU while they run; on the CPU leave it False.")
    # components stored as [null, null] (SD3 without T5) must be passed explicitly as None
    absent = {k: None for k, v in index.items() if not k.startswith("_") and v == [None, None]}
    pipe = DiffusionPipeline.from_pretrained(source, torch_dtype=dtype, **absent)
    if offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return wrap(pipe)


def wrap(pipe) -> StableDiffusionDenoiser | SD3Denoiser | FluxDenoiser:
    """An already-loaded diffusers pipeline as a minidiff denoiser, on the pipeline's device and dtype.

    ``StableDiffusionPipeline`` (a UNet: SD 1.x / 2.x, ε or v) → :class:`StableDiffusionDenoiser`,
    ``StableDiffusion3Pipeline`` → :class:`SD3Denoiser`, ``FluxPipeline`` → :class:`FluxDenoiser`.
    The pipeline is shared, not copied: P2P's attention processors are installed on its UNet for the
    length of a call and removed after it.
    """
    if not hasattr(pipe, "vae") or not hasattr(pipe, "scheduler"):
        raise TypeError(f"wrap takes a loaded diffusers pipeline (StableDiffusionPipeline, StableDiffusion3Pipeline or "
                        f"FluxPipeline), got a {type(pipe).__name__}; to load one by name use minidiff.load_pipeline.")
    if getattr(pipe, "unet", None) is not None:
        return StableDiffusionDenoiser(pipe)
    name = type(getattr(pipe, "transformer", None)).__name__
    if name == "SD3Transformer2DModel":
        return SD3Denoiser(pipe)
    if name == "FluxTransformer2DModel":
        return FluxDenoiser(pipe)
    raise NotImplementedError(f"no minidiff adapter for a {type(pipe).__name__} (denoiser {name}); minidiff wraps "
                              "StableDiffusionPipeline, StableDiffusion3Pipeline and FluxPipeline.")


class _ImageModel:
    """Shared text and image handling of the adapters."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.vae = pipe.vae
        # under model CPU offload the pipeline sits on the CPU and runs on its execution device
        self.device, self.dtype = pipe._execution_device, pipe.vae.dtype
        self.scheduler_config = dict(pipe.scheduler.config)
        self.image_size = self.sample_size * pipe.vae_scale_factor
        self._null = None

    def check_prompts(self, prompts: str | list[str]) -> list[str]:
        """Raise a ValueError for a word the tokenizer can only map to its unknown token."""
        prompts = check_prompt_list(prompts)
        check_known_words(self.pipe.tokenizer, prompts)
        return prompts

    @property
    def null(self):
        """The embedding of the empty prompt ∅ (batch 1)."""
        if self._null is None:
            self._null = self.embed([""])
        return self._null

    def fit(self, images) -> list:
        """Image(s) of any size → PIL images of this model's size, by one stated policy: centre-crop to
        the largest square, then resize with Lanczos (how PIE-Bench's 512² images were made).

        Accepts a PIL image, a list of them, or uint8 numpy arrays (H, W, 3) / (B, H, W, 3).
        """
        from PIL import Image

        if isinstance(images, np.ndarray):
            images = list(images[None] if images.ndim == 3 else images)
        images = images if isinstance(images, (list, tuple)) else [images]
        out = []
        for im in images:
            if isinstance(im, np.ndarray):
                if im.dtype != np.uint8 or im.ndim != 3 or im.shape[-1] != 3:
                    raise ValueError(f"fit takes uint8 arrays of shape (H, W, 3), got {im.dtype} {im.shape}.")
                im = Image.fromarray(im)
            if not hasattr(im, "crop") or not hasattr(im, "size"):
                raise TypeError(f"fit takes PIL images or uint8 numpy arrays (H, W, 3), got a {type(im).__name__}.")
            w, h = im.size
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            im = im.convert("RGB").crop((left, top, left + side, top + side))
            out.append(im.resize((self.image_size, self.image_size), Image.LANCZOS))
        return out

    def to_tensor(self, images) -> torch.Tensor:
        """Image(s) → (B, 3, H, W) float tensor in [−1, 1], checked.

        Accepts a PIL image or a list of them, a uint8 numpy array (H, W, 3) or (B, H, W, 3), a uint8
        tensor (B, 3, H, W) in 0–255, or a float tensor (B, 3, H, W) already in [−1, 1].
        """
        size = self.image_size
        if isinstance(images, np.ndarray):
            images = _from_numpy(images, size)
        elif not isinstance(images, torch.Tensor):
            images = [images] if not isinstance(images, (list, tuple)) else images
            arrays = []
            for im in images:
                if isinstance(im, np.ndarray):
                    arrays.append(_from_numpy(im, size)[0].permute(1, 2, 0).numpy())
                    continue
                if not hasattr(im, "mode") or not hasattr(im, "size"):
                    raise TypeError(f"got a {type(im).__name__}; pass PIL images, a uint8 numpy array (H, W, 3) or a "
                                    f"float tensor (B, 3, {size}, {size}) in [-1, 1].")
                if im.mode != "RGB":
                    raise ValueError(f"image mode is {im.mode!r}; this model needs RGB: use image.convert('RGB').")
                if im.size != (size, size):
                    raise ValueError(f"image is {im.size[0]}×{im.size[1]}; this model needs {size}×{size}: use model.fit(image) "
                                     f"(centre crop, then resize) or image.resize(({size}, {size})).")
                arrays.append(np.asarray(im, dtype=np.float32) / 127.5 - 1)
            images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        if images.dtype == torch.uint8:  # pixels 0–255, as torchvision reads them
            images = images.float() / 127.5 - 1
        if images.dim() == 3:
            images = images[None]
        if not images.is_floating_point():
            raise TypeError(f"image tensors must be float in [-1, 1] or uint8 in 0–255, got {images.dtype}.")
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
        """Latents (B, C, h, w) → images (B, 3, H, W) in [−1, 1], float32 on the CPU: images are for
        looking at and scoring, next to renders made on the CPU (``encode`` moves them back)."""
        check_latents(latents, "latents")
        z = latents / self.vae.config.scaling_factor + (self.vae.config.shift_factor or 0.0)
        return self.vae.decode(z.to(self.device, self.dtype)).sample.clamp(-1, 1).float().cpu()

    def noise(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Standard normal latents of this model's shape, (batch, C, h, w), on the model's device."""
        shape = (batch, self.latent_channels, self.sample_size, self.sample_size)
        return torch.randn(shape, generator=generator).to(self.device, self.dtype)


class StableDiffusionDenoiser(_ImageModel):
    """ε-prediction denoiser over a ``StableDiffusionPipeline`` (SD 1.x / 2.x, tiny-sd).

    A v-prediction UNet (SD 2.x at 768², ``prediction_type="v_prediction"``) is converted to ε,

    .. math:: \hat\varepsilon = \sqrt{\bar\alpha_t}\,\hat v + \sqrt{1-\bar\alpha_t}\,x_t
       \quad\text{for}\quad v = \sqrt{\bar\alpha_t}\,\varepsilon - \sqrt{1-\bar\alpha_t}\,x_0,

    so every method (and IMPUS's fine-tuning, whose ε-loss is then ᾱ_t times the v-loss) sees an
    ε model; ``scheduler_config`` says ``"epsilon"`` accordingly and ``unet_prediction`` keeps the UNet's own.
    """

    prediction = "epsilon"

    def __init__(self, pipe):
        self.unet = pipe.unet
        self.sample_size = pipe.unet.config.sample_size
        self.latent_channels = pipe.unet.config.in_channels
        self.unet_prediction = pipe.scheduler.config.get("prediction_type", "epsilon")
        if self.unet_prediction not in ("epsilon", "v_prediction"):
            raise ValueError(f"the pipeline's scheduler has prediction_type={self.unet_prediction!r}; minidiff's "
                             "StableDiffusionDenoiser handles 'epsilon' and 'v_prediction' UNets.")
        super().__init__(pipe)
        self.scheduler_config["prediction_type"] = "epsilon"
        self._alphas_cumprod = pipe.scheduler.alphas_cumprod

    def embed(self, prompts: str | list[str]) -> torch.Tensor:
        """Text-encoder hidden states, shape (B, L, D), via the pipeline's ``encode_prompt``."""
        prompts = self.check_prompts(prompts)
        with torch.no_grad():
            return self.pipe.encode_prompt(prompts, self.device, 1, False)[0]

    def __call__(self, x: torch.Tensor, t, cond: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(x.shape[0])
        out = self.unet(x, t, encoder_hidden_states=cond.expand(x.shape[0], -1, -1)).sample
        if self.unet_prediction == "epsilon":
            return out
        ab = self._alphas_cumprod[t.round().long().cpu()].to(x.device, x.dtype).view(-1, *[1] * (x.dim() - 1))
        return ab.sqrt() * out + (1 - ab).sqrt() * x


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


def _from_numpy(array: np.ndarray, size: int) -> torch.Tensor:
    """A uint8 array (H, W, 3) or (B, H, W, 3) → (B, 3, H, W) float tensor in [−1, 1]."""
    if array.dtype != np.uint8:
        raise ValueError(f"numpy images must be uint8 (0–255), got {array.dtype}; for floats in [-1, 1] pass "
                         "torch.from_numpy(array).permute(0, 3, 1, 2) instead.")
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        hint = " (channels first? use array.transpose(1, 2, 0))" if array.ndim == 4 and array.shape[1] == 3 else ""
        raise ValueError(f"numpy images must have shape (H, W, 3) or (B, H, W, 3), got {array.shape}{hint}.")
    if array.shape[1:3] != (size, size):
        raise ValueError(f"image is {array.shape[2]}×{array.shape[1]}; this model needs {size}×{size}: use model.fit(array) "
                         "(centre crop, then resize).")
    return torch.from_numpy(array.astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2)


class FluxDenoiser(_ImageModel):
    """Velocity denoiser over a ``FluxPipeline`` (FLUX.1, tiny-flux); t = σ ∈ [0, 1].

    Methods see ordinary latents (B, C, h, w): the adapter packs them 2×2 into tokens (B, h/2·w/2, 4C)
    with their RoPE image ids for the transformer and unpacks the prediction, so FreeInv rotates the
    image latent rather than the token sequence. FLUX.1-dev is guidance-distilled: the guidance
    scale is an *input* (``embedded_guidance``), one forward pass per step, no unconditional branch.
    A transformer without a guidance embedding (``guidance_embeds=False``, FLUX.1-schnell's kind) gets
    no ``guidance`` input, and guidance ≠ 1 is then classifier-free guidance with ``null``, as
    FluxPipeline's ``true_cfg_scale``.
    ``cond`` is (T5 sequence embeddings (B, L, D), CLIP pooled embeddings (B, P)).
    """

    prediction = "velocity"

    def __init__(self, pipe, max_sequence_length: int | None = None):
        self.transformer = pipe.transformer
        self.embedded_guidance = bool(pipe.transformer.config.guidance_embeds)
        self.max_sequence_length = max_sequence_length or min(pipe.tokenizer_2.model_max_length, 512)
        self.latent_channels = pipe.vae.config.latent_channels
        self.sample_size = pipe.vae.config.sample_size // pipe.vae_scale_factor
        if self.sample_size % 2:
            raise ValueError(f"Flux packs latents 2×2, so the latent size must be even, got {self.sample_size}.")
        super().__init__(pipe)
        half = self.sample_size // 2
        self.image_ids = pipe._prepare_latent_image_ids(1, half, half, self.device, self.dtype)  # (h/2·w/2, 3)

    def timestep_kwargs(self, steps: int) -> dict:
        """FluxPipeline's time grid: σ = linspace(1, 1/T, T), shifted by μ, which grows linearly with
        the number of image tokens (``calculate_shift``)."""
        config, tokens = self.scheduler_config, (self.sample_size // 2) ** 2
        kwargs = {"sigmas": np.linspace(1.0, 1 / steps, steps)}
        if config.get("use_dynamic_shifting"):
            slope = (config["max_shift"] - config["base_shift"]) / (config["max_image_seq_len"] - config["base_image_seq_len"])
            kwargs["mu"] = config["base_shift"] + slope * (tokens - config["base_image_seq_len"])
        return kwargs

    def embed(self, prompts: str | list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(T5 embeddings (B, L, D), pooled CLIP embeddings (B, P)) via the pipeline's ``encode_prompt``."""
        prompts = self.check_prompts(prompts)
        check_known_words(self.pipe.tokenizer_2, prompts)
        with torch.no_grad():
            embeds, pooled, _ = self.pipe.encode_prompt(prompts, None, device=self.device,
                                                        max_sequence_length=self.max_sequence_length)
        return embeds, pooled

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) → (B, h/2·w/2, 4C): each 2×2 patch of latents becomes one token (FluxPipeline's packing)."""
        return self.pipe._pack_latents(x, *x.shape)

    def unpack(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, h/2·w/2, 4C) → (B, C, h, w), the inverse of :meth:`pack`."""
        return self.pipe._unpack_latents(tokens, self.image_size, self.image_size, self.pipe.vae_scale_factor)

    def __call__(self, x: torch.Tensor, t, cond: tuple[torch.Tensor, torch.Tensor], guidance: float = 1.0) -> torch.Tensor:
        embeds, pooled = cond
        b = x.shape[0]
        timestep = torch.as_tensor(t, device=x.device, dtype=x.dtype).reshape(-1).expand(b)
        text_ids = torch.zeros(embeds.shape[1], 3, device=x.device, dtype=x.dtype)
        embedded = torch.full((b,), float(guidance), device=x.device, dtype=torch.float32) if self.embedded_guidance else None
        out = self.transformer(hidden_states=self.pack(x), timestep=timestep, guidance=embedded,
                               pooled_projections=pooled.expand(b, -1), encoder_hidden_states=embeds.expand(b, -1, -1),
                               txt_ids=text_ids, img_ids=self.image_ids).sample
        return self.unpack(out)
