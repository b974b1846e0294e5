"""minidiff: inversion and editing methods for diffusion and flow models, written once against a
small denoiser interface (see :mod:`minidiff.denoiser`)."""
from .ddim import ddim_invert, ddim_sample, ddim_schedulers
from .denoiser import Denoiser, GuidanceDistilledDenoiser, guided
from .flow import flow_invert, flow_sample, flow_sigmas
from .flowedit import flowedit
from .flow_baselines import inversion_edit, sdedit
from .freeinv import BranchAverage, FreeInvInversion, PatchGridRotation, PerImage, Transform, freeinv_invert, freeinv_sample, per_image_schedule
from .generate import generate
from .inversions import DirectInversion, NegativePromptInversion, direct_inversion, negative_prompt_inversion
from .nulltext import NullTextInversion, null_text_invert
from .alpha_search import PerceptualAlphas, perceptual_alphas
from .impus import ImpusMorph, MorphDenoiser, impus_guidance, impus_morph, lerp, lora_rank, slerp, textual_inversion
from .path_metrics import PathLength, PathMetrics, path_metrics, perceptual_path_length, relative_ppd
from .perceptual import Calibration, fit_calibration, growth_exponent, perceptual_distance
from .p2p import P2PEdit, p2p_sample
from .pipelines import load_pipeline, wrap
from .stats import Claims, bootstrap_se, fmt, mean_se, significant
from .tables import Table
from .metrics import (
    masked_psnr,
    mixture_w2_squared,
    mmd_rbf,
    nearest_mode_share,
    per_mode_spread,
    psnr,
    psnr_per_image,
    reconstruction_error,
    transport_cost,
    w2_squared,
)

__all__ = [
    "Denoiser", "GuidanceDistilledDenoiser", "guided", "ddim_invert", "ddim_sample", "ddim_schedulers", "flow_invert", "flow_sample",
    "flow_sigmas", "flowedit", "inversion_edit", "sdedit", "masked_psnr", "generate", "DirectInversion", "NegativePromptInversion", "direct_inversion", "negative_prompt_inversion", "NullTextInversion", "BranchAverage", "FreeInvInversion", "PatchGridRotation", "PerImage", "Transform", "per_image_schedule", "freeinv_invert", "freeinv_sample", "null_text_invert", "mixture_w2_squared", "mmd_rbf", "nearest_mode_share", "per_mode_spread",
    "psnr", "psnr_per_image", "reconstruction_error", "transport_cost", "w2_squared",
    "ImpusMorph", "MorphDenoiser", "PathLength", "PathMetrics", "PerceptualAlphas", "impus_guidance", "impus_morph", "lerp", "lora_rank",
    "path_metrics", "perceptual_alphas", "perceptual_path_length", "relative_ppd", "slerp", "textual_inversion",
    "Calibration", "fit_calibration", "growth_exponent", "perceptual_distance", "P2PEdit", "p2p_sample", "load_pipeline", "wrap", "Claims", "Table", "bootstrap_se", "fmt", "mean_se", "significant",
]
