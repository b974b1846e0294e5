"""Training recipes for the 2D MLP denoisers (seconds on a laptop CPU).

``python -m toy.train2d cond-ddpm`` reproduces the shipped weights in ``toy/weights/``; it
refuses to overwrite them unless ``--overwrite`` is given.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

RECIPE_NAMES = ("cond-ddpm",)  # the keys of RECIPES below, known before torch is imported


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of ``python -m toy.train2d``."""
    parser = argparse.ArgumentParser(prog="python -m toy.train2d", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", choices=RECIPE_NAMES, help="what to train: cond-ddpm, the class-conditional ε MLP")
    parser.add_argument("--out", type=Path, help="output folder (default: the shipped location, toy/weights/mix2d-<recipe>)")
    parser.add_argument("--overwrite", action="store_true", help="allow replacing the shipped weights (default: refuse)")
    parser.add_argument("--seed", type=int, default=0, help="seeds data, noise and initialisation (default: %(default)s)")
    return parser.parse_args(argv)


if __name__ == "__main__":  # --help and argument errors answer here, before the seconds of imports below
    parse_args()

import torch
from minidiff.progress import progress_bar

from .mixtures import ALPHAS_CUMPROD, GaussianMixture, conditional_mixture
from .mlp import MLPDenoiser

WEIGHTS = Path(__file__).parent / "weights"


def train_denoiser(
    model: MLPDenoiser,
    sample: Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor | None]],
    iters: int = 3000,
    batch: int = 512,
    lr: float = 2e-3,
    p_uncond: float = 0.2,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """Fit ``model`` by denoising score matching (ε) or flow matching (velocity).

    Args:
        model: the MLP; its ``prediction`` picks the loss.
            ε: :math:`\\|\\varepsilon_\\theta(\\sqrt{\\bar\\alpha_t}x_0 + \\sqrt{1-\\bar\\alpha_t}\\varepsilon, t) - \\varepsilon\\|^2`, t ~ U{0..999};
            velocity: :math:`\\|v_\\theta((1-t)x_0 + t\\varepsilon, t) - (\\varepsilon - x_0)\\|^2`, t ~ U(0, 1).
        sample: ``sample(n, generator) -> (x0 (n, 2), labels (n,) or None)``.
        iters, batch, lr: Adam steps, batch size and learning rate (cosine-decayed).
        p_uncond: probability of replacing a label by the null embedding (classifier-free guidance).
        seed: seeds data, noise and initialisation order.
        progress: show a progress bar.

    Returns:
        The loss of every step.
    """
    g = torch.Generator().manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 2D MLP is too small to split: extra threads only contend
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iters)
    losses = []
    model.train()
    for _ in progress_bar(range(iters), f"training {model.prediction} MLP", progress):
        x0, labels = sample(batch, g)
        eps = torch.randn(x0.shape, generator=g)
        if model.prediction == "epsilon":
            t = torch.randint(0, 1000, (batch,), generator=g)
            ab = ALPHAS_CUMPROD[t].float()[:, None]
            xt, target, t_in = ab.sqrt() * x0 + (1 - ab).sqrt() * eps, eps, t.float()
        else:
            t = torch.rand(batch, generator=g)
            xt, target, t_in = (1 - t[:, None]) * x0 + t[:, None] * eps, eps - x0, t
        cond = None
        if labels is not None:
            drop = torch.rand(batch, generator=g) < p_uncond
            cond = torch.where(drop[:, None], model.null.expand(batch, -1), model.embed(labels))
        loss = ((model(xt, t_in, cond) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    torch.set_num_threads(threads)
    return losses


def mixture_sampler(mixture: GaussianMixture):
    """An unconditional ``sample`` function for :func:`train_denoiser`."""
    return lambda n, g: (mixture.sample(n, g), None)


def conditional_sampler(classes: list[GaussianMixture]):
    """A class-conditional ``sample`` function: uniform labels, then a point of that class."""
    def sample(n, g):
        labels = torch.randint(0, len(classes), (n,), generator=g)
        x = torch.empty(n, 2)
        for k, mixture in enumerate(classes):
            idx = (labels == k).nonzero().squeeze(1)
            if len(idx):  # a class may draw no point in a small batch
                x[idx] = mixture.sample(len(idx), g)
        return x, labels
    return sample


def train_cond_ddpm(seed: int = 0, progress: bool = True) -> MLPDenoiser:
    """The class-conditional ε model of :func:`toy.mixtures.conditional_mixture` (shipped)."""
    torch.manual_seed(seed)
    model = MLPDenoiser(prediction="epsilon", num_classes=4, data_scale=4.0)
    train_denoiser(model, conditional_sampler(conditional_mixture()), iters=4000, seed=seed, progress=progress)
    return model


RECIPES = {"cond-ddpm": train_cond_ddpm}


def load(name: str) -> MLPDenoiser:
    """Load shipped 2D weights by recipe name (``toy/weights/mix2d-<name>``) through ``from_pretrained``."""
    path = WEIGHTS / f"mix2d-{name}"
    if not path.exists():
        raise FileNotFoundError(f"no shipped 2D model {name!r} at {path}; train it: python -m toy.train2d {name}")
    return MLPDenoiser.from_pretrained(path).eval()


def main(argv: list[str] | None = None) -> None:
    assert set(RECIPE_NAMES) == set(RECIPES), "RECIPE_NAMES must list the keys of RECIPES"
    args = parse_args(argv)
    out = args.out or WEIGHTS / f"mix2d-{args.recipe}"
    if out.exists() and not args.overwrite:
        raise SystemExit(f"{out} exists; pass --overwrite to replace it, or --out to write elsewhere.")
    RECIPES[args.recipe](seed=args.seed).save_pretrained(out)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
