"""2D Gaussian mixtures with their exact flow and diffusion fields in closed form.

Both the rectified flow :math:`x_t = (1-t)x_0 + t\\varepsilon` and DDPM
:math:`x_t = \\sqrt{\\bar\\alpha}\\,x_0 + \\sqrt{1-\\bar\\alpha}\\,\\varepsilon` are of the form
:math:`x_t = a\\,x_0 + b\\,\\varepsilon`. For one isotropic component :math:`\\mathcal N(\\mu, s^2 I)` the
posterior means are linear in x,

.. math:: \\mathbb E[\\varepsilon\\mid x_t] = \\frac{b\\,(x_t - a\\mu)}{a^2s^2 + b^2},\\qquad
          \\mathbb E[x_0\\mid x_t] = \\mu + \\frac{a s^2 (x_t - a\\mu)}{a^2s^2 + b^2},

and for a mixture they are averaged with the components' posterior responsibilities. The exact
velocity is :math:`v = \\mathbb E[\\varepsilon - x_0\\mid x_t]` and the exact ε-prediction is
:math:`\\mathbb E[\\varepsilon\\mid x_t]`: the fields a perfectly trained model would learn.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler, FlowMatchEulerDiscreteScheduler

#: the 2D toys' DDPM schedule: DDPM's linear β 1e-4 → 0.02, whose ᾱ_T ≈ 4e-5 leaves almost no
#: data in x_T even for modes 15 away from the origin (SD's scaled_linear would leave 7 %).
DDPM_CONFIG = dict(DDIMScheduler(
    num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
    clip_sample=False, set_alpha_to_one=False, steps_offset=1,
).config)
FLOW_CONFIG = dict(FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0).config)
ALPHAS_CUMPROD = DDIMScheduler.from_config(DDPM_CONFIG).alphas_cumprod


@dataclass(frozen=True)
class GaussianMixture:
    """An isotropic Gaussian mixture in 2D.

    Attributes:
        means: component centres, shape (K, 2).
        std: the components' common standard deviation σ.
        weights: mixture weights, shape (K,), summing to 1 (uniform if None).
    """

    means: torch.Tensor
    std: float = 1.0
    weights: torch.Tensor | None = None

    @property
    def probs(self) -> torch.Tensor:
        k = len(self.means)
        return torch.full((k,), 1.0 / k) if self.weights is None else self.weights

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n points, shape (n, 2)."""
        k = torch.multinomial(self.probs, n, replacement=True, generator=generator)
        return self.means[k] + self.std * torch.randn(n, 2, generator=generator)

    def sample_with_modes(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n points (n, 2) and the index (n,) of the component each came from."""
        k = torch.multinomial(self.probs, n, replacement=True, generator=generator)
        return self.means[k] + self.std * torch.randn(n, 2, generator=generator), k

    def posterior_means(self, x: torch.Tensor, a, b) -> tuple[torch.Tensor, torch.Tensor]:
        """E[x0 | x_t] and E[ε | x_t] for x_t = a·x0 + b·ε, x of shape (N, 2), a and b scalars."""
        a, b = torch.as_tensor(a, dtype=x.dtype), torch.as_tensor(b, dtype=x.dtype)
        var = a**2 * self.std**2 + b**2
        centred = x[:, None, :] - a * self.means[None].to(x.dtype)           # (N, K, 2)
        log_r = torch.log(self.probs.to(x.dtype)) - (centred**2).sum(-1) / (2 * var)
        r = torch.softmax(log_r, dim=1)[..., None]                          # (N, K, 1)
        e_eps = (r * b * centred / var).sum(1)
        e_x0 = (r * (self.means[None].to(x.dtype) + a * self.std**2 * centred / var)).sum(1)
        return e_x0, e_eps

    def velocity(self, x: torch.Tensor, t) -> torch.Tensor:
        """Exact rectified-flow velocity v(x, t) = E[ε − x0 | x_t = x], shape (N, 2), t ∈ [0, 1]."""
        t = float(t)
        e_x0, e_eps = self.posterior_means(x, 1.0 - t, t)
        return e_eps - e_x0

    def epsilon(self, x: torch.Tensor, timestep) -> torch.Tensor:
        """Exact DDPM noise prediction E[ε | x_t = x], shape (N, 2), integer ``timestep`` in [0, 1000)."""
        ab = ALPHAS_CUMPROD[int(timestep)].double()
        return self.posterior_means(x.double(), ab.sqrt(), (1 - ab).sqrt())[1].to(x.dtype)


class ExactFlow:
    """The mixture's exact velocity field as a minidiff denoiser (unconditional: ``cond`` ignored)."""

    prediction = "velocity"
    scheduler_config = FLOW_CONFIG

    def __init__(self, mixture: GaussianMixture):
        self.mixture = mixture

    def __call__(self, x, t, cond=None):
        return self.mixture.velocity(x, t)


class ExactDDPM:
    """The mixture's exact ε field as a minidiff denoiser (unconditional: ``cond`` ignored)."""

    prediction = "epsilon"
    scheduler_config = DDPM_CONFIG

    def __init__(self, mixture: GaussianMixture):
        self.mixture = mixture

    def __call__(self, x, t, cond=None):
        return self.mixture.epsilon(x, t)


_D = 15 / math.sqrt(2)
#: FlowEdit's 2D toy (Kulikov et al., Fig. 3): two source modes on the diagonal …
FLOWEDIT_SOURCE = GaussianMixture(torch.tensor([[-_D, -_D], [_D, _D]]))
#: … and two target modes, as the paper's review gives them; both flows split noise space along
#: the line x + y = 0, so editing-by-inversion pairs every mode with its nearest target mode.
FLOWEDIT_TARGET = GaussianMixture(torch.tensor([[-15.0, 0.0], [0.0, 15.0]]))
#: The variant: the target flow splits noise space along x = 0 instead, so editing-by-inversion
#: sends the quarter of each source mode whose noise falls between the two lines to the far mode.
FLOWEDIT_TARGET_VARIANT = GaussianMixture(torch.tensor([[-15.0, 0.0], [15.0, 0.0]]))


def conditional_mixture() -> list[GaussianMixture]:
    """The class-conditional toy: four classes, each a pair of Gaussians on a ring of radius 4.

    Class k owns the modes at angles 90°·k ± 20°. The classes overlap under noise, so
    classifier-free guidance pushes samples well away from the unconditional flow — the setting in
    which DDIM inversion drifts.
    """
    classes = []
    for k in range(4):
        angles = torch.deg2rad(torch.tensor([90.0 * k - 20, 90.0 * k + 20]))
        classes.append(GaussianMixture(4.0 * torch.stack([angles.cos(), angles.sin()], 1), std=0.35))
    return classes
