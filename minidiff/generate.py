"""Text-to-image generation with any image adapter: the reference every edit is compared with."""
from __future__ import annotations

import torch

from ._checks import check_seed
from .batching import batches, take
from .ddim import ddim_sample
from .flow import flow_sample


@torch.no_grad()
def generate(denoiser, prompts: str | list[str], steps: int = 50, guidance: float = 7.5, seed: int = 0,
             progress: bool = False, batch_size: int | None = None) -> torch.Tensor:
    """Sample images for ``prompts`` with classifier-free guidance.

    DDIM for ε models, Euler on the flow ODE for velocity models, from seeded Gaussian latents.

    Args:
        denoiser: an image adapter (``minidiff.pipelines``): ``embed``, ``null``, ``noise``, ``decode``.
        prompts: one prompt or a list of B prompts.
        steps: sampling steps.
        guidance: CFG scale w (a guidance-distilled model takes it as its input).
        seed: seeds the initial latents.
        progress: show a progress bar.
        batch_size: sample at most this many images at a time (GPU memory at full scale); the noise is
            drawn for all B first, so the images do not depend on it. None: all at once.

    Returns:
        Images, shape (B, 3, H, W), in [−1, 1].
    """
    check_seed(seed)
    cond = denoiser.embed(prompts)
    batch = (cond[0] if isinstance(cond, tuple) else cond).shape[0]
    noise = denoiser.noise(batch, torch.Generator().manual_seed(seed))
    sample = ddim_sample if denoiser.prediction == "epsilon" else flow_sample
    return torch.cat([denoiser.decode(sample(denoiser, noise[part], take(cond, part), steps, guidance, denoiser.null, progress=progress))
                      for part in batches(batch, batch_size)])
