"""FlowEdit on images: tiny-flow (SD3's architecture and settings) and tiny-flux (FLUX.1-dev's), against
editing-by-inversion and SDEdit at the same start time, on 30 ground-truth edits (all three kinds);
tiny-flux's prompt accuracy and its cost per image against tiny-flow's at equal steps (28), in batches
of 60 and one image at a time; FreeInv on Flux
(w = 1 reconstruction, 20 steps) rotating the unpacked latent and rotating the grid of packed tokens
(``minidiff.PatchGridRotation``; the official code's ``TF.rotate`` of the packed tensor is neither);
and the detailed world's figures (``"detailed"``, :mod:`benchmarks.flow_detailed`) once tiny-flow-64 is shipped."""
from __future__ import annotations

import torch

import minidiff as md
from benchmarks import flow_detailed
from benchmarks.timing import seconds_per_image
from minidiff.freeinv import PATCH_GRID_ROTATIONS, ROTATIONS
from minidiff.pipelines import load_pipeline
from toy.shapes import caption, heldout_scenes, prompt_accuracy, render
from toy.shapes.editing import editing_cases
from toy.shapes.flow_editing import FLUX_SETTING, METHODS, SD3_SETTING, run_edits
from toy.tiny_models import WEIGHTS

N_EDITS, N_PROMPTS, N_RECON = 30, 120, 20
FLUX_GUIDANCE, FLOW_GUIDANCE = 3.5, 5.0  # sampling guidance: FLUX.1-dev's default; tiny-flow's (shapes benchmark)


def freeinv_figures(flux, steps: int = 20, seeds=range(3)) -> dict[str, float]:
    """w = 1 reconstruction PSNR of held-out images through tiny-flux: plain flow inversion, FreeInv with
    rotations of the unpacked latent, and with rotations of the packed token grid (mean over seeds)."""
    scenes = heldout_scenes(N_RECON, seed=300)
    images, cond = render(scenes), flux.embed([caption(s) for s in scenes])
    z0 = flux.encode(images)
    plain = md.psnr(images, flux.decode(md.flow_sample(flux, md.flow_invert(flux, z0, cond, steps), cond, steps)))
    out = {"flux_inversion_psnr": plain}
    for key, candidates in (("flux_freeinv_psnr", ROTATIONS), ("flux_freeinv_packed_psnr", PATCH_GRID_ROTATIONS)):
        values = []
        for seed in seeds:
            inv = md.freeinv_invert(flux, z0, cond, steps, candidates=candidates, generator=torch.Generator().manual_seed(seed))
            values.append(md.psnr(images, flux.decode(md.freeinv_sample(flux, inv.latent, schedule=inv.schedule, cond=cond, steps=steps))))
        out[key] = sum(values) / len(values)
    return out


def run() -> dict:
    flow, flux = load_pipeline("tiny-flow", device="cpu"), load_pipeline("tiny-flux", device="cpu")
    prompts = [caption(s) for s in heldout_scenes(N_PROMPTS, seed=1)]
    figures: dict = {"flux_prompt_acc": prompt_accuracy(md.generate(flux, prompts, guidance=FLUX_GUIDANCE, steps=FLUX_SETTING.steps), prompts)}
    # throughput in batches of 60 (what the notebooks do), and the latency of one image, where the
    # tiny transformers' per-call overhead rather than their arithmetic dominates
    for name, model, w in (("flux", flux, FLUX_GUIDANCE), ("flow", flow, FLOW_GUIDANCE)):
        figures[f"{name}_seconds_per_image"] = seconds_per_image(model, prompts[:60], w, FLUX_SETTING.steps)
        figures[f"{name}_seconds_per_image_batch1"] = seconds_per_image(model, prompts[:1], w, FLUX_SETTING.steps)
    cases = editing_cases(N_EDITS)
    for name, model, setting in (("flow", flow, SD3_SETTING), ("flux", flux, FLUX_SETTING)):
        runs = run_edits(model, cases, setting, METHODS)
        for method, result in runs.items():
            for metric, values in result.scores.items():
                figures[f"{name}_{method}_{metric}"] = float(values.mean())
                figures[f"{name}_{method}_{metric}_se"] = float(values.std(ddof=1) / len(values) ** 0.5)
        figures[f"{name}_flowedit_seconds_per_edit"] = runs["flowedit"].seconds_per_edit
        figures[f"{name}_cost_ratio"] = figures[f"{name}_flowedit_cost"] / figures[f"{name}_inversion_cost"]
    figures |= freeinv_figures(flux)
    figures["n_edits"] = N_EDITS
    figures = {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
    if all((WEIGHTS / name / "model_index.json").exists() for name in flow_detailed.MODELS.values()):
        figures["detailed"] = flow_detailed.run()
    else:
        print(f"detailed world skipped: {', '.join(flow_detailed.MODELS.values())} not shipped yet (python -m toy.train tiny-flow-64)")
    return figures
