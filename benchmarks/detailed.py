"""The editing benchmark on the detailed world (``"detailed"`` in ``python benchmarks/run.py editing``):
every inversion × editor on 32 ground-truth edits (8 of each kind) of tiny-sd-64 at 50 steps, its
regime (prompt accuracy at w = 1 and 7.5, on seen and held-out combinations), reconstruction, the
reader, LocalBlend's mask and the edited words' cross-attention against the true change, FreeInv
against DDIM at w = 1, and the guidance sweep."""
from __future__ import annotations

import numpy as np
import torch

import minidiff as md
from benchmarks.editing import pair_figures
from minidiff.freeinv import FLIPS, ROTATIONS
from minidiff.pipelines import load_pipeline
from toy.detailed import caption, object_coverage, parse_caption, prompt_accuracy, read, render, sample_scenes, truth
from toy.detailed.editing import change_masks, editing_cases
from toy.shapes.inversion_editing import EDITORS, FREEINV_INVERSIONS, GUIDANCE, INVERSIONS, STEPS, evaluate, guidance_sweep, sweep_rows

MODEL = "tiny-sd-64"
N_PROMPTS = 64  # prompts per prompt-accuracy figure
N_READER = 300  # held-out renders the reader is scored on
N_RECON = 24  # held-out images of the FreeInv comparison
FREEINV_STEPS = (10, 20)


def run(model: str = MODEL, n: int = 32, steps: int = STEPS, inversions=INVERSIONS + FREEINV_INVERSIONS, editors=tuple(EDITORS),
        guidances=None, n_prompts: int = N_PROMPTS, n_recon: int = N_RECON, n_reader: int = N_READER) -> dict:
    """The ``"detailed"`` figures; ``guidances`` (the sweep's, default ``SWEEP_GUIDANCES``)."""
    pipe = load_pipeline(model, device="cpu")
    pipe.unet.requires_grad_(False)  # null-text optimises ∅ only
    cases = editing_cases(n)
    pairs = [(i, e) for i in inversions for e in editors]
    results = evaluate(pipe, cases, pairs, steps)
    figures = {"model": model, "n_edits": n, "steps": steps} | pair_figures(results, cases)
    sources = render([c.source for c in cases])
    figures["vae_psnr"] = round(md.psnr(sources, pipe.decode(pipe.encode(sources))), 3)
    for name in ("ddim_w1", "ddim_w7_5", "nti"):
        if f"{name}_source_psnr" in figures:
            figures[f"{name}_recon_psnr"] = figures[f"{name}_source_psnr"]
    figures |= regime(pipe, n_prompts, steps)
    figures["reader_acc"] = reader_accuracy(n_reader)
    figures |= localisation(results, cases)
    figures |= freeinv_figures(pipe, n_recon)
    figures["paired"] = paired_figures(results)
    figures["expectations"] = expectations(figures)
    sweep = guidance_sweep(pipe, cases, *(() if guidances is None else (guidances,)), steps=steps, known={GUIDANCE: results})
    figures["guidance_sweep"] = [{k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()} for row in sweep_rows(sweep)]
    return figures


#: the paired differences the pre-registered expectations rest on: (name, (inversion, editor), (inversion, editor))
PAIRED = (
    ("nti_vs_ddim_w1_cfg_p2p", ("nti", "p2p"), ("ddim_w1_cfg", "p2p")),
    ("direct_vs_nti_p2p", ("direct", "p2p"), ("nti", "p2p")),
    ("nti_p2p_lb_vs_p2p", ("nti", "p2p_lb"), ("nti", "p2p")),
    ("nti_p2p_lb16_vs_p2p", ("nti", "p2p_lb16"), ("nti", "p2p")),
    ("nti_p2p_lb8_vs_p2p", ("nti", "p2p_lb8"), ("nti", "p2p")),
    ("freeinv_vs_ddim_w1_cfg_p2p", ("freeinv", "p2p"), ("ddim_w1_cfg", "p2p")),
    ("freeinv_flips_vs_ddim_w1_cfg_p2p", ("freeinv_flips", "p2p"), ("ddim_w1_cfg", "p2p")),
)


def paired_figures(results: dict) -> dict:
    """{name: {metric: mean, metric_se: s.e.}} of the paired per-edit differences in :data:`PAIRED`
    (those whose pairs were run), for background PSNR and edit accuracy."""
    out = {}
    for name, a, b in PAIRED:
        if a in results and b in results:
            out[name] = {}
            for metric in ("bg_psnr", "edit_acc"):
                d = results[a]["scores"][metric] - results[b]["scores"][metric]
                out[name][metric], out[name][f"{metric}_se"] = (round(v, 3) for v in md.mean_se(d))
    return out


def expectations(f: dict) -> list[dict]:
    """Issue 17's pre-registered expectations (§4), each with what was measured and a computed verdict
    ("holds" only when every part holds: a mean meets its threshold, and a claimed paired difference also
    lies more than two standard errors from zero). Expectations whose figures were not run are left out."""
    p = f.get("paired", {})
    rows = []

    def add(text, holds, measured):
        rows.append({"expectation": text, "holds": bool(holds), "measured": measured})

    if {"vae_psnr", "ddim_w1_recon_psnr", "ddim_w7_5_recon_psnr"} <= set(f):
        add("1. DDIM at w = 1 reconstructs within 1 dB of the VAE bound, and ≥ 5 dB worse at w = 7.5",
            f["vae_psnr"] - f["ddim_w1_recon_psnr"] <= 1 and f["ddim_w1_recon_psnr"] - f["ddim_w7_5_recon_psnr"] >= 5,
            f"VAE {f['vae_psnr']:.1f}, w=1 {f['ddim_w1_recon_psnr']:.1f}, w=7.5 {f['ddim_w7_5_recon_psnr']:.1f} dB")
    if {"vae_psnr", "nti_recon_psnr"} <= set(f):
        add("2. null-text reconstructs at w = 7.5 within 1 dB of the VAE bound", f["vae_psnr"] - f["nti_recon_psnr"] <= 1,
            f"VAE {f['vae_psnr']:.1f}, null-text {f['nti_recon_psnr']:.1f} dB")
    if (d := p.get("nti_vs_ddim_w1_cfg_p2p")):
        add("3. null-text + P2P keeps ≥ 3 dB more background than DDIM(w=1) + P2P at 7.5, edit accuracy ≥ 0.05 below at worst",
            d["bg_psnr"] >= 3 and d["bg_psnr"] > 2 * d["bg_psnr_se"] and d["edit_acc"] >= -0.05,
            f"Δ bg {d['bg_psnr']:+.1f} ± {d['bg_psnr_se']:.1f} dB, Δ acc {d['edit_acc']:+.2f} ± {d['edit_acc_se']:.2f}")
    if (d := p.get("direct_vs_nti_p2p")) and {"direct_seconds_per_edit", "nti_seconds_per_edit"} <= set(f):
        cost = f["direct_seconds_per_edit"] / f["nti_seconds_per_edit"]
        add("4. Direct Inversion + P2P is at least as good as null-text + P2P, at a fraction of its cost",
            d["bg_psnr"] + 2 * d["bg_psnr_se"] >= 0 and d["edit_acc"] + 2 * d["edit_acc_se"] >= 0 and cost < 1,
            f"Δ bg {d['bg_psnr']:+.1f} ± {d['bg_psnr_se']:.1f} dB, Δ acc {d['edit_acc']:+.2f} ± {d['edit_acc_se']:.2f}, cost {cost:.2f}×")
    if "word_map_mass_ratio" in f:
        add("5. the edited words' cross-attention puts ≥ 2× its area share of mass inside the true object",
            f["word_map_mass_ratio"] >= 2,
            f"{f['word_map_mass_ratio']:.2f} ± {f['word_map_mass_ratio_se']:.2f}×")
    if "nti_p2p_lb_mask_iou" in f and (d := p.get("nti_p2p_lb_vs_p2p")):
        add("6. LocalBlend's mask has IoU ≥ 0.5 with the true change and raises background PSNR by ≥ 2 dB",
            f["nti_p2p_lb_mask_iou"] >= 0.5 and d["bg_psnr"] >= 2 and d["bg_psnr"] > 2 * d["bg_psnr_se"],
            f"IoU {f['nti_p2p_lb_mask_iou']:.2f}, Δ bg {d['bg_psnr']:+.1f} ± {d['bg_psnr_se']:.1f} dB")
    if "nti_p2p_lb16_mask_iou" in f and (d := p.get("nti_p2p_lb16_vs_p2p")):
        add("6b. (design change: LocalBlend on the finest maps up to 16×16) the same two thresholds",
            f["nti_p2p_lb16_mask_iou"] >= 0.5 and d["bg_psnr"] >= 2 and d["bg_psnr"] > 2 * d["bg_psnr_se"],
            f"IoU {f['nti_p2p_lb16_mask_iou']:.2f}, Δ bg {d['bg_psnr']:+.1f} ± {d['bg_psnr_se']:.1f} dB")
    if "nti_p2p_lb8_mask_iou" in f and (d := p.get("nti_p2p_lb8_vs_p2p")):
        add("6c. (design change: LocalBlend on the 8×8 maps, where the words' attention localises) the same two thresholds",
            f["nti_p2p_lb8_mask_iou"] >= 0.5 and d["bg_psnr"] >= 2 and d["bg_psnr"] > 2 * d["bg_psnr_se"],
            f"IoU {f['nti_p2p_lb8_mask_iou']:.2f}, Δ bg {d['bg_psnr']:+.1f} ± {d['bg_psnr_se']:.1f} dB")
    for key, label in (("freeinv", "flips"), ("freeinv_rot", "the paper's rotations")):
        if f"{key}_gain_10" in f:
            gains = [(f[f"{key}_gain_{t}"], f[f"{key}_gain_{t}_se"]) for t in FREEINV_STEPS]
            add(f"7. FreeInv ({label}) raises DDIM's reconstruction PSNR at 10 and 20 steps by > 2 s.e.",
                all(g > 2 * se for g, se in gains), ", ".join(f"{t}: {g:+.2f} ± {se:.2f} dB" for t, (g, se) in zip(FREEINV_STEPS, gains)))
    for key, label in (("freeinv_vs_ddim_w1_cfg_p2p", "rotations"), ("freeinv_flips_vs_ddim_w1_cfg_p2p", "flips")):
        if (d := p.get(key)):
            add(f"7b. FreeInv ({label}) + P2P at 7.5 keeps more background than DDIM(w=1) + P2P at 7.5",
                d["bg_psnr"] > 2 * d["bg_psnr_se"], f"Δ bg {d['bg_psnr']:+.1f} ± {d['bg_psnr_se']:.1f} dB, Δ acc {d['edit_acc']:+.2f}")
    return rows


def regime(pipe, n_prompts: int = N_PROMPTS, steps: int = STEPS) -> dict:
    """Prompt accuracy (:func:`toy.detailed.prompt_accuracy`) of samples at w = 1 and 7.5 on held-out
    scenes' captions (seen combinations, new hidden factors) and on the unseen split's (combinations
    never in training)."""
    prompts = {split: [caption(s) for s in sample_scenes(n_prompts, seed=1, split=split)] for split in ("heldout", "unseen")}
    out = {}
    for split, key in (("heldout", "prompt_acc"), ("unseen", "prompt_acc_unseen")):
        for w, suffix in ((1.0, "w1"), (GUIDANCE, "w7_5")):
            images = md.generate(pipe, prompts[split], guidance=w, steps=steps)
            out[f"{key}_{suffix}"] = round(prompt_accuracy(images, prompts[split]), 3)
            if split == "heldout" and w == GUIDANCE:
                out["prompt_fields_w7_5"] = field_accuracy(images, prompts[split])
    return out


def field_accuracy(images: torch.Tensor, captions: list[str]) -> dict:
    """Which part of a caption the samples get right: the object count, the objects (colour and kind,
    in order), the background colour, and the whole caption for one- and two-object captions."""
    readings, wanted = read(images), [parse_caption(c) for c in captions]
    pairs = list(zip(readings, wanted))
    share = lambda ok: round(float(np.mean(ok)), 3) if ok else None  # noqa: E731
    return {"count": share([len(r.objects) == len(d.objects) for r, d in pairs]),
            "objects": share([r.objects == d.objects for r, d in pairs]),
            "background": share([r.background == d.background for r, d in pairs]),
            "one_object": share([r.matches(d) for r, d in pairs if len(d.objects) == 1]),
            "two_objects": share([r.matches(d) for r, d in pairs if len(d.objects) == 2])}


def main(argv: list[str] | None = None) -> dict:
    """``python -m benchmarks.detailed [--inversions …] [--editors …] [--no-sweep]``: the detailed rows
    alone (``python benchmarks/run.py editing`` runs them with the fast world's); prints them as one JSON
    line and each expectation with its verdict."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m benchmarks.detailed", description=main.__doc__)
    parser.add_argument("--inversions", default=",".join(INVERSIONS + FREEINV_INVERSIONS), help="comma-separated (default: %(default)s)")
    parser.add_argument("--editors", default=",".join(EDITORS), help="comma-separated (default: %(default)s)")
    parser.add_argument("--no-sweep", action="store_true", help="skip the guidance sweep (its w = 7.5 rows are the main table's)")
    args = parser.parse_args(argv)
    inversions, editors = args.inversions.split(","), args.editors.split(",")
    for flag, given, known in (("--inversions", inversions, INVERSIONS + FREEINV_INVERSIONS), ("--editors", editors, tuple(EDITORS))):
        if unknown := [g for g in given if g not in known]:
            parser.error(f"{flag}: unknown {', '.join(unknown)}; expected some of {', '.join(known)}")
    figures = run(inversions=tuple(inversions), editors=tuple(editors), guidances=(GUIDANCE,) if args.no_sweep else None)
    for e in figures["expectations"]:
        print(f"{'holds' if e['holds'] else 'does not hold':<14} {e['expectation']}  ⟨{e['measured']}⟩")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()


def reader_accuracy(n: int = N_READER) -> float:
    """Share of held-out renders the reader reads exactly (every object, the background, the texture)."""
    scenes = sample_scenes(n, seed=7, split="heldout")
    return round(float(np.mean([r == truth(s) for r, s in zip(read(render(scenes)), scenes)])), 4)


def _iou(mask: torch.Tensor, changed: torch.Tensor) -> np.ndarray:
    m, c = mask[:, 0].bool(), changed[:, 0]
    return ((m & c).flatten(1).sum(1) / (m | c).flatten(1).sum(1).clamp_min(1)).numpy()


def localisation(results: dict, cases) -> dict:
    """LocalBlend against the true change, for every inversion edited with a blend-word editor (``p2p_lb``,
    the official map resolution; ``p2p_lb16``, the finest maps up to 16×16):

    * ``{inv}_{editor}_mask_iou``: IoU of the final mask with the true change on the latent grid, mean
      and ``_se`` over the edits;
    * ``{inv}_p2p_lb_word_map_mass_ratio``: on the source branch, the blend words' attention mass inside
      the edited object divided by the object's share of the image, for shape and colour edits, at the
      finest cross-attention resolution (``..._by_side``: at each), mean and ``_se``;
    * ``word_map_mass_ratio``: null-text's (the paper's setting), or the first inversion's."""
    out = {}
    objects = [i for i, c in enumerate(cases) if c.attribute in ("shape", "color")]
    for (inv, editor), r in results.items():
        if not editor.startswith("p2p_lb") or editor == "p2p_lbd":
            continue
        side = r["mask"].shape[-1]
        changed = torch.nn.functional.interpolate(change_masks(cases).float(), size=side, mode="area") > 0.5
        out[f"{inv}_{editor}_mask_iou"], out[f"{inv}_{editor}_mask_iou_se"] = (round(v, 3) for v in md.mean_se(_iou(r["mask"], changed)))
        if editor != "p2p_lb" or not objects:
            continue
        by_side = {}
        for map_side, maps in sorted(r["word_maps"].items()):
            ratios = []
            for i in objects:
                c = cases[i]
                cover = object_coverage([c.source], c.edit.index)[None]
                obj = torch.nn.functional.interpolate(cover, size=map_side, mode="area")[0, 0]
                share = maps[i, 0]
                ratios.append(float((share * obj).sum() / share.sum()) / float(obj.mean()))
            by_side[map_side] = md.mean_se(ratios)
        finest = max(by_side)
        key = f"{inv}_p2p_lb_word_map_mass_ratio"
        out[key], out[f"{key}_se"] = (round(v, 3) for v in by_side[finest])
        out[f"{key}_by_side"] = {str(k): round(m, 3) for k, (m, _) in by_side.items()}
    ratios = [k for k in out if k.endswith("_word_map_mass_ratio")]
    if ratios:
        head = "nti_p2p_lb_word_map_mass_ratio" if "nti_p2p_lb_word_map_mass_ratio" in out else ratios[0]
        out["word_map_mass_ratio"], out["word_map_mass_ratio_se"] = out[head], out[f"{head}_se"]
    return out


def freeinv_figures(pipe, n: int = N_RECON) -> dict:
    """Reconstruction PSNR at w = 1 of DDIM and of FreeInv at 10 and 20 steps on ``n`` held-out images,
    mean and ``_se``, and the paired gain with its ``_se`` (each image its own random draws): FreeInv with horizontal flips
    (``freeinv_``: the transforms the world is symmetric under, for one object; two objects' order
    is named by the caption) and with the paper's latent rotations (``freeinv_rot_``)."""
    scenes = sample_scenes(n, seed=11, split="heldout")
    images = render(scenes)
    z0, cond = pipe.encode(images), pipe.embed([caption(s) for s in scenes])
    out = {}
    for steps in FREEINV_STEPS:
        ddim = md.psnr_per_image(images, pipe.decode(md.ddim_sample(pipe, md.ddim_invert(pipe, z0, cond, steps), cond, steps)))
        out[f"ddim_recon_psnr_{steps}"], out[f"ddim_recon_psnr_{steps}_se"] = (round(v, 3) for v in md.mean_se(ddim))
        for key, transforms in (("freeinv", FLIPS), ("freeinv_rot", ROTATIONS)):
            schedule = md.per_image_schedule(n, steps, transforms, torch.Generator().manual_seed(steps))
            inv = md.freeinv_invert(pipe, z0, cond, steps, schedule=schedule)
            free = md.psnr_per_image(images, pipe.decode(md.freeinv_sample(pipe, inv.latent, schedule=inv.schedule, cond=cond, steps=steps)))
            out[f"{key}_recon_psnr_{steps}"], out[f"{key}_recon_psnr_{steps}_se"] = (round(v, 3) for v in md.mean_se(free))
            out[f"{key}_gain_{steps}"], out[f"{key}_gain_{steps}_se"] = (round(v, 3) for v in md.mean_se(free - ddim))
    return out
