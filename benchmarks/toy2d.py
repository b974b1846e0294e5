"""The 2D toy's key figures: FlowEdit vs editing-by-inversion on both configurations (exact fields,
T = 50, n_max = T, n_avg = 1, no guidance), and DDIM reconstruction error on the class-conditional
toy at guidance 1 and 7.5 (50 steps).

``ot_w2`` is ``md.mixture_w2_squared``, an upper bound of the population W2² (tight on these toys,
see notebook 03); ``ot_w2_empirical`` is the exact W2² between two finite samples (POT), which
overestimates the population value."""
from __future__ import annotations

import torch

import minidiff as md
from toy import train2d
from toy.mixtures import FLOWEDIT_SOURCE, FLOWEDIT_TARGET, FLOWEDIT_TARGET_VARIANT, ExactFlow, conditional_mixture

STEPS = 50
N = 1000


def transport_figures(target, seed: int = 0) -> dict[str, float]:
    """Nearest-mode shares, transport costs and the OT cost bounds for one source → target configuration."""
    g = torch.Generator().manual_seed(seed)
    x = FLOWEDIT_SOURCE.sample(N, g)
    src, tar = ExactFlow(FLOWEDIT_SOURCE), ExactFlow(target)
    y_inv = md.flow_sample(tar, md.flow_invert(src, x, steps=STEPS), steps=STEPS)
    y_fe = md.flowedit(src, x, None, None, steps=STEPS, n_max=STEPS, n_avg=1, guidance_src=1.0, guidance_tar=1.0,
                       target=tar, generator=g)
    means = FLOWEDIT_SOURCE.means, target.means
    return {
        "flowedit_nearest_share": md.nearest_mode_share(x, y_fe, *means),
        "inversion_nearest_share": md.nearest_mode_share(x, y_inv, *means),
        "flowedit_cost": md.transport_cost(x, y_fe),
        "inversion_cost": md.transport_cost(x, y_inv),
        "ot_w2": md.mixture_w2_squared(FLOWEDIT_SOURCE.means, FLOWEDIT_SOURCE.probs, target.means, target.probs),
        "ot_w2_empirical": md.w2_squared(x, target.sample(N, g)),
        "flowedit_mmd": md.mmd_rbf(y_fe, target.sample(N, g)),
        "inversion_mmd": md.mmd_rbf(y_inv, target.sample(N, g)),
    }


def reconstruction_figures(seed: int = 0) -> dict[str, float]:
    """DDIM inversion + reconstruction MSE of real class-conditional points at w = 1 and w = 7.5."""
    model = train2d.load("cond-ddpm")
    x0, labels = train2d.conditional_sampler(conditional_mixture())(500, torch.Generator().manual_seed(seed))
    cond, null = model.embed(labels).detach(), model.null_embedding
    out = {}
    for key, w in (("recon_err_w1", 1.0), ("recon_err_w7_5", 7.5)):
        xT = md.ddim_invert(model, x0, cond, STEPS, w, null)
        out[key] = md.reconstruction_error(x0, md.ddim_sample(model, xT, cond, STEPS, w, null))
    return out


def run() -> dict[str, float]:
    figures = transport_figures(FLOWEDIT_TARGET)
    figures.update({f"{k}_variant": v for k, v in transport_figures(FLOWEDIT_TARGET_VARIANT).items()})
    figures.update(reconstruction_figures())
    return {k: round(v, 4) for k, v in figures.items()}
