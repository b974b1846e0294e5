"""A perceptual distance between images: LPIPS when it is installed, an offline proxy otherwise.

LPIPS (Zhang et al., CVPR 2018) compares deep features of two images layer by layer:

.. math:: d(x, y) = \\sum_l \\frac{1}{H_l W_l} \\sum_{h,w} \\big\\| w_l \\odot (\\hat f^l_{hw}(x) - \\hat f^l_{hw}(y)) \\big\\|_2^2,

where :math:`\\hat f^l_{hw}` is layer l's activation at pixel (h, w), unit-normalised over channels, and
:math:`w_l` are per-channel weights fitted to human judgements. Its backbones (AlexNet, VGG) are
ImageNet downloads that the course's machines cannot fetch.

**The offline default is a proxy, not LPIPS.** It applies the same recipe to the features of the
model's own VAE encoder (``vae.encoder``: the input convolution, every down block and the mid block)
with uniform weights :math:`w_l = 1` and the layers averaged instead of summed. Nobody calibrated it
against human judgements: its scale is not LPIPS's (an LPIPS threshold such as IMPUS's δ = 0.2 does
not carry over) and it only knows what the VAE learned to encode. What it does share with LPIPS is
the structure — it compares local structure at several scales rather than raw pixels, it is zero
for identical images, and (checked in notebook 09) it grows monotonically along the shapes world's
one-parameter changes of size, position and colour.
"""
from __future__ import annotations

from pathlib import Path

import torch

BACKENDS = ("auto", "lpips", "vae")
_LPIPS = {}


def lpips_available() -> bool:
    """Whether the ``lpips`` package and its AlexNet backbone weights are present (no download)."""
    try:
        import lpips  # noqa: F401
    except ImportError:
        return False
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    return any(checkpoints.glob("alexnet-*.pth"))


def perceptual_distance(a: torch.Tensor, b: torch.Tensor, model=None, backend: str = "auto") -> torch.Tensor:
    """Perceptual distance between two batches of images.

    Args:
        a: images (B, 3, H, W) in [−1, 1].
        b: images (B, 3, H, W) or (1, 3, H, W) in [−1, 1].
        model: an image denoiser with a ``vae`` (e.g. :func:`minidiff.pipelines.load_pipeline`'s result) or
            an ``AutoencoderKL``; needed by the offline proxy.
        backend: ``"lpips"`` (LPIPS-AlexNet; needs the ``lpips`` package and its weights), ``"vae"`` (the
            offline proxy on ``model``'s VAE encoder, see the module docstring), or ``"auto"``: LPIPS when
            :func:`lpips_available`, else the proxy.

    Returns:
        Distances, shape (B,), ≥ 0 and exactly 0 for identical images.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"{name} must be a tensor of images (B, 3, H, W) in [-1, 1], got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}.")
    if a.shape[-2:] != b.shape[-2:] or b.shape[0] not in (1, a.shape[0]):
        raise ValueError(f"cannot compare images of shapes {tuple(a.shape)} and {tuple(b.shape)}.")
    if backend == "lpips" or (backend == "auto" and lpips_available()):
        return _lpips(a, b)
    if model is None:
        raise ValueError("the offline perceptual distance uses the model's VAE encoder: pass model= (the denoiser "
                         "from load_pipeline, or its AutoencoderKL), or install lpips with its weights.")
    return vae_feature_distance(a, b, getattr(model, "vae", model))


def _lpips(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    import lpips

    key = (a.device, a.dtype)
    if key not in _LPIPS:
        _LPIPS[key] = lpips.LPIPS(net="alex", verbose=False).to(a.device, a.dtype).eval().requires_grad_(False)
    with torch.no_grad():
        return _LPIPS[key](a, b.expand_as(a)).reshape(-1)


@torch.no_grad()
def vae_feature_distance(a: torch.Tensor, b: torch.Tensor, vae) -> torch.Tensor:
    """The offline proxy: LPIPS's recipe on a VAE encoder's activations, uniform weights.

    .. math:: d(x, y) = \\frac{1}{L} \\sum_{l=1}^{L} \\frac{1}{H_l W_l} \\sum_{h,w}
              \\big\\| \\hat f^l_{hw}(x) - \\hat f^l_{hw}(y) \\big\\|_2^2,
              \\qquad \\hat f^l_{hw} = f^l_{hw} / (\\|f^l_{hw}\\|_2 + 10^{-10})

    over the L stages of ``vae.encoder``: ``conv_in``, each down block, the mid block.

    Args:
        a: images (B, 3, H, W) in [−1, 1].
        b: images (B or 1, 3, H, W) in [−1, 1].
        vae: a diffusers ``AutoencoderKL``.

    Returns:
        Distances, shape (B,); each layer's term lies in [0, 4], so d does too.
    """
    encoder = vae.encoder
    x = torch.cat([a, b.expand_as(a)]).to(vae.device, vae.dtype)
    features = [encoder.conv_in(x)]
    for block in (*encoder.down_blocks, encoder.mid_block):
        features.append(block(features[-1]))
    terms = []
    for f in features:
        f = f / (f.norm(dim=1, keepdim=True) + 1e-10)
        fa, fb = f.chunk(2)
        terms.append((fa - fb).square().sum(1).mean((-2, -1)))
    return torch.stack(terms).mean(0).float().cpu()
