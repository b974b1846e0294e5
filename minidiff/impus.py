"""IMPUS: image morphing with perceptually-uniform sampling (Yang et al., ICLR 2024).

Given two images x¹, x² and their prompts, IMPUS builds a morph x(α), α ∈ [0, 1], in seven moves:

1. **Textual inversion** of each endpoint: its conditional embedding :math:`e_i` (initialised at the
   prompt's) is optimised with Adam (lr 2e-3) on the denoising loss
   :math:`\\mathbb E_{t\\sim U\\{0..999\\},\\,\\varepsilon}\\|\\varepsilon_\\theta(x_t, t, e_i) - \\varepsilon\\|^2`.
2. **DDIM inversion** at w = 1 of both latents to :math:`x_T^1, x_T^2`, with a check that
   :math:`\\mathrm{Var}(x_T) \\approx 1` (what slerp assumes of its endpoints).
3. **rPPD** (relative perceptual path diversity) of the un-adapted morph's frames
   :math:`x(\\alpha_0 = 0), …, x(\\alpha_{n-1} = 1)`,
   :math:`\\mathrm{rPPD} = \\sum_{i=1}^{n-1} d(x(\\alpha_{i-1}), x(\\alpha_i)) \\,/\\, ((n-1)\\, d(x(0), x(1)))`,
   sets the LoRA rank :math:`r = 2^{\\max(0, \\lfloor 18\\,\\mathrm{rPPD} - 6 \\rfloor)}` (≥ 16 when a Var(x_T) is
   off). The official code starts its loop at image 1 although its first interpolant (α = 0.1) is
   already the next frame, and divides its 10 terms by 9; here there are n − 1 steps between n frames,
   divided by n − 1.
4. A **conditional LoRA** (rank r) fitted on both images with their embeddings (AdamW, lr 1e-3), and a
   separate **unconditional LoRA** (rank 2) fitted on both images with the null embedding ∅ — the
   "unconditional bias correction". Both go through peft (``unet.add_adapter``, ``unet.set_adapter``).
5. **Re-inversion** of both images with the conditional LoRA.
6. **Sampling** at α: :math:`e(\\alpha) = (1-\\alpha)e_1 + \\alpha e_2`,
   :math:`x_T(\\alpha) = \\mathrm{slerp}(x_T^1, x_T^2; \\alpha)`, guidance :math:`w(\\alpha) = 3 - 3|\\alpha - ½|` and
   :math:`\\hat\\varepsilon = \\varepsilon_{\\text{unc-LoRA}}(x_t, \\varnothing) + w(\\alpha)\\,
   [\\varepsilon_{\\text{cond-LoRA}}(x_t, e(\\alpha)) - \\varepsilon_{\\text{unc-LoRA}}(x_t, \\varnothing)]`.
7. **Perceptually uniform α**: from α = 0, binary-search the next α so that
   d(previous frame, new frame) ≈ δ (within a tolerance); stop when d(current, x(1)) ≤ δ.

The paper's (and DiffMorpher's) path metrics are in :mod:`minidiff.path_metrics` (rPPD, PPL, the
consecutive perceptual steps) and move 7's search in :mod:`minidiff.alpha_search`.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from itertools import count
from typing import Callable

import torch
from diffusers import DDIMScheduler

from ._checks import check_latents
from .ddim import ddim_invert, ddim_sample
from .denoiser import check_denoiser
from .path_metrics import relative_ppd
from .progress import progress_bar

LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
_names = count()


def lerp(a: torch.Tensor, b: torch.Tensor, alpha) -> torch.Tensor:
    """Linear interpolation :math:`(1-\\alpha)a + \\alpha b`, one row per α.

    Args:
        a, b: endpoints, shape (1, ...) or (N, ...).
        alpha: a float or a 1-D tensor of N values.

    Returns:
        Shape (N, ...) (N = 1 for a float α).
    """
    alpha = _alphas(alpha, a).reshape(-1, *([1] * (a.dim() - 1)))
    return (1 - alpha) * a + alpha * b


def slerp(a: torch.Tensor, b: torch.Tensor, alpha, eps: float = 1e-7) -> torch.Tensor:
    """Spherical linear interpolation of each row of ``a`` towards ``b`` (Shoemake 1985).

    .. math:: \\mathrm{slerp}(a, b; \\alpha) = \\frac{\\sin((1-\\alpha)\\theta)}{\\sin\\theta}\\,a
              + \\frac{\\sin(\\alpha\\theta)}{\\sin\\theta}\\,b, \\qquad
              \\cos\\theta = \\frac{\\langle a, b\\rangle}{\\|a\\|\\,\\|b\\|}

    For two vectors of equal norm the result keeps that norm for every α: two independent
    N(0, I) draws in d dimensions both have norm ≈ √d, and so does their slerp, while their lerp at
    α = ½ has norm ≈ √(d/2). Falls back to :func:`lerp` for (anti-)parallel rows, where θ is undefined.

    Args:
        a, b: endpoints, shape (1, ...) or (N, ...); each row is one flattened vector.
        alpha: a float or a 1-D tensor of N values.

    Returns:
        Shape (N, ...).
    """
    alpha = _alphas(alpha, a)
    shape = torch.broadcast_shapes(a.shape, b.shape)
    fa, fb = a.flatten(1).double(), b.flatten(1).double()
    cos = (fa * fb).sum(1) / (fa.norm(dim=1) * fb.norm(dim=1)).clamp_min(1e-30)
    theta = torch.arccos(cos.clamp(-1, 1))
    sin = torch.sin(theta)
    al = alpha.double()
    wa = torch.where(sin > eps, torch.sin((1 - al) * theta) / sin.clamp_min(eps), 1 - al)
    wb = torch.where(sin > eps, torch.sin(al * theta) / sin.clamp_min(eps), al)
    out = wa[:, None] * fa + wb[:, None] * fb
    return out.to(a.dtype).reshape(len(alpha), *shape[1:])


def _alphas(alpha, like: torch.Tensor) -> torch.Tensor:
    alpha = torch.as_tensor(alpha, dtype=like.dtype, device=like.device).reshape(-1)
    if not torch.isfinite(alpha).all():
        raise ValueError("α must be finite.")
    return alpha


def impus_guidance(alpha, scale: float = 3.0) -> torch.Tensor:
    """IMPUS's guidance schedule :math:`w(\\alpha) = s - s\\,|\\alpha - ½|` (s = 3: 1.5 at the ends, 3 at α = ½)."""
    alpha = torch.as_tensor(alpha, dtype=torch.float32).reshape(-1)
    if ((alpha < 0) | (alpha > 1)).any():
        raise ValueError(f"α must lie in [0, 1], got {alpha.tolist()}.")
    return scale - scale * (alpha - 0.5).abs()


def lora_rank(rppd: float, variance_ok: bool = True) -> int:
    """The LoRA rank IMPUS picks from the relative perceptual path diversity.

    .. math:: r = 2^{\\max(0,\\ \\lfloor 18\\,\\mathrm{rPPD} - 6 \\rfloor)}

    and at least 16 when the inverted latents' variances are off (``variance_ok=False``).
    """
    if not math.isfinite(rppd) or rppd < 0:
        raise ValueError(f"rPPD must be a finite, non-negative number, got {rppd}.")
    rank = 2 ** max(0, math.floor(18 * rppd - 6))
    return rank if variance_ok else max(rank, 16)


def _backbone(denoiser):
    """The network LoRA attaches to (``unet`` or ``transformer``), checked for diffusers' peft API."""
    net = getattr(denoiser, "unet", None) or getattr(denoiser, "transformer", None)
    if net is None or not hasattr(net, "add_adapter"):
        raise TypeError(f"{type(denoiser).__name__} exposes no diffusers model with the peft adapter API "
                        "(`unet` or `transformer` with add_adapter); IMPUS's LoRA needs one.")
    return net


def _use_adapter(net, name: str | None) -> None:
    """Make ``name`` the only active adapter of ``net``; None runs the base weights."""
    if not getattr(net, "_hf_peft_config_loaded", False):
        if name is not None:
            raise ValueError(f"adapter {name!r} is not loaded.")
        return
    if name is None:
        net.disable_adapters()
    else:
        net.enable_adapters()
        net.set_adapter(name)


class MorphDenoiser:
    """The IMPUS denoiser: CFG between an unconditional and a conditional adapter of one network.

    .. math:: \\hat\\varepsilon = \\varepsilon_{u}(x_t, t, \\varnothing) + w\\,[\\varepsilon_{c}(x_t, t, e) - \\varepsilon_{u}(x_t, t, \\varnothing)]

    where ε_c runs adapter ``cond_adapter`` and ε_u adapter ``uncond_adapter`` (None: the base
    weights). It computes guidance itself (``embedded_guidance``), so minidiff's samplers pass it w,
    which may be a tensor with one scale per row; w = 1 costs one conditional pass.
    """

    prediction = "epsilon"
    embedded_guidance = True

    def __init__(self, denoiser, null: torch.Tensor, cond_adapter: str | None, uncond_adapter: str | None):
        self.denoiser, self.null = denoiser, null
        self.net = _backbone(denoiser)
        self.cond_adapter, self.uncond_adapter = cond_adapter, uncond_adapter
        self.scheduler_config = denoiser.scheduler_config

    def __call__(self, x: torch.Tensor, t, cond: torch.Tensor, guidance=1.0) -> torch.Tensor:
        w = torch.as_tensor(guidance, dtype=x.dtype, device=x.device).reshape(-1, *([1] * (x.dim() - 1)))
        try:
            _use_adapter(self.net, self.cond_adapter)
            eps_c = self.denoiser(x, t, cond)
            if bool((w == 1).all()):
                return eps_c
            _use_adapter(self.net, self.uncond_adapter)
            eps_u = self.denoiser(x, t, self.null)
        finally:
            _use_adapter(self.net, None)  # outside a morph's calls the network runs its base weights
        return eps_u + w * (eps_c - eps_u)


def _denoising_fit(denoiser, z0, cond, iters, optimizer, generator, desc, progress) -> list[float]:
    """Minimise E_{t∼U{0..T−1}, ε}‖ε_θ(√ᾱ_t z0 + √(1−ᾱ_t) ε, t, cond) − ε‖² over the optimiser's parameters; the losses."""
    scheduler = DDIMScheduler.from_config(denoiser.scheduler_config)
    n_train = scheduler.config.num_train_timesteps
    losses = []
    for _ in progress_bar(range(iters), desc, progress):
        t = torch.randint(0, n_train, (z0.shape[0],), generator=generator).to(z0.device)
        noise = torch.randn(z0.shape, generator=generator).to(z0.device, z0.dtype)
        loss = (denoiser(scheduler.add_noise(z0, noise, t), t, cond) - noise).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


class _Frozen:
    """Within the block, only ``trainable`` parameters of ``net`` require gradients; restored after."""

    def __init__(self, net, trainable=()):
        self.net, self.trainable = net, set(trainable)

    def __enter__(self):
        self.saved = {n: p.requires_grad for n, p in self.net.named_parameters()}
        for n, p in self.net.named_parameters():
            p.requires_grad_(n in self.trainable)

    def __exit__(self, *exc):
        for n, p in self.net.named_parameters():
            p.requires_grad_(self.saved.get(n, False))


def textual_inversion(denoiser, x: torch.Tensor, cond: torch.Tensor, iters: int = 200, lr: float = 2e-3,
                      generator: torch.Generator | None = None, progress: bool = False) -> tuple[torch.Tensor, list[float]]:
    """Textual inversion of each image's conditional embedding (step 1).

    Args:
        denoiser: an ε-prediction denoiser whose conditioning is an embedding tensor.
        x: clean latents x_0, shape (B, ...).
        cond: initial embeddings (B, L, D), one per image (the prompts').
        iters: Adam iterations (one random t and ε per image each).
        lr: Adam's learning rate (IMPUS: 2e-3).

    Returns:
        The optimised embeddings (B, L, D) and the loss of each iteration.
    """
    check_latents(x, "x")
    z0 = x
    if cond.shape[0] != z0.shape[0]:
        raise ValueError(f"need one embedding per image: {z0.shape[0]} latents but {cond.shape[0]} embeddings.")
    emb = cond.detach().clone().requires_grad_(True)
    net = _backbone(denoiser)
    with _Frozen(net):
        losses = _denoising_fit(denoiser, z0, emb, iters, torch.optim.Adam([emb], lr=lr), generator,
                                "textual inversion", progress)
    return emb.detach(), losses


def _add_lora(net, rank: int, prefix: str) -> str:
    from peft import LoraConfig

    name = f"{prefix}_{next(_names)}"
    with warnings.catch_warnings():  # peft warns that a second adapter joins the first: that is the intent
        warnings.filterwarnings("ignore", "Already found a `peft_config`")
        net.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                   target_modules=list(LORA_TARGETS)), adapter_name=name)
    return name


def _fit_lora(denoiser, net, name, z0, cond, iters, lr, generator, progress) -> list[float]:
    _use_adapter(net, name)
    params = {n: p for n, p in net.named_parameters() if f".{name}." in n}
    try:
        with _Frozen(net, params):
            return _denoising_fit(denoiser, z0, cond, iters,
                                  torch.optim.AdamW(params.values(), lr=lr), generator, f"LoRA {name}", progress)
    finally:
        _use_adapter(net, None)


@dataclass
class ImpusMorph:
    """A fitted IMPUS morph between two images: sample it at any α, then :meth:`remove` its adapters.

    Attributes:
        denoiser: the model the morph was fitted on (its network carries the adapters).
        embeddings: the endpoints' conditional embeddings e₁, e₂, shape (2, L, D).
        latents: x_T¹, x_T² from the (re-)inversion, shape (2, C, h, w).
        base_latents: x_T¹, x_T² from the inversion before any LoRA, shape (2, C, h, w).
        null: the unconditional embedding ∅ (1, L, D).
        steps: DDIM steps of inversion and sampling.
        guidance: s in w(α) = s − s|α − ½|.
        rank: the conditional LoRA's rank (None without LoRA).
        rppd: the rPPD measured before adaptation (None when the rank was given).
        variance: Var(x_T) of each endpoint before adaptation, shape (2,); ``variance_ok`` whether both
            lie within the tolerance of 1.
        cond_adapter, uncond_adapter: peft adapter names (None: base weights).
        losses: the loss curves, by stage ("textual inversion", "conditional LoRA", "unconditional LoRA").
    """

    denoiser: object
    embeddings: torch.Tensor
    latents: torch.Tensor
    base_latents: torch.Tensor
    null: torch.Tensor
    steps: int
    guidance: float
    rank: int | None
    rppd: float | None
    variance: torch.Tensor
    variance_ok: bool
    cond_adapter: str | None
    uncond_adapter: str | None
    losses: dict[str, list[float]] = field(default_factory=dict)

    @property
    def model(self) -> MorphDenoiser:
        return MorphDenoiser(self.denoiser, self.null, self.cond_adapter, self.uncond_adapter)

    def sample(self, alphas, guidance: torch.Tensor | float | None = None) -> torch.Tensor:
        """Latents x₀(α) (N, C, h, w) for α (N,): lerp of embeddings, slerp of x_T, CFG at w(α)
        (or the given ``guidance``, a float or one value per α)."""
        alphas = torch.as_tensor(alphas, dtype=torch.float32).reshape(-1)
        w = impus_guidance(alphas, self.guidance) if guidance is None else guidance
        cond = lerp(self.embeddings[:1], self.embeddings[1:], alphas)
        xT = slerp(self.latents[:1], self.latents[1:], alphas)
        return ddim_sample(self.model, xT, cond, self.steps, guidance=w)

    def ablation(self, lora: bool = True, bias_correction: bool = True) -> "ImpusMorph":
        """This morph with a part switched off, sharing its adapters (no new fit):
        ``lora=False`` samples the base weights from the pre-LoRA inversion; ``bias_correction=False``
        takes the unconditional prediction from the conditional LoRA as well."""
        if not lora:
            return dataclasses.replace(self, latents=self.base_latents, cond_adapter=None, uncond_adapter=None, rank=None)
        if self.cond_adapter is None:
            raise ValueError("this morph has no LoRA, so there is no bias correction to switch off.")
        return self if bias_correction else dataclasses.replace(self, uncond_adapter=self.cond_adapter)

    def images(self, alphas, guidance=None) -> torch.Tensor:
        """Decoded frames (N, 3, H, W) in [−1, 1] at α (N,)."""
        return self.denoiser.decode(self.sample(alphas, guidance))

    def remove(self) -> None:
        """Delete this morph's adapters; when no adapter is left, peft's layers go too (diffusers'
        ``unload_lora``), so the network is exactly as it was loaded."""
        net = _backbone(self.denoiser)
        mine = [n for n in {self.cond_adapter, self.uncond_adapter} if n is not None]
        if not mine:
            return
        with warnings.catch_warnings():  # peft reports which adapter becomes active; none is used outside a morph
            warnings.filterwarnings("ignore", "Adapter .* was active which is now deleted")
            net.delete_adapters(mine)
        if not getattr(net, "peft_config", None):
            net.unload_lora()
        self.cond_adapter = self.uncond_adapter = None
        self.rank = None


def impus_morph(
    denoiser,
    x: torch.Tensor,
    cond: torch.Tensor,
    *,
    steps: int = 50,
    guidance: float = 3.0,
    null: torch.Tensor | None = None,
    ti_iters: int = 200,
    ti_lr: float = 2e-3,
    lora_iters: int = 150,
    lora_lr: float = 1e-3,
    rank: int | None = None,
    uncond_iters: int = 50,
    uncond_rank: int = 2,
    rppd_frames: int = 11,
    distance: Callable | None = None,
    variance_tolerance: float = 0.2,
    invert_text: bool = True,
    lora: bool = True,
    bias_correction: bool = True,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> ImpusMorph:
    """Fit an IMPUS morph between two images (steps 1–5 of the module docstring).

    Args:
        denoiser: an ε-prediction image denoiser whose network has diffusers' peft adapter API
            (:class:`minidiff.pipelines.StableDiffusionDenoiser`).
        x: the two images' clean latents x_0, shape (2, C, h, w).
        cond: their prompts' embeddings, shape (2, L, D).
        steps: DDIM steps of inversion and sampling.
        guidance: s in the schedule w(α) = s − s|α − ½| (:func:`impus_guidance`).
        null: the unconditional embedding ∅, shape (1, L, D); None takes ``denoiser.null``.
        ti_iters, ti_lr: textual inversion's Adam iterations and learning rate.
        lora_iters, lora_lr: the conditional LoRA's AdamW iterations (batch: both images) and rate.
        rank: the conditional LoRA's rank; None picks it from rPPD (:func:`lora_rank`).
        uncond_iters, uncond_rank: the unconditional LoRA's iterations and rank.
        rppd_frames: n, frames (α evenly spaced in [0, 1]) of the rPPD measurement.
        distance: (a, b) → (B,) perceptual distance between images, for rPPD; needed when ``rank``
            is None (e.g. ``lambda a, b: perceptual_distance(a, b, model)``).
        variance_tolerance: Var(x_T) must lie within 1 ± this, else a warning and rank ≥ 16.
        invert_text, lora, bias_correction: the ablation switches. Without textual inversion
            the prompts' embeddings are used; without LoRA the base weights (no re-inversion);
            without bias correction the conditional LoRA also gives the unconditional prediction.
        generator: seeds every random draw (t and ε of the fits).
        progress: show progress bars.

    Returns:
        An :class:`ImpusMorph`; call its ``remove()`` to take the adapters off the network again.
    """
    check_denoiser(denoiser, "epsilon")
    check_latents(x, "x")
    z0 = x
    if z0.shape[0] != 2 or cond.shape[0] != 2:
        raise ValueError(f"IMPUS morphs two images: need x (2, ...) and cond (2, L, D), got {tuple(z0.shape)} "
                         f"and {tuple(cond.shape)}.")
    if null is None:
        null = getattr(denoiser, "null", None)
        if null is None:
            raise ValueError(f"IMPUS needs the unconditional embedding ∅: pass null= (this {type(denoiser).__name__} has none).")
    if null.shape[0] != 1 or null.shape[1:] != cond.shape[1:]:
        raise ValueError(f"null must have shape (1, {', '.join(map(str, cond.shape[1:]))}), got {tuple(null.shape)}.")
    if lora and rank is None and distance is None:
        raise ValueError("rank=None picks the LoRA rank from rPPD, which needs distance= (a perceptual distance).")
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
        raise ValueError(f"rank must be a positive integer or None, got {rank!r}.")
    net = _backbone(denoiser)
    losses = {}
    emb = cond
    if invert_text:
        emb, losses["textual inversion"] = textual_inversion(denoiser, z0, cond, ti_iters, ti_lr, generator, progress)
    inverted = ddim_invert(denoiser, z0, emb, steps)
    base = ImpusMorph(denoiser, emb, inverted, inverted, null, steps, guidance,
                      None, None, torch.zeros(2), True, None, None, losses)
    base.variance = base.latents.flatten(1).var(1).cpu()
    base.variance_ok = bool(((base.variance - 1).abs() <= variance_tolerance).all())
    if not base.variance_ok:
        warnings.warn(f"Var(x_T) = {base.variance.tolist()} is off 1 by more than {variance_tolerance}: slerp's "
                      "endpoints are not typical Gaussian noise; IMPUS then uses a LoRA rank of at least 16.")
    if not lora:
        return base
    if rank is None:
        frames = base.images(torch.linspace(0, 1, rppd_frames))
        base.rppd = relative_ppd(frames, distance)
        rank = lora_rank(base.rppd, base.variance_ok)
    base.rank = rank
    base.cond_adapter = _add_lora(net, rank, "impus_cond")
    try:
        losses["conditional LoRA"] = _fit_lora(denoiser, net, base.cond_adapter, z0, emb, lora_iters, lora_lr,
                                               generator, progress)
        if bias_correction:
            base.uncond_adapter = _add_lora(net, uncond_rank, "impus_uncond")
            losses["unconditional LoRA"] = _fit_lora(denoiser, net, base.uncond_adapter, z0, null.expand_as(emb),
                                                     uncond_iters, lora_lr, generator, progress)
        else:
            base.uncond_adapter = base.cond_adapter
        base.latents = ddim_invert(base.model, z0, emb, steps)
    except BaseException:
        base.remove()
        raise
    return base
