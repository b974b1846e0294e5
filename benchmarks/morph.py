"""IMPUS morphing figures on tiny-sd (notebook 09 at larger settings): held-out pairs that change the
shape's colour, its kind, or its kind and the background; IMPUS against a pixel cross-fade, DDIM
slerp with no adaptation and three ablations; uniform against perceptually uniform α; the costs.

Distances are the offline proxy of :mod:`minidiff.perceptual` (VAE-encoder features), not LPIPS;
realism is the share of intermediate frames that read as a clean scene
(:func:`toy.shapes.reads_as_scene`), since FID is not available offline.

``"detailed"`` (:func:`run_detailed`; alone: ``python -m benchmarks.morph``): the same figures with tiny-sd-64 on
the detailed world's morph pairs (:func:`toy.detailed.morphs.morph_pairs`: two of each kind, continuous
in-betweens), distances under the calibrated proxy (:data:`toy.detailed.morphs.PROXY_CALIBRATION`), realism
read by :func:`toy.detailed.morphs.reads_as_scene`; per kind (``by_kind``); IMPUS sampled at w = 1 beside it
(``impus_w1``); the rank decision alone at 50 DDIM steps (``rank_decision``); issue 18's expectations as
computed verdicts (``expectations``). Each pair's figures are printed as they land (about 5 minutes a pair).
"""
from __future__ import annotations

import json
import time
import warnings

import numpy as np
import torch
from tqdm.auto import tqdm

import minidiff as md
from minidiff.pipelines import load_pipeline
from toy.detailed.morphs import PAIR_KINDS
from toy.shapes import COLORS, KINDS, caption, edit_scene, heldout_scenes, reads_as_scene, render
from toy.training import WEIGHTS

N_PAIRS, STEPS, TI_ITERS, LORA_ITERS, UNCOND_ITERS, PPL_SAMPLES, FRAMES = 3, 10, 60, 60, 20, 200, 9
N_PER_KIND_64 = 2  # detailed world: pairs of each kind (8 in all)
DECISION_STEPS = 50  # the rank decision alone, at the DDIM steps of the paper's inversions


def morph_pairs(n: int, seed: int = 300) -> list[tuple]:
    """n held-out pairs, in turn: another colour, another kind, another kind and background."""
    pairs = []
    for i, scene in enumerate(heldout_scenes(n, seed=seed)):
        colours = [c for c in COLORS if c not in (scene.color, scene.background)]
        kind = KINDS[(KINDS.index(scene.kind) + 1) % len(KINDS)]
        if i % 3 == 0:
            other = edit_scene(scene, "color", colours[i % len(colours)])
        elif i % 3 == 1:
            other = edit_scene(scene, "shape", kind)
        else:
            other = edit_scene(edit_scene(scene, "shape", kind), "background", colours[i % len(colours)])
        pairs.append((scene, other))
    return pairs


def evaluate_pair(model, images, prompts, dist, realism, *, steps=STEPS, ti_iters=TI_ITERS, lora_iters=LORA_ITERS,
                  uncond_iters=UNCOND_ITERS, ppl_samples=PPL_SAMPLES, frames=FRAMES, seed=0) -> dict:
    """Every figure of one pair of ``images`` (2, 3, H, W) with their ``prompts``, under the perceptual
    distance ``dist``; ``realism(frames) -> (N,) bool`` reads whether each in-between is a clean scene."""
    z0, cond = model.encode(images), model.embed(prompts)
    g = lambda k: torch.Generator().manual_seed(seed + k)  # noqa: E731
    fit = dict(steps=steps, ti_iters=ti_iters, lora_iters=lora_iters, uncond_iters=uncond_iters, distance=dist)
    start = time.perf_counter()
    morph = md.impus_morph(model, z0, cond, null=model.null, generator=g(0), **fit)
    fit_seconds = time.perf_counter() - start
    no_ti = md.impus_morph(model, z0, cond, null=model.null, invert_text=False, generator=g(0), **fit)
    xT = md.ddim_invert(model, z0, cond, steps)
    samplers = {
        "impus": morph.images,
        "no_lora": morph.ablation(lora=False).images,
        "no_bias": morph.ablation(bias_correction=False).images,
        "no_ti": no_ti.images,
        "impus_w1": lambda al: morph.images(al, guidance=1.0),  # the design change aimed at CFG's share of the path
        "slerp": lambda al: model.decode(md.ddim_sample(model, md.slerp(xT[:1], xT[1:], al), md.lerp(cond[:1], cond[1:], al), steps)),
        "crossfade": lambda al: md.lerp(images[:1], images[1:], al),
    }
    uniform = torch.linspace(0, 1, frames)
    out = {"vae_psnr": md.psnr(images, model.decode(z0)), "lora_rank": morph.rank, "rppd": morph.rppd,
           "lora_rank_by_rule": md.lora_rank(morph.rppd), "variance_override": float(not morph.variance_ok),
           "variance": morph.variance.mean().item(), "fit_seconds": fit_seconds}
    for name, sample in samplers.items():
        ppl = md.perceptual_path_length(sample, dist, n=ppl_samples, generator=g(1))
        out[f"ppl_{name}"], out[f"ppl_{name}_boot_se"] = ppl.value, ppl.se
        strip = sample(uniform)
        pm = md.path_metrics(strip, dist)
        out[f"total_{name}"], out[f"largest_{name}"], out[f"max_over_mean_{name}"] = pm.total, pm.largest, pm.max_over_mean
        if name == "impus":
            out["endpoint_psnr"] = md.psnr(images, strip[[0, -1]])
            impus_strip = strip
        out[f"realism_{name}"] = realism(strip[1:-1]).float().mean().item()
    delta = float(md.path_metrics(impus_strip, dist).steps.mean())
    start = time.perf_counter()
    found = md.perceptual_alphas(morph.images, dist, delta=delta, tol=0.05 * delta, max_probes=6)
    out["search_seconds"] = time.perf_counter() - start
    out["frames_perceptual"] = len(found.alphas)
    out["max_over_mean_perceptual"] = md.path_metrics(found.frames, dist).max_over_mean
    out["max_over_mean_uniform"] = md.path_metrics(morph.images(torch.linspace(0, 1, len(found.alphas))), dist).max_over_mean
    no_ti.remove()
    morph.remove()
    return out


def summarise(per_pair: list[dict]) -> dict:
    """Each figure's mean over the pairs and, as ``key_se``, the standard error of that mean; the share of
    pairs where IMPUS's PPL is below slerp's by more than two combined bootstrap s.e.; the LoRA ranks."""
    mean = lambda key: float(np.mean([p[key] for p in per_pair]))  # noqa: E731
    figures = {}
    for key in per_pair[0]:
        if key not in ("lora_rank", "lora_rank_by_rule", "rppd") and not key.endswith("_boot_se"):
            figures[key], figures[f"{key}_se"] = md.mean_se([p[key] for p in per_pair])
    figures["ppl_impus_below_slerp"] = float(np.mean([p["ppl_slerp"] - p["ppl_impus"] > 2 * np.hypot(p["ppl_slerp_boot_se"], p["ppl_impus_boot_se"])
                                                      for p in per_pair]))
    # paired over the pairs: slerp's PPL minus IMPUS's, IMPUS's realism minus slerp's
    figures["ppl_slerp_minus_impus"], figures["ppl_slerp_minus_impus_se"] = md.mean_se([p["ppl_slerp"] - p["ppl_impus"] for p in per_pair])
    figures["realism_impus_minus_slerp"], figures["realism_impus_minus_slerp_se"] = md.mean_se([p["realism_impus"] - p["realism_slerp"] for p in per_pair])
    if "ppl_impus_w1" in per_pair[0]:
        figures["ppl_slerp_minus_impus_w1"], figures["ppl_slerp_minus_impus_w1_se"] = md.mean_se([p["ppl_slerp"] - p["ppl_impus_w1"] for p in per_pair])
    figures["n_alpha"] = PPL_SAMPLES
    figures["lora_rank"] = int(np.median([p["lora_rank"] for p in per_pair]))
    figures["lora_rank_by_rule"] = [p["lora_rank_by_rule"] for p in per_pair]
    figures["rppd"] = mean("rppd")
    figures["seconds_per_morph"] = mean("fit_seconds") + mean("search_seconds")
    figures["n_pairs"] = len(per_pair)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items()}


def rank_decision(model, pairs, dist, steps: int, ti_iters: int = TI_ITERS, seed: int = 0) -> dict:
    """IMPUS's steps 1–3 alone for each pair at ``steps`` DDIM steps: Var(x_T) of the inverted endpoints,
    whether it passes the variance check, the rPPD of the textual-inversion interpolants, and the rank the
    rule gives (before and after the override). Cheap next to a whole morph, so it can run at the paper's
    50 steps where the benchmark's morphs use :data:`STEPS`."""
    from toy.detailed import render as render_64

    rows = []
    for i, p in enumerate(pairs):
        images = render_64(p.scenes)
        z0, cond = model.encode(images), model.embed(p.captions)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the variance warning: it is what this measures
            base = md.impus_morph(model, z0, cond, steps=steps, ti_iters=ti_iters, lora=False, generator=torch.Generator().manual_seed(10 * i))
        rppd = md.relative_ppd(base.images(torch.linspace(0, 1, 11)), dist)
        rows.append({"variance": base.variance.mean().item(), "variance_ok": base.variance_ok, "rppd": rppd,
                     "rank_by_rule": md.lora_rank(rppd), "rank": md.lora_rank(rppd, base.variance_ok)})
    return {"steps": steps, "variance": round(float(np.mean([r["variance"] for r in rows])), 3),
            "variance_ok": float(np.mean([r["variance_ok"] for r in rows])), "rppd": round(float(np.mean([r["rppd"] for r in rows])), 4),
            "rank_by_rule": [r["rank_by_rule"] for r in rows], "rank": [r["rank"] for r in rows]}


def expectations(f: dict) -> list[dict]:
    """Issue 18's pre-registered IMPUS expectations (§4, 3–5), each with what was measured and a computed verdict."""
    ranks, overridden = f["lora_rank_by_rule"], f["variance_override"]
    ratio = f["max_over_mean_uniform"] / max(f["max_over_mean_perceptual"], 1e-12)
    return [
        {"expectation": "3. IMPUS's PPL is below DDIM slerp's by more than 2 s.e., with realism at least as high",
         "holds": f["ppl_slerp_minus_impus"] > 2 * f["ppl_slerp_minus_impus_se"] and f["realism_impus_minus_slerp"] >= 0,
         "measured": f"slerp − IMPUS {f['ppl_slerp_minus_impus']:+.2f} ± {f['ppl_slerp_minus_impus_se']:.2f} (IMPUS {f['ppl_impus']:.2f}, "
                     f"slerp {f['ppl_slerp']:.2f}); realism IMPUS − slerp {f['realism_impus_minus_slerp']:+.2f} ± {f['realism_impus_minus_slerp_se']:.2f}"},
        *([{"expectation": "3b. (design change: IMPUS sampled at w = 1, without CFG's w(α) = 3 − 3|α − ½|) the same PPL gain",
             "holds": f["ppl_slerp_minus_impus_w1"] > 2 * f["ppl_slerp_minus_impus_w1_se"],
             "measured": f"slerp − IMPUS at w = 1 {f['ppl_slerp_minus_impus_w1']:+.2f} ± {f['ppl_slerp_minus_impus_w1_se']:.2f} "
                         f"(IMPUS at w = 1 {f['ppl_impus_w1']:.2f})"}] if "ppl_slerp_minus_impus_w1" in f else []),
        {"expectation": "4. perceptual α cuts max/mean of the consecutive steps ≥ 2× against uniform α",
         "holds": ratio >= 2,
         "measured": f"{f['max_over_mean_uniform']:.2f} → {f['max_over_mean_perceptual']:.2f} ({ratio:.2f}×)"},
        {"expectation": "5. the rPPD rule picks a rank without the variance override on at least some pairs",
         "holds": overridden < 1,
         "measured": f"ranks by the rule {ranks}; variance override on {overridden:.0%} of the pairs "
                     f"(Var(x_T) {f['variance']:.2f} ± {f['variance_se']:.2f})"},
    ] + ([{"expectation": f"5b. (design change: the variance check and rule at {d['steps']} DDIM steps, not {STEPS}) the same",
            "holds": d["variance_ok"] > 0,
            "measured": f"ranks by the rule {d['rank_by_rule']}; variance check passed on {d['variance_ok']:.0%} of the pairs "
                        f"(Var(x_T) {d['variance']:.2f})"}] if (d := f.get("rank_decision")) else [])


def run_detailed(n_per_kind: int = N_PER_KIND_64, kinds=PAIR_KINDS) -> dict:
    """The same figures on the detailed world with tiny-sd-64: ``n_per_kind`` pairs of each of
    :data:`toy.detailed.morphs.PAIR_KINDS`, distances under the calibrated proxy
    (:data:`toy.detailed.morphs.PROXY_CALIBRATION`), realism read by the world's reader; per pair kind too."""
    from toy.detailed import render as render_64
    from toy.detailed.morphs import PROXY_CALIBRATION, morph_pairs as detailed_pairs, reads_as_scene as reads_64

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = load_pipeline("tiny-sd-64", device="cpu")
        dist = PROXY_CALIBRATION.apply(lambda a, b: md.perceptual_distance(a, b, model, backend="vae"))
        pairs = detailed_pairs(n_per_kind, kinds=kinds)
        decision = rank_decision(model, pairs, dist, DECISION_STEPS)
        tqdm.write(json.dumps({"rank_decision": decision}))
        per_pair = []
        for i, p in enumerate(tqdm(pairs, desc="morph pairs (detailed world)")):
            per_pair.append(evaluate_pair(model, render_64(p.scenes), p.captions, dist, lambda f, p=p: reads_64(f, p), seed=10 * i))
            tqdm.write(json.dumps({"pair": i, "kind": p.kind} | per_pair[-1]))  # each pair as it lands: hours of work
    figures = summarise(per_pair) | {"model": "tiny-sd-64", "pair_kinds": list(kinds),
                                     "calibration": {"exponent": PROXY_CALIBRATION.exponent, "scale": PROXY_CALIBRATION.scale}}
    figures["rank_decision"] = decision
    figures["by_kind"] = {k: summarise([r for r, p in zip(per_pair, pairs) if p.kind == k]) for k in kinds}
    figures["expectations"] = expectations(figures)
    return figures


def run(detailed: bool = True) -> dict:
    with torch.random.fork_rng():  # peft draws the LoRAs' initial weights from the global generator
        torch.manual_seed(0)
        model = load_pipeline("tiny-sd", device="cpu")
        dist = lambda a, b: md.perceptual_distance(a, b, model)  # noqa: E731
        per_pair = [evaluate_pair(model, render(list(pair)), [caption(s) for s in pair], dist, reads_as_scene, seed=10 * i)
                    for i, pair in enumerate(morph_pairs(N_PAIRS))]
    figures = summarise(per_pair)
    if detailed and (WEIGHTS / "tiny-sd-64").exists():
        figures["detailed"] = run_detailed()
    return figures


if __name__ == "__main__":
    figures = run_detailed()
    for e in figures["expectations"]:
        print(f"{'holds' if e['holds'] else 'does not hold':<14} {e['expectation']}  ⟨{e['measured']}⟩")
    print(json.dumps(figures))
