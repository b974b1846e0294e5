"""The shapes world's key figures: tiny-sd VAE fidelity, prompt-following of both tiny models under
CFG (scored by the world's attribute reader on held-out prompts), tiny-sd sampling time, weights size;
and, under "detailed", the detailed world's reader accuracy and its VAE's round trip."""
from __future__ import annotations

import time

import torch
from diffusers import AutoencoderKL

import minidiff as md
from minidiff.pipelines import load_pipeline
from toy import detailed
from toy.shapes import caption, heldout_scenes, prompt_accuracy, render
from toy.tiny_models import WEIGHTS

N_PROMPTS = 120
SD_GUIDANCE, FLOW_GUIDANCE = 7.5, 5.0


def weights_mb() -> float:
    """Everything shipped in toy/weights: tiny-sd, tiny-flow, tiny-flux, their VAE and the 2D models."""
    return sum(p.stat().st_size for p in WEIGHTS.rglob("*") if p.is_file()) / 2**20


def run() -> dict[str, float]:
    scenes = heldout_scenes(N_PROMPTS, seed=1)
    prompts = [caption(s) for s in scenes]
    sd = load_pipeline("tiny-sd", device="cpu")
    flow = load_pipeline("tiny-flow", device="cpu")
    images = render(scenes)
    figures = {"vae_psnr": md.psnr(images, sd.decode(sd.encode(images)))}
    figures["sd_prompt_acc"] = prompt_accuracy(md.generate(sd, prompts, guidance=SD_GUIDANCE, steps=50, seed=0), prompts)
    figures["flow_prompt_acc"] = prompt_accuracy(md.generate(flow, prompts, guidance=FLOW_GUIDANCE, steps=50, seed=0), prompts)
    start = time.perf_counter()
    md.generate(sd, prompts[:1], guidance=SD_GUIDANCE, steps=50, seed=0)
    figures["sd_seconds_per_image"] = time.perf_counter() - start
    start = time.perf_counter()
    md.generate(flow, prompts[:1], guidance=FLOW_GUIDANCE, steps=50, seed=0)
    figures["flow_seconds_per_image"] = time.perf_counter() - start
    figures["weights_mb"] = weights_mb()
    out = {k: round(v, 4) for k, v in figures.items()}
    out["detailed"] = {k: round(v, 4) for k, v in detailed_figures().items()}
    return out


def detailed_figures(n: int = 300) -> dict[str, float]:
    """The detailed world: the reader's agreement with the ground truth on held-out renders (every
    attribute of a scene right), clean and degraded, and vae-64's round-trip PSNR."""
    scenes = detailed.sample_scenes(n, seed=1, split="heldout")
    images, truths = detailed.render(scenes), [detailed.truth(s) for s in scenes]
    agree = lambda x: sum(r == t for r, t in zip(detailed.read(x), truths)) / n  # noqa: E731
    figures = {"reader_acc": agree(images), "reader_acc_degraded": agree(detailed.degrade(images))}
    vae = AutoencoderKL.from_pretrained(WEIGHTS / "vae-64").eval()
    with torch.no_grad():
        figures["vae_psnr"] = md.psnr(images, vae.decode(vae.encode(images).latent_dist.mean).sample.clamp(-1, 1))
    return figures
