"""Training recipes for the shapes world's tiny models, with progress bars, checkpoints and resume.

    python -m toy.train vae          # AutoencoderKL shared by the models      (≈ 20 min on 2 cores)
    python -m toy.train tiny-sd      # UNet + CLIP text encoder, ε-prediction  (≈ 40 min, --threads 1)
    python -m toy.train tiny-flow    # SD3 transformer + 2 CLIP encoders, flow (≈ 30 min, --threads 1)
    python -m toy.train tiny-flux    # Flux transformer + CLIP + T5, guidance-distilled from tiny-flow
    python -m toy.train tiny-sd-noisy  # tiny-sd on captions that are often wrong: the paper regime
    python -m toy.train vae-64       # the detailed world's factor-4 AutoencoderKL (64² → 16×16×4)
    python -m toy.train tiny-sd-64   # SD's layout on the detailed world, in SD's regime (≈ 2 h 20 min)
    python -m toy.train tiny-flow-64 # SD3's layout on the detailed world, shift 3 (≈ 1 h)
    python -m toy.train tiny-flux-64 # FLUX.1's layout on the detailed world, distilled from tiny-flow-64

The shipped tiny-sd-64 is that run continued for 4 000 more steps at a peak learning rate of 3e-4
(≈ 1 h; measured: prompt accuracy at w = 7.5 rose from 0.28 to 0.55):

    python -m toy.train tiny-sd-64 --init-from toy/weights/tiny-sd-64 --steps 4000 --lr 3e-4 --overwrite

Checkpoints go to ``runs/<name>/checkpoint.pt`` (``$MINIDIFF_RUNS/<name>`` if set) every
``--save-every`` steps and a run resumes from there. The result is written with ``save_pretrained`` to ``toy/weights/<name>``; a run refuses
to replace shipped weights unless given ``--overwrite`` (``--out DIR`` writes elsewhere).
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

# torch, diffusers and the shapes world are imported inside the functions that use them, so that
# ``python -m toy.train --help`` answers at once instead of after seconds of imports.
from . import training

if TYPE_CHECKING:
    from diffusers import AutoencoderKL

DEFAULTS = {  # steps, batch, learning rate (the shipped weights' recipes)
    "vae": (5500, 32, 1e-3),
    "tiny-sd": (6000, 64, 1e-3),
    "tiny-flow": (6000, 64, 1e-3),
    "tiny-flux": (6000, 64, 1e-3),
    "tiny-sd-noisy": (6000, 64, 1e-3),
    "vae-64": (6000, 32, 1e-3),
    "tiny-sd-64": (8000, 64, 1e-3),
    "tiny-flow-64": (5000, 64, 1e-3),
    "tiny-flux-64": (5000, 64, 1e-3),
}
# tiny-sd-noisy: each caption word (shape, colour, background) is replaced by a random value with this
# probability, as web alt-text often names the wrong thing; p(x | c) is then broad and w = 1 follows a
# prompt far less often than with CFG, so editing needs CFG, as on Stable Diffusion.
P_WRONG_WORD = 0.25
# tiny-sd-64: the same idea on the detailed world, per named word (objects' colours and kinds, the
# background colour, a named texture); captions have 3-6 named words, so fewer are kept wrong each.
P_WRONG_WORD_64 = 0.2
N_SCENES_64 = 40_000
VAE_64_CROP = 32  # vae-64 trains on 32² windows of the 64² renders (it is fully convolutional) …
# … and then on whole images: GroupNorm's statistics span the image, so a VAE trained on windows only
# decodes whole images worse (measured: 30.6 dB on 32² windows, 25.1 dB on 64² images after 5 000 steps)
VAE_64_WHOLE_FROM = 5000  # from this step on, whole 64² renders, half the batch


def train_vae(steps: int, batch: int, lr: float, save_every: int, seed: int = 0, world: str = "fast") -> AutoencoderKL:
    """Fit the AutoencoderKL: pixel MSE + a small KL term (β = 1e-6, as in latent diffusion);
    ``world="detailed"`` fits the detailed world's factor-4 VAE on 64² scenes."""
    import torch

    from .tiny_models import build_vae, build_vae_64

    torch.manual_seed(seed)
    if world == "detailed":
        from .detailed import render, sample_scenes

        vae, scenes, name, crop = build_vae_64(), sample_scenes(N_SCENES_64, seed), "vae-64", VAE_64_CROP
    else:
        from .shapes import render, train_scenes

        vae, scenes, name, crop = build_vae(), train_scenes(training.N_SCENES, seed), "vae", None
    g = torch.Generator().manual_seed(seed)

    def loss_fn(step):
        whole = crop and step >= VAE_64_WHOLE_FROM
        idx = torch.randint(0, len(scenes), (batch // 2 if whole else batch,), generator=g)
        x = render([scenes[i] for i in idx])
        if crop and not whole:  # one random window per batch
            top, left = torch.randint(0, x.shape[-1] - crop + 1, (2,), generator=g).tolist()
            x = x[..., top:top + crop, left:left + crop]
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample(generator=g)).sample
        return ((recon - x) ** 2).mean() + 1e-6 * posterior.kl().mean()

    training.loop(name, {"vae": vae}, loss_fn, steps, lr, save_every)
    with torch.no_grad():  # SD's convention: scale latents to unit variance
        z = vae.encode(render(scenes[:512])).latent_dist.mean
    vae.register_to_config(scaling_factor=float(1 / z.std()))
    return vae


def noisy_captions(scenes, p_wrong: float, seed: int = 0) -> list[str]:
    """Captions whose shape, colour and background words are each, with probability ``p_wrong``,
    replaced by a value drawn uniformly from the others (the two colours are kept distinct)."""
    import numpy as np

    from .shapes import COLORS, KINDS

    rng = np.random.default_rng(seed)
    out = []
    for s in scenes:
        kind, color, background = s.kind, s.color, s.background
        if rng.random() < p_wrong:
            kind = rng.choice([k for k in KINDS if k != kind])
        if rng.random() < p_wrong:
            color = rng.choice([c for c in COLORS if c not in (color, background)])
        if rng.random() < p_wrong:
            background = rng.choice([c for c in COLORS if c not in (color, background)])
        out.append(f"a {color} {kind} on a {background} background")
    return out


def train_tiny_sd(steps: int, batch: int, lr: float, save_every: int, seed: int = 0, p_wrong: float = 0.0,
                  name: str = "tiny-sd"):
    """ε-prediction training of the UNet and the text encoder on frozen VAE latents (SD's recipe);
    ``p_wrong`` > 0 trains on :func:`noisy_captions`."""
    import torch
    from diffusers import AutoencoderKL

    from .shapes import caption, train_scenes
    from .tiny_models import build_tiny_sd

    torch.manual_seed(seed)
    vae = AutoencoderKL.from_pretrained(training.WEIGHTS / "vae").eval()
    pipe = build_tiny_sd(vae, training.RUNS / "tokenizer")
    scenes = train_scenes(training.N_SCENES, seed)
    captions = noisy_captions(scenes, p_wrong, seed) if p_wrong else [caption(s) for s in scenes]
    return _fit_epsilon(name, pipe, training.latents(vae, scenes), captions, steps, batch, lr, save_every, seed)


def _fit_epsilon(name: str, pipe, z0, captions: list[str], steps: int, batch: int, lr: float, save_every: int, seed: int):
    """SD's ε-prediction loss on frozen latents ``z0`` (N, 4, h, w) and their captions, with prompt
    dropout; trains the UNet and the text encoder of ``pipe`` under runs/<name>."""
    import torch

    from .tiny_models import SD_SCHEDULER

    alphas_cumprod = pipe.scheduler.alphas_cumprod
    g = training.generator(seed)

    def loss_fn(step):
        idx = torch.randint(0, len(z0), (batch,), generator=g)
        t = torch.randint(0, SD_SCHEDULER["num_train_timesteps"], (batch,), generator=g)
        eps = torch.randn(z0[idx].shape, generator=g)
        ab = alphas_cumprod[t].view(-1, 1, 1, 1)
        zt = ab.sqrt() * z0[idx] + (1 - ab).sqrt() * eps
        cond = pipe.encode_prompt(training.prompts(captions, idx, g), "cpu", 1, False)[0]
        return ((pipe.unet(zt, t, encoder_hidden_states=cond).sample - eps) ** 2).mean()

    training.loop(name, {"unet": pipe.unet, "text_encoder": pipe.text_encoder}, loss_fn, steps, lr, save_every)
    return pipe


def train_tiny_sd_noisy(steps: int, batch: int, lr: float, save_every: int, seed: int = 0):
    """tiny-sd's recipe on captions with wrong words (:data:`P_WRONG_WORD`): the paper's regime."""
    return train_tiny_sd(steps, batch, lr, save_every, seed, p_wrong=P_WRONG_WORD, name="tiny-sd-noisy")


def noisy_detailed_captions(scenes, p_wrong: float, seed: int = 0) -> list[str]:
    """Detailed-world captions whose named words (each object's colour and kind, the background colour,
    a named texture) are each, with probability ``p_wrong``, replaced by another valid value (the
    colours of one caption kept distinct). Only the words change: the scene is not re-rendered."""
    import numpy as np

    from .detailed import COLORS, KINDS, TEXTURES, Described, caption_from, describe

    rng = np.random.default_rng(seed)
    out = []
    for s in scenes:
        d = describe(s)
        objects = [list(o) for o in d.objects]
        background = d.background
        for o in objects:
            if rng.random() < p_wrong:
                o[1] = rng.choice([k for k in KINDS if k != o[1]])
            if rng.random() < p_wrong:
                o[0] = rng.choice([c for c in COLORS if c not in {x[0] for x in objects} | {background}])
        if rng.random() < p_wrong:
            background = rng.choice([c for c in COLORS if c not in {x[0] for x in objects} | {background}])
        texture = d.texture
        if texture is not None and rng.random() < p_wrong:
            texture = rng.choice([t for t in TEXTURES if t != texture])
        out.append(caption_from(Described(tuple((str(c), str(k)) for c, k in objects), str(background), texture and str(texture))))
    return out


def train_tiny_sd_64(steps: int, batch: int, lr: float, save_every: int, seed: int = 0):
    """tiny-sd's recipe on the detailed world: frozen vae-64 latents, captions with wrong words
    (:data:`P_WRONG_WORD_64`) and prompt dropout, so that w = 1 follows prompts poorly and CFG well."""
    import torch
    from diffusers import AutoencoderKL

    from .detailed import render, sample_scenes
    from .tiny_models import build_tiny_sd_64

    torch.manual_seed(seed)
    vae = AutoencoderKL.from_pretrained(training.WEIGHTS / "vae-64").eval()
    pipe = build_tiny_sd_64(vae, training.RUNS / "tokenizer-64")
    scenes = sample_scenes(N_SCENES_64, seed)
    captions = noisy_detailed_captions(scenes, P_WRONG_WORD_64, seed)
    z0 = training.latents(vae, scenes, render=render, cache=training.RUNS / "tiny-sd-64" / f"latents-{N_SCENES_64}-{seed}.pt")
    return _fit_epsilon("tiny-sd-64", pipe, z0, captions, steps, batch, lr, save_every, seed)


def train_tiny_flow(steps: int, batch: int, lr: float, save_every: int, seed: int = 0):
    """Rectified-flow training of tiny-flow's transformer and both text encoders on frozen VAE latents
    (:func:`_fit_flow`)."""
    import torch
    from diffusers import AutoencoderKL

    from .shapes import caption, train_scenes
    from .tiny_models import build_tiny_flow

    torch.manual_seed(seed)
    vae = AutoencoderKL.from_pretrained(training.WEIGHTS / "vae").eval()
    pipe = build_tiny_flow(vae, training.RUNS / "tokenizer")
    scenes = train_scenes(training.N_SCENES, seed)
    return _fit_flow("tiny-flow", pipe, training.latents(vae, scenes), [caption(s) for s in scenes], steps, batch, lr, save_every, seed)


def train_tiny_flow_64(steps: int, batch: int, lr: float, save_every: int, seed: int = 0):
    """tiny-flow's recipe on the detailed world: SD3's layout on frozen vae-64 latents (the scenes and
    latent cache tiny-sd-64 trains on), exact captions, prompt dropout, timesteps shifted as sampled."""
    import torch
    from diffusers import AutoencoderKL

    from .detailed import caption, render, sample_scenes
    from .tiny_models import build_tiny_flow_64

    torch.manual_seed(seed)
    vae = AutoencoderKL.from_pretrained(training.WEIGHTS / "vae-64").eval()
    pipe = build_tiny_flow_64(vae, training.RUNS / "tokenizer-64")
    scenes = sample_scenes(N_SCENES_64, seed)
    z0 = training.latents(vae, scenes, render=render, cache=training.RUNS / "tiny-sd-64" / f"latents-{N_SCENES_64}-{seed}.pt")
    return _fit_flow("tiny-flow-64", pipe, z0, [caption(s) for s in scenes], steps, batch, lr, save_every, seed)


def _fit_flow(name: str, pipe, z0, captions: list[str], steps: int, batch: int, lr: float, save_every: int, seed: int):
    """SD3's recipe: u ~ logit-normal, σ = shift·u / (1 + (shift − 1)·u) (the scheduler's shift, so that
    training sees the noise levels sampling visits), z_σ = (1 − σ) z0 + σ ε, target ε − z0."""
    import torch

    from .tiny_models import TEXT_LEN

    shift = pipe.scheduler.config.shift
    g = training.generator(seed)

    def loss_fn(step):
        idx = torch.randint(0, len(z0), (batch,), generator=g)
        u = torch.sigmoid(torch.randn(batch, generator=g))
        t = (shift * u / (1 + (shift - 1) * u)).view(-1, 1, 1, 1)
        eps = torch.randn(z0[idx].shape, generator=g)
        zt = (1 - t) * z0[idx] + t * eps
        embeds, _, pooled, _ = pipe.encode_prompt(training.prompts(captions, idx, g), None, None, device="cpu",
                                                  do_classifier_free_guidance=False, max_sequence_length=TEXT_LEN)
        v = pipe.transformer(hidden_states=zt, timestep=t.flatten() * 1000, encoder_hidden_states=embeds,
                             pooled_projections=pooled).sample
        return ((v - (eps - z0[idx])) ** 2).mean()

    modules = {"transformer": pipe.transformer, "text_encoder": pipe.text_encoder, "text_encoder_2": pipe.text_encoder_2}
    training.loop(name, modules, loss_fn, steps, lr, save_every)
    return pipe


def train_tiny_flux(steps: int, batch: int, lr: float, save_every: int, seed: int = 0):
    """Guidance distillation of the Flux-architecture student from tiny-flow (:mod:`toy.distill`)."""
    from .distill import train_tiny_flux as distil

    return distil(steps, batch, lr, save_every, seed)


def train_tiny_flux_64(steps: int, batch: int, lr: float, save_every: int, seed: int = 0):
    """Guidance distillation of tiny-flux-64 from tiny-flow-64 (:mod:`toy.distill`)."""
    from .distill import train_tiny_flux_64 as distil

    return distil(steps, batch, lr, save_every, seed, n_scenes=N_SCENES_64)


def train_vae_64(steps: int, batch: int, lr: float, save_every: int, seed: int = 0):
    """The detailed world's VAE (:func:`train_vae` with ``world="detailed"``)."""
    return train_vae(steps, batch, lr, save_every, seed, world="detailed")


RECIPES = {"vae": train_vae, "tiny-sd": train_tiny_sd, "tiny-flow": train_tiny_flow, "tiny-flux": train_tiny_flux,
           "tiny-sd-noisy": train_tiny_sd_noisy, "vae-64": train_vae_64, "tiny-sd-64": train_tiny_sd_64,
           "tiny-flow-64": train_tiny_flow_64, "tiny-flux-64": train_tiny_flux_64}


def save(model, out: Path) -> None:
    """save_pretrained into ``out`` through a temporary folder, so a failed save leaves no half model."""
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def _per_recipe(i: int) -> str:
    return ", ".join(f"{values[i]:g} for {recipe}" for recipe, values in DEFAULTS.items())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; parsed before torch is imported, so ``--help`` is immediate."""
    parser = argparse.ArgumentParser(prog="python -m toy.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", choices=sorted(RECIPES), help="what to train (tiny-sd and tiny-flow need the VAE first, tiny-flux needs tiny-flow)")
    parser.add_argument("--steps", type=int, help=f"optimiser steps (default: {_per_recipe(0)})")
    parser.add_argument("--batch", type=int, help=f"batch size (default: {_per_recipe(1)})")
    parser.add_argument("--lr", type=float, help=f"peak learning rate of AdamW, after 200 warm-up steps, cosine-decayed (default: {_per_recipe(2)})")
    parser.add_argument("--save-every", type=int, default=250, help="write runs/<recipe>/checkpoint.pt every N steps (default: %(default)s)")
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    parser.add_argument("--out", type=Path, help="output folder (default: toy/weights/<recipe>)")
    parser.add_argument("--overwrite", action="store_true", help="allow replacing shipped weights (default: refuse)")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in runs/<recipe> (default: resume from it)")
    parser.add_argument("--init-from", type=Path, help="start from these saved weights (e.g. toy/weights/<recipe>) instead of a random "
                                                       "initialisation, with a new learning-rate schedule and fresh batches: training longer "
                                                       "(default: none, a random initialisation)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = args.out or training.WEIGHTS / args.recipe
    if out.exists() and not args.overwrite:
        raise SystemExit(f"{out} exists; pass --overwrite to replace it, or --out to write elsewhere.")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.fresh:
        shutil.rmtree(training.RUNS / args.recipe, ignore_errors=True)
    if args.init_from:
        if not (args.init_from / "model_index.json").exists():
            raise SystemExit(f"--init-from {args.init_from}: expected a saved pipeline's folder (with model_index.json)")
        training.INIT = args.init_from
    steps, batch, lr = DEFAULTS[args.recipe]
    model = RECIPES[args.recipe](args.steps or steps, args.batch or batch, args.lr or lr, args.save_every)
    save(model, out)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
