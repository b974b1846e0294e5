"""Each model family's settings, as the papers use them at full scale, keyed by family.

An image lesson reads its settings from here through :func:`settings_for` (``MODEL`` in its
``parameters`` cell), so switching a notebook from a shipped tiny model to Stable Diffusion 1.5, SD3 or
FLUX.1-dev changes one name. The full-scale rows are the papers' published settings
(``../shared/PAPERS.md``); the tiny rows are what the course runs on a CPU.

Keys of a row:

* ``model``: the hub id or shipped name; ``family``: "sd15", "sd3" or "flux";
* ``resolution`` (pixels), ``steps`` (T), ``guidance`` (CFG w, or Flux's embedded guidance);
* ``nti_inner_steps``: null-text inversion's N (SD only);
* ``flowedit``: FlowEdit's ``n_max``, ``n_avg`` and the source / target guidance (flow models only);
* ``impus``: IMPUS's textual-inversion and LoRA iterations (SD only);
* ``batch``: images per model call in the lessons (the tiny models: all at once, ``None``; at full
  scale a few, to bound GPU memory);
* ``dtype``: the sampling dtype on a GPU ("float16", "bfloat16"; optimisation always runs in float32);
* ``shapes_world``: True for the shipped tiny models, which were trained on the shapes world: only
  there do the lessons assert the world's checks (the attribute reader's accuracy, scores against
  ground-truth edits). On any other model the lessons still measure them, print them, and say why
  they are not asserted.
"""
from __future__ import annotations

import json
from pathlib import Path

FULL_SCALE: dict[str, dict] = {
    "sd15": {
        "model": "stable-diffusion-v1-5/stable-diffusion-v1-5", "family": "sd15", "resolution": 512,
        "steps": 50, "guidance": 7.5, "nti_inner_steps": 10,
        # the official run_morph.py: 2 500 textual-inversion steps per image, 150 LoRA and 15
        # unconditional-LoRA iterations (both images each); it inverts with 250 DDIM steps and samples
        # with 16, where minidiff.impus_morph uses one step count, ``steps``
        "impus": {"ti_iters": 2500, "lora_iters": 150, "uncond_iters": 15},
        "dtype": "float16", "batch": 4, "shapes_world": False,
    },
    "sd3": {
        "model": "stabilityai/stable-diffusion-3-medium-diffusers", "family": "sd3", "resolution": 1024,
        "steps": 50, "guidance": 7.0,
        "flowedit": {"n_max": 33, "n_avg": 1, "source_guidance": 3.5, "target_guidance": 13.5},
        "dtype": "float16", "batch": 2, "shapes_world": False,
    },
    "flux": {
        "model": "black-forest-labs/FLUX.1-dev", "family": "flux", "resolution": 1024,
        "steps": 28, "guidance": 3.5,
        "flowedit": {"n_max": 24, "n_avg": 1, "source_guidance": 1.5, "target_guidance": 5.5},
        # fp16 overflows in FLUX.1-dev's activations and gives NaN images
        "dtype": "bfloat16", "batch": 2, "shapes_world": False,
    },
}

_TINY = {"resolution": 32, "dtype": "float32", "shapes_world": True, "batch": None}
TINY: dict[str, dict] = {
    "tiny-sd": FULL_SCALE["sd15"] | _TINY | {"model": "tiny-sd"},
    "tiny-sd-noisy": FULL_SCALE["sd15"] | _TINY | {"model": "tiny-sd-noisy"},
    # tiny-flow's scheduler has shift 1 (SD3-medium: 3 at 1024², 4 096 tokens; SD3 grows the shift with the token
    # count, and tiny-flow has 64), so n_max = 33 of 50 starts FlowEdit at σ = 0.66 instead of SD3's ≈ 0.85
    "tiny-flow": FULL_SCALE["sd3"] | _TINY | {"model": "tiny-flow", "guidance": 5.0},
    "tiny-flux": FULL_SCALE["flux"] | _TINY | {"model": "tiny-flux"},
    # the detailed world's model (64² images, 16×16 latents): not the fast world the lessons' asserted
    # checks are facts of, so a lesson treats it as it treats a full-scale model
    "tiny-sd-64": FULL_SCALE["sd15"] | _TINY | {"model": "tiny-sd-64", "resolution": 64, "shapes_world": False},
    # SD3's layout on the detailed world (64 image tokens) with SD3-medium's shift 3 (toy.tiny_models.FLOW_64_SHIFT),
    # so n_max = 33 of 50 starts FlowEdit at SD3's σ ≈ 0.85; SD3's guidance and FlowEdit settings as published
    "tiny-flow-64": FULL_SCALE["sd3"] | _TINY | {"model": "tiny-flow-64", "resolution": 64, "shapes_world": False},
    # FLUX.1-dev's layout on the detailed world, its dynamic shift scaled to 64 tokens (toy.tiny_models.FLUX_64_SCHEDULER)
    "tiny-flux-64": FULL_SCALE["flux"] | _TINY | {"model": "tiny-flux-64", "resolution": 64, "shapes_world": False},
}
#: the pipeline class named in a ``model_index.json`` → its family
PIPELINE_FAMILY = {"StableDiffusionPipeline": "sd15", "StableDiffusion3Pipeline": "sd3", "FluxPipeline": "flux"}


def settings_for(model: str) -> dict:
    """The settings row of ``model``: a family ("sd15", "sd3", "flux"), its hub id, a shipped tiny
    model's name, or a local ``save_pretrained`` folder (its family read from ``model_index.json``,
    with that family's full-scale settings and ``model`` the folder). Raises a ValueError naming the
    choices for anything else."""
    if model in FULL_SCALE:
        return dict(FULL_SCALE[model])
    if model in TINY:
        return dict(TINY[model])
    for row in FULL_SCALE.values():
        if row["model"] == model:
            return dict(row)
    index = Path(model).expanduser() / "model_index.json"
    if index.is_file():
        name = json.loads(index.read_text()).get("_class_name")
        if name not in PIPELINE_FAMILY:
            raise ValueError(f"{model} holds a {name}; the lessons run {', '.join(PIPELINE_FAMILY)} pipelines.")
        return dict(FULL_SCALE[PIPELINE_FAMILY[name]]) | {"model": str(model)}
    raise ValueError(f"no settings for {model!r}: choose a family ({', '.join(FULL_SCALE)}), one of their hub ids "
                     f"({', '.join(r['model'] for r in FULL_SCALE.values())}) or a shipped model ({', '.join(TINY)}), or a local save_pretrained folder.")
