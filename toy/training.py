"""The training loop every recipe shares: AdamW with warm-up and cosine decay, checkpoints and
resume under ``runs/<name>`` (``$MINIDIFF_RUNS/<name>`` if set), frozen VAE latents computed once
and cached, and prompt dropout. :mod:`toy.train` (the recipes and their command line) and
:mod:`toy.distill` both import it, and it imports neither.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from diffusers import AutoencoderKL

RUNS = Path(os.environ.get("MINIDIFF_RUNS", Path(__file__).resolve().parents[1] / "runs"))
WEIGHTS = Path(__file__).resolve().parent / "weights"  # the shipped models (toy.tiny_models.WEIGHTS)
N_SCENES = 20_000  # the fast world's training scenes (latents are computed once)
P_UNCOND = 0.1     # prompt dropout: the empty prompt teaches the model ∅ for classifier-free guidance
#: weights to start from instead of the recipe's random initialisation (``python -m toy.train … --init-from``):
#: a saved pipeline's folder, whose sub-folders are named as the trained modules
INIT: Path | None = None


def generator(seed: int) -> "torch.Generator":
    """The stream of batches, timesteps and noise: the recipe's ``seed``, or a fresh stream when the run
    starts from :data:`INIT`, so that it does not replay the draws those weights were trained on."""
    import torch

    return torch.Generator().manual_seed(seed if INIT is None else seed + 1)


def initialise(modules: dict) -> None:
    """Load each module's weights from ``INIT/<name>`` (the same classes, the same shapes)."""
    for name, m in modules.items():
        saved = type(m).from_pretrained(INIT / name)
        m.load_state_dict(saved.state_dict())
    print(f"initialised {', '.join(modules)} from {INIT}")


def checkpoint(path: Path, modules: dict, opt, step: int) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "opt": opt.state_dict(), **{k: m.state_dict() for k, m in modules.items()}}, tmp)
    tmp.replace(path)


def resume(path: Path, modules: dict, opt) -> int:
    if not path.exists():
        return 0
    import torch

    state = torch.load(path, weights_only=True)
    for k, m in modules.items():
        m.load_state_dict(state[k])
    opt.load_state_dict(state["opt"])
    print(f"resumed {path} at step {state['step']}")
    return state["step"]


def loop(name: str, modules: dict, loss_fn, steps: int, lr: float, save_every: int) -> None:
    """Adam(W) with warm-up and cosine decay, checkpointing and resuming under runs/<name>."""
    import torch
    from tqdm.auto import tqdm

    params = [p for m in modules.values() for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    ckpt = RUNS / name / "checkpoint.pt"
    if INIT is not None and not ckpt.exists():
        initialise(modules)
    start = resume(ckpt, modules, opt)
    for m in modules.values():
        m.train()
    bar = tqdm(range(start, steps), desc=f"training {name}", initial=start, total=steps)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 200) * 0.5 * (1 + math.cos(math.pi * step / steps))
        loss = loss_fn(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % save_every == 0 or step + 1 == steps:
            checkpoint(ckpt, modules, opt, step + 1)
    for m in modules.values():
        m.eval()


def latents(vae: AutoencoderKL, scenes, chunk: int = 500, render=None, cache: Path | None = None) -> torch.Tensor:
    """Scaled VAE latents of ``scenes`` (rendered by ``render``, the fast world's by default), read from
    ``cache`` when it holds them and written there otherwise, so that a resumed run does not re-encode."""
    import torch
    from tqdm.auto import tqdm

    if render is None:
        from .shapes import render

    if cache is not None and cache.exists():
        z = torch.load(cache, weights_only=True)
        if len(z) == len(scenes):
            return z
    with torch.no_grad():
        z = [vae.encode(render(scenes[i:i + chunk])).latent_dist.mean for i in tqdm(range(0, len(scenes), chunk), desc="encoding scenes")]
        z = torch.cat(z) * vae.config.scaling_factor
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(z, cache.with_suffix(".tmp"))
        cache.with_suffix(".tmp").replace(cache)
    return z


def prompts(captions: list[str], idx: torch.Tensor, g: torch.Generator) -> list[str]:
    import torch

    drop = torch.rand(len(idx), generator=g) < P_UNCOND
    return ["" if d else captions[i] for i, d in zip(idx.tolist(), drop.tolist())]
