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

:class:`Calibration` maps the proxy onto a length with an LPIPS-like scale: its growth exponent along a
world's known one-parameter changes is divided out, then its scale is fixed on anchor pairs
(:func:`fit_calibration`; the detailed world's constants are :data:`toy.detailed.morphs.PROXY_CALIBRATION`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

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


@dataclass(frozen=True)
class Calibration:
    """A power-law calibration of a distance: :math:`d_{cal} = a\\, d^{1/\\gamma}`.

    The proxy is a squared feature difference, so along a one-parameter change of size Δ it grows as
    :math:`\\Delta^\\gamma` with γ > 1. Then the sum of small consecutive steps falls short of the
    distance between the ends, and IMPUS's rPPD (that sum over (n − 1) times the ends' distance) is small
    for every path, whatever the scale: the rank rule gives rank 1. Taking the 1/γ power makes the
    distance additive along such changes (a length, as the rPPD rule and a perceptually uniform spacing
    presume); the scale a then sets thresholds such as δ (:func:`fit_calibration`).

    Attributes:
        exponent: γ, the raw distance's growth exponent along one-parameter changes.
        scale: a.
        anchor: what the scale was fitted to, in words.
    """

    exponent: float
    scale: float
    anchor: str = ""

    def __call__(self, d: torch.Tensor) -> torch.Tensor:
        return self.scale * d.clamp_min(0) ** (1 / self.exponent)

    def apply(self, distance: Callable) -> Callable:
        """``distance(a, b) -> (B,)`` composed with this calibration."""
        return lambda a, b: self(distance(a, b))


def growth_exponent(strips: Sequence[torch.Tensor], distance: Callable) -> tuple[float, float]:
    """γ and its standard error over strips: each strip (K, 3, H, W) holds K ≥ 3 frames with one factor
    evenly spaced; γ is the slope of log d(frame_0, frame_k) on log k, one slope per strip, averaged.
    Strips where fewer than three frames differ from the first are skipped."""
    import numpy as np

    slopes = []
    for frames in strips:
        if frames.dim() != 4 or frames.shape[0] < 3:
            raise ValueError(f"each strip must be frames (K >= 3, 3, H, W), got {tuple(frames.shape)}.")
        d = distance(frames[1:], frames[:1]).double().numpy()
        ok = d > 1e-9
        if ok.sum() >= 3:
            slopes.append(np.polyfit(np.log(np.arange(1, len(frames))[ok]), np.log(d[ok]), 1)[0])
    if len(slopes) < 2:
        raise ValueError("growth_exponent needs at least two strips whose frames change.")
    return float(np.mean(slopes)), float(np.std(slopes, ddof=1) / np.sqrt(len(slopes)))


def fit_calibration(strips: Sequence[torch.Tensor], anchors: tuple[torch.Tensor, torch.Tensor], distance: Callable,
                    anchor_value: float = 0.2, anchor: str = "") -> Calibration:
    """Fit :class:`Calibration`: its exponent γ on one-parameter ``strips`` (:func:`growth_exponent`),
    then its scale so that the median calibrated distance of the ``anchors`` pairs (a, b), each (N, 3, H, W),
    equals ``anchor_value``."""
    gamma, _ = growth_exponent(strips, distance)
    a, b = anchors
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"anchors must be two image batches of one shape (N, 3, H, W), got {tuple(a.shape)} and {tuple(b.shape)}.")
    raw = distance(a, b).clamp_min(0) ** (1 / gamma)
    return Calibration(gamma, float(anchor_value / raw.median().clamp_min(1e-12)), anchor)
