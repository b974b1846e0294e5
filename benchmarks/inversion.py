"""Inversion figures on tiny-sd (held-out shapes images, 50 steps unless named): DDIM at w = 1 and
7.5, null-text (per-step and global), FreeInv vs DDIM over 10/20/50 steps, P2P edits from null-text and
from DDIM at w = 1 under the editing benchmark's protocol, and the costs."""
from __future__ import annotations

import time

import numpy as np
import torch

import minidiff as md
from minidiff.pipelines import load_pipeline
from toy.shapes.inversion_editing import evaluate
from toy.shapes import caption, heldout_scenes, render
from toy.shapes.editing import editing_cases

N_IMAGES, STEPS, GUIDANCE = 20, 50, 7.5


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run() -> dict:
    model = load_pipeline("tiny-sd", device="cpu")
    model.unet.requires_grad_(False)  # null-text optimises ∅ only: no gradients for the weights
    scenes = heldout_scenes(N_IMAGES, seed=100)
    images, prompts = render(scenes), [caption(s) for s in scenes]
    z0, cond, null = model.encode(images), model.embed(prompts), model.null
    decode_psnr = lambda z: md.psnr(images, model.decode(z))  # noqa: E731

    zT_1, ddim_seconds = _timed(lambda: md.ddim_invert(model, z0, cond, STEPS))
    zT_75 = md.ddim_invert(model, z0, cond, STEPS, GUIDANCE, null)
    nti, nti_seconds = _timed(lambda: md.null_text_invert(model, z0, cond, null=null, steps=STEPS, guidance=GUIDANCE))
    glob = md.null_text_invert(model, z0, cond, null=null, steps=STEPS, guidance=GUIDANCE, per_step=False)
    figures = {
        "vae_psnr": md.psnr(images, model.decode(z0)),
        "ddim_w1_psnr": decode_psnr(md.ddim_sample(model, zT_1, cond, STEPS)),
        "ddim_w7_5_psnr": decode_psnr(md.ddim_sample(model, zT_75, cond, STEPS, GUIDANCE, null)),
        "nti_psnr": decode_psnr(md.ddim_sample(model, nti.latent, cond, STEPS, GUIDANCE, nti.nulls)),
        "nti_global_psnr": decode_psnr(md.ddim_sample(model, glob.latent, cond, STEPS, GUIDANCE, glob.nulls)),
        "nti_seconds_per_image": nti_seconds / N_IMAGES,
        "nti_mean_inner_iters": float(np.mean(nti.inner_iters)),
    }

    figures["ddim_psnr"], figures["freeinv_psnr"] = {}, {}
    ddim_time = freeinv_time = 0.0
    for steps in (10, 20, 50):
        zD, t_d = _timed(lambda: md.ddim_invert(model, z0, cond, steps))
        inv, t_f = _timed(lambda: md.freeinv_invert(model, z0, cond, steps, generator=torch.Generator().manual_seed(0)))
        ddim_time, freeinv_time = ddim_time + t_d, freeinv_time + t_f
        figures["ddim_psnr"][str(steps)] = round(decode_psnr(md.ddim_sample(model, zD, cond, steps)), 3)
        figures["freeinv_psnr"][str(steps)] = round(decode_psnr(md.freeinv_sample(model, inv.latent, schedule=inv.schedule, cond=cond, steps=steps)), 3)
    figures["ddim_invert_seconds"], figures["freeinv_invert_seconds"] = ddim_time, freeinv_time

    # P2P under the editing benchmark's protocol (benchmarks/editing.py): its 30 cases, null-text at
    # w = 7.5 against DDIM at w = 1 edited at w = 1 (the strongest DDIM baseline there).
    cases = editing_cases(30)
    results = evaluate(model, cases, [("nti", "p2p"), ("ddim_w1", "p2p")], STEPS, GUIDANCE)
    for key, name in (("nti", "nti"), ("ddim", "ddim_w1")):
        scores = results[name, "p2p"]["scores"]
        figures[f"p2p_{key}_background_psnr"] = float(scores["bg_psnr"].mean())
        figures[f"p2p_{key}_edit_acc"] = float(scores["edit_acc"].mean())
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items()}
