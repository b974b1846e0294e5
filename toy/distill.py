"""Guidance distillation of tiny-flux from tiny-flow (and of tiny-flux-64 from tiny-flow-64), as FLUX.1-dev
is used (Meng et al., CVPR 2023).

The student, FLUX.1's architecture (:func:`toy.tiny_models.build_tiny_flux`), takes the guidance scale
w as an input (its guidance embedding) and learns to reproduce the teacher's classifier-free guided
velocity at that scale,

.. math:: \\min\\; \\mathbb{E}_{x_0, c, t, \\varepsilon, w}\\big\\| v_s(x_t, t, c, w) - \\big[v_T(x_t, t, \\varnothing)
          + w\\,(v_T(x_t, t, c) - v_T(x_t, t, \\varnothing))\\big]\\big\\|^2,\\qquad w \\sim U[1, 7],

on x_t = (1 − t)x_0 + tε over the same frozen VAE latents (t logit-normal, as SD3 and Flux train, then
shifted as the student's scheduler samples: by e^μ at the world's token count).
The teacher, tiny-flow (SD3's architecture, true CFG), needs two passes per sampling step; the
student one. Its text encoders (CLIP pooled + T5) are trained with it from scratch.
"""
from __future__ import annotations

import math

import torch
from diffusers import AutoencoderKL

from minidiff.pipelines import load_pipeline

from . import training
from .shapes import caption, train_scenes
from .tiny_models import TEXT_LEN, build_tiny_flux, build_tiny_flux_64

GUIDANCE_RANGE = (1.0, 7.0)


def train_tiny_flux(steps: int, batch: int, lr: float, save_every: int, seed: int = 0):
    """Distil tiny-flux from the shipped tiny-flow; checkpoints and resume under ``runs/tiny-flux``."""
    torch.manual_seed(seed)
    vae = AutoencoderKL.from_pretrained(training.WEIGHTS / "vae").eval()
    pipe = build_tiny_flux(vae, training.RUNS / "tokenizer-flux")
    scenes = train_scenes(training.N_SCENES, seed)
    # t unshifted, as the shipped tiny-flux was trained
    return _distil("tiny-flux", pipe, "tiny-flow", training.latents(vae, scenes), [caption(s) for s in scenes], 1.0,
                   steps, batch, lr, save_every, seed)


def train_tiny_flux_64(steps: int, batch: int, lr: float, save_every: int, seed: int = 0, n_scenes: int = 40_000):
    """Distil tiny-flux-64 from the shipped tiny-flow-64 on the detailed world's scenes (those tiny-sd-64 and
    tiny-flow-64 train on, and their latent cache); checkpoints and resume under ``runs/tiny-flux-64``."""
    from .detailed import caption as detailed_caption
    from .detailed import render, sample_scenes

    torch.manual_seed(seed)
    vae = AutoencoderKL.from_pretrained(training.WEIGHTS / "vae-64").eval()
    pipe = build_tiny_flux_64(vae, training.RUNS / "tokenizer-flux-64")
    scenes = sample_scenes(n_scenes, seed)
    z0 = training.latents(vae, scenes, render=render, cache=training.RUNS / "tiny-sd-64" / f"latents-{n_scenes}-{seed}.pt")
    shift = sampled_shift(pipe.scheduler.config, (z0.shape[-2] // 2) * (z0.shape[-1] // 2))
    return _distil("tiny-flux-64", pipe, "tiny-flow-64", z0, [detailed_caption(s) for s in scenes], shift, steps, batch, lr, save_every, seed)


def _distil(name: str, pipe, teacher_name: str, z0, captions: list[str], shift: float, steps: int, batch: int, lr: float,
            save_every: int, seed: int):
    """The distillation loop (module docstring): ``pipe``, the student, learns the shipped ``teacher_name``'s
    guided velocity on latents ``z0`` (N, 4, h, w) and their ``captions``, at times t = s·u / (1 + (s − 1)·u)
    for u logit-normal and s = ``shift``."""
    teacher = load_pipeline(str(training.WEIGHTS / teacher_name), device="cpu")
    for module in (teacher.transformer, teacher.pipe.text_encoder, teacher.pipe.text_encoder_2):
        module.requires_grad_(False)
    vocabulary = sorted(set(captions))
    index = torch.tensor([vocabulary.index(c) for c in captions])
    teacher_cond = teacher.embed(vocabulary)  # every caption embedded once: (embeds, pooled)
    teacher_null = teacher.null
    g = training.generator(seed)

    def loss_fn(step):
        idx = torch.randint(0, len(z0), (batch,), generator=g)
        u = torch.sigmoid(torch.randn(batch, generator=g))
        t = shift * u / (1 + (shift - 1) * u)
        w = torch.empty(batch).uniform_(*GUIDANCE_RANGE, generator=g)
        eps = torch.randn(z0[idx].shape, generator=g)
        zt = (1 - t.view(-1, 1, 1, 1)) * z0[idx] + t.view(-1, 1, 1, 1) * eps
        with torch.no_grad():
            cond = tuple(e[index[idx]] for e in teacher_cond)
            v_u = teacher(zt, t, teacher_null)
            v_c = teacher(zt, t, cond)
            target = v_u + w.view(-1, 1, 1, 1) * (v_c - v_u)
        embeds, pooled, text_ids = pipe.encode_prompt([captions[i] for i in idx.tolist()], None, device="cpu",
                                                      max_sequence_length=TEXT_LEN)
        b, c, h, w_ = zt.shape
        v = pipe.transformer(hidden_states=pipe._pack_latents(zt, b, c, h, w_), timestep=t, guidance=w,
                             pooled_projections=pooled, encoder_hidden_states=embeds, txt_ids=text_ids,
                             img_ids=pipe._prepare_latent_image_ids(b, h // 2, w_ // 2, "cpu", zt.dtype)).sample
        v = pipe._unpack_latents(v, h * pipe.vae_scale_factor, w_ * pipe.vae_scale_factor, pipe.vae_scale_factor)
        return ((v - target) ** 2).mean()

    modules = {"transformer": pipe.transformer, "text_encoder": pipe.text_encoder, "text_encoder_2": pipe.text_encoder_2}
    training.loop(name, modules, loss_fn, steps, lr, save_every)
    return pipe


def sampled_shift(config, tokens: int) -> float:
    """The time shift the student's scheduler samples with at ``tokens`` image tokens: e^μ with FLUX.1's
    μ, linear in the token count (1 for a scheduler without dynamic shifting and shift 1)."""
    if not config.get("use_dynamic_shifting"):
        return float(config.get("shift", 1.0))
    slope = (config["max_shift"] - config["base_shift"]) / (config["max_image_seq_len"] - config["base_image_seq_len"])
    return math.exp(config["base_shift"] + slope * (tokens - config["base_image_seq_len"]))
