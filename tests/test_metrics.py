import torch

from minidiff import mixture_w2_squared, mmd_rbf, nearest_mode_share, per_mode_spread, psnr, transport_cost, w2_squared
from toy.mixtures import FLOWEDIT_SOURCE, FLOWEDIT_TARGET


def test_w2_of_a_translation_is_the_squared_shift():
    x = torch.randn(200, 2, dtype=torch.float64)
    shift = torch.tensor([3.0, -4.0], dtype=torch.float64)
    assert abs(w2_squared(x, x + shift) - 25.0) < 1e-6
    assert abs(transport_cost(x, x + shift) - 25.0) < 1e-6


def test_empirical_cost_is_never_below_w2():
    x, y = torch.randn(100, 2), torch.randn(100, 2) + 5
    assert w2_squared(x, y) <= transport_cost(x, y) + 1e-6


def test_mixture_w2_of_the_review_toy():
    # each source mode (±15/√2, ±15/√2) to its nearest target mode: |(15/√2, 15/√2 − 15)|² = 450 − 225√2
    w2 = mixture_w2_squared(FLOWEDIT_SOURCE.means, FLOWEDIT_SOURCE.probs, FLOWEDIT_TARGET.means, FLOWEDIT_TARGET.probs)
    assert abs(w2 - (450 - 225 * 2**0.5)) < 1e-4


def test_nearest_share_mmd_spread_psnr():
    g = torch.Generator().manual_seed(0)
    x = FLOWEDIT_SOURCE.sample(400, g)
    wanted = FLOWEDIT_TARGET.means[torch.cdist(FLOWEDIT_SOURCE.means, FLOWEDIT_TARGET.means).argmin(1)]
    y = wanted[torch.cdist(x, FLOWEDIT_SOURCE.means).argmin(1)] + torch.randn(400, 2, generator=g)
    assert nearest_mode_share(x, y, FLOWEDIT_SOURCE.means, FLOWEDIT_TARGET.means) == 1.0
    assert nearest_mode_share(x, y.flip(1) * -1, FLOWEDIT_SOURCE.means, FLOWEDIT_TARGET.means) == 0.0
    assert abs(mmd_rbf(y, FLOWEDIT_TARGET.sample(400, g))) < 0.02
    assert mmd_rbf(y, FLOWEDIT_SOURCE.sample(400, g)) > 0.3
    torch.testing.assert_close(per_mode_spread(y, FLOWEDIT_TARGET.means), torch.ones(2), atol=0.15, rtol=0)
    img = torch.rand(2, 3, 8, 8) * 2 - 1
    assert abs(psnr(img, img + 0.02) - 20 * torch.log10(torch.tensor(2 / 0.02)).item()) < 1e-3


def test_masked_psnr_counts_only_the_mask():
    x = torch.zeros(2, 3, 4, 4)
    y = x.clone()
    y[:, :, :2] = 1.0  # top half wrong by 1
    keep = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    keep[:, :, 2:] = True
    keep[:, :, 0, 0] = True  # one wrong pixel of 9 kept
    from minidiff import masked_psnr

    expected = 10 * torch.log10(torch.tensor(4.0) / (1 / 9)).item()
    assert abs(masked_psnr(x, y, keep) - expected) < 1e-4


def test_the_one_psnr_is_scikit_images_with_a_floor():
    """psnr_per_image equals skimage's peak_signal_noise_ratio per image (and on the masked pixels
    alone), and identical images score the documented cap instead of ∞."""
    import numpy as np
    from skimage.metrics import peak_signal_noise_ratio

    from minidiff import psnr_per_image
    from minidiff.metrics import MSE_FLOOR

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(3, 3, 8, 8, generator=g) * 2 - 1, torch.rand(3, 3, 8, 8, generator=g) * 2 - 1
    mask = torch.rand(3, 1, 8, 8, generator=g) > 0.5
    ours, masked = psnr_per_image(x, y), psnr_per_image(x, y, mask)
    for i in range(3):
        a, b, m = x[i].double().numpy(), y[i].double().numpy(), np.broadcast_to(mask[i].numpy(), (3, 8, 8))
        assert abs(ours[i] - peak_signal_noise_ratio(a, b, data_range=2.0)) < 1e-9
        assert abs(masked[i] - peak_signal_noise_ratio(a[m], b[m], data_range=2.0)) < 1e-9
    assert psnr_per_image(x, x).tolist() == [10 * np.log10(4 / MSE_FLOOR)] * 3
