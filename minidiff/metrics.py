"""Numbers the course reports: transport cost, optimal-transport limits, mode shares, errors."""
from __future__ import annotations

import numpy as np
import ot
import torch


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


def transport_cost(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared distance E‖y − x‖² between paired points, x and y of shape (N, D)."""
    return float(((y - x) ** 2).flatten(1).sum(1).mean())


def w2_squared(x: torch.Tensor, y: torch.Tensor) -> float:
    """Empirical squared 2-Wasserstein distance between two equal-weight samples (exact EMD, POT).

    Args:
        x: samples, shape (N, D).
        y: samples, shape (M, D).

    Returns:
        min over couplings π of Σ π_ij ‖x_i − y_j‖²: the least transport cost any map from the
        sample x onto the sample y can have.
    """
    a, b = _np(x), _np(y)
    cost = ot.dist(a, b)  # squared Euclidean
    return float(ot.emd2(ot.unif(len(a)), ot.unif(len(b)), cost, numItermax=1_000_000))


def mixture_w2_squared(means_a, weights_a, means_b, weights_b) -> float:
    """Squared W2 between two Gaussian mixtures with one shared isotropic covariance, per component.

    Solves the discrete OT between component means (Delon & Desolneux's MW2, equal covariances
    so each pair costs ‖μ_i − μ_j‖²). MW2 only considers couplings made of whole Gaussian
    components, so it is an **upper bound** of the population W2². When each component goes whole to
    one target component and the modes are far apart compared with σ, the gap is exponentially small:
    on the course's FlowEdit toys a lower bound (the 1D W2² of the projected mixtures, notebook 03)
    agrees with it to better than 0.01. When the plan has to split a component between targets, the
    true W2² can be much lower.
    """
    cost = ot.dist(_np(means_a), _np(means_b))
    return float(ot.emd2(_np(weights_a), _np(weights_b), cost))


def nearest_mode_share(x: torch.Tensor, y: torch.Tensor, source_means: torch.Tensor, target_means: torch.Tensor) -> float:
    """Share of edits y that land at the target mode nearest to their source point's mode.

    Args:
        x: source points, shape (N, D).
        y: their edits, shape (N, D).
        source_means: source mode centres, shape (K, D).
        target_means: target mode centres, shape (L, D).
    """
    src_mode = torch.cdist(x, source_means).argmin(1)
    wanted = torch.cdist(source_means, target_means).argmin(1)[src_mode]
    landed = torch.cdist(y, target_means).argmin(1)
    return float((landed == wanted).float().mean())


def mmd_rbf(x: torch.Tensor, y: torch.Tensor, bandwidths: tuple[float, ...] = (1.0, 4.0, 16.0)) -> float:
    """Unbiased squared maximum mean discrepancy with a sum of RBF kernels, x (N, D), y (M, D).

    Near 0 when both samples come from one distribution; it grows when y's modes are shifted,
    shrunk or weighted differently from x's.
    """
    def k(a, b):
        d2 = torch.cdist(a, b) ** 2
        return sum(torch.exp(-d2 / (2 * h**2)) for h in bandwidths)

    x, y = x.double(), y.double()
    n, m = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float(
        (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
        + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        - 2 * kxy.mean()
    )


def per_mode_spread(y: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """Per-coordinate standard deviation of the points assigned to each mode, shape (K,).

    Points y (N, D) are assigned to their nearest mode among ``means`` (K, D); a mode with no
    point gets NaN. Compare with the target modes' own σ: smaller means the outputs shrank.
    """
    assign = torch.cdist(y, means).argmin(1)
    return torch.stack([
        y[assign == k].std(0).mean() if (assign == k).sum() > 1 else torch.tensor(float("nan"))
        for k in range(len(means))
    ])


def reconstruction_error(x: torch.Tensor, x_rec: torch.Tensor) -> float:
    """Mean squared error per element between x and its reconstruction, both (B, ...)."""
    return float(((x - x_rec) ** 2).mean())


#: PSNR's MSE floor: identical images score 10·log10(4 / 1e-10) ≈ 106 dB (data range 2) instead of ∞,
#: so that a mean over images stays finite.
MSE_FLOOR = 1e-10


def psnr_per_image(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None,
                   data_range: float = 2.0) -> np.ndarray:
    """Peak signal-to-noise ratio in dB of each image of a batch, the course's one PSNR.

    .. math:: \mathrm{PSNR} = 10 \log_{10} \frac{R^2}{\max(\mathrm{MSE}, 10^{-10})}

    in float64, as scikit-image's ``peak_signal_noise_ratio`` (tested equal to it) but with the MSE
    floor :data:`MSE_FLOOR`.

    Args:
        x, y: images (B, C, H, W) in [−1, 1] (data range R = 2).
        mask: None (every pixel) or (B, 1, H, W) / (B, H, W) booleans: only those pixels count, e.g. the
            complement of an edit's true change mask (the background an edit must leave alone).

    Returns:
        (B,) float64 array.
    """
    err = (_np(x) - _np(y)) ** 2
    if mask is None:
        mse = err.reshape(len(err), -1).mean(1)
    else:
        keep = np.broadcast_to(_np(mask).astype(bool).reshape(err.shape[0], 1, *err.shape[-2:]), err.shape)
        mse = np.array([e[k].mean() for e, k in zip(err, keep)])
    return 10 * np.log10(data_range**2 / np.maximum(mse, MSE_FLOOR))


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0) -> float:
    """Mean PSNR in dB over a batch of images in [−1, 1], shape (B, C, H, W) (:func:`psnr_per_image`)."""
    return float(psnr_per_image(x, y, data_range=data_range).mean())


def masked_psnr(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, data_range: float = 2.0) -> float:
    """Mean PSNR in dB over a batch, counting only the pixels where ``mask`` (B, 1, H, W) is True
    (:func:`psnr_per_image`)."""
    return float(psnr_per_image(x, y, mask, data_range).mean())
