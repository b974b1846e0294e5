"""IMPUS morphing: closed-form checks, the offline perceptual distance, and end-to-end fits that must
leave the model exactly as it was."""
import dataclasses
import math

import pytest
import torch

from conftest import saved_and_loaded

import minidiff as md
from minidiff.pipelines import load_pipeline
from toy.shapes import COLORS, Scene, caption, edit_scene, reads_as_scene, render, sample_scenes
from toy.tiny_models import build_tiny_sd

SCENE = Scene("circle", "red", "blue", 16.0, 16.0, 6.0)


@pytest.fixture(scope="module")
def random_sd(tmp_path_factory):
    return saved_and_loaded(tmp_path_factory, build_tiny_sd)


@pytest.fixture(scope="module")
def tiny_sd():
    return load_pipeline("tiny-sd", device="cpu")


def test_slerp_hits_the_endpoints_and_keeps_the_norm():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 4, 8, 8, generator=g)
    alphas = torch.linspace(0, 1, 11)
    s = md.slerp(a, b, alphas)
    assert s.shape == (11, 4, 8, 8)
    torch.testing.assert_close(s[0], a[0]), torch.testing.assert_close(s[-1], b[0])
    b = b * a.norm() / b.norm()  # equal norms: slerp stays on their sphere for every α
    torch.testing.assert_close(md.slerp(a, b, alphas).flatten(1).norm(dim=1), a.norm().expand(11), rtol=1e-5, atol=0)
    mid = md.lerp(a, b, 0.5).norm() / a.norm()  # lerp cuts through the sphere: ≈ 1/√2 for independent draws
    assert 0.6 < mid < 0.8
    torch.testing.assert_close(md.slerp(a, a, alphas), a.expand(11, -1, -1, -1))  # θ = 0 falls back to lerp


def test_lerp_and_the_guidance_schedule():
    a, b = torch.zeros(1, 3), torch.ones(1, 3)
    torch.testing.assert_close(md.lerp(a, b, torch.tensor([0.0, 0.25, 1.0])), torch.tensor([[0.0] * 3, [0.25] * 3, [1.0] * 3]))
    torch.testing.assert_close(md.impus_guidance(torch.tensor([0.0, 0.5, 1.0, 0.25])), torch.tensor([1.5, 3.0, 1.5, 2.25]))
    with pytest.raises(ValueError, match="α must lie in \\[0, 1\\]"):
        md.impus_guidance(1.5)


@pytest.mark.parametrize("rppd, rank", [(0.0, 1), (0.3, 1), (0.39, 2), (0.5, 8), (0.62, 32), (1.0, 4096)])
def test_rank_from_rppd(rppd, rank):
    assert md.lora_rank(rppd) == rank == 2 ** max(0, math.floor(18 * rppd - 6))
    assert md.lora_rank(rppd, variance_ok=False) == max(rank, 16)


def test_rppd_counts_n_minus_one_steps():
    """A path of n frames has n − 1 steps; with d(a, b) = |a − b| on a straight path rPPD = 1/(n − 1)."""
    frames = torch.linspace(0, 1, 11).reshape(11, 1, 1, 1).expand(11, 3, 2, 2)
    d = lambda a, b: (a - b).abs().flatten(1).mean(1)  # noqa: E731
    assert md.relative_ppd(frames, d) == pytest.approx(0.1)
    metrics = md.path_metrics(frames, d)
    assert metrics.total == pytest.approx(1.0) and metrics.max_over_mean == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 3 frames"):
        md.relative_ppd(frames[:2], d)


def test_perceptual_alphas_even_out_an_uneven_path():
    """x(α) = α⁴ packs all change near α = 1; the search spaces the frames evenly in x instead."""
    sample = lambda al: (al**4).reshape(-1, 1, 1, 1).expand(-1, 3, 2, 2)  # noqa: E731
    d = lambda a, b: (a - b).abs().flatten(1).mean(1)  # noqa: E731
    found = md.perceptual_alphas(sample, d, delta=0.2, tol=0.01)
    steps = md.path_metrics(found.frames, d).steps
    assert found.alphas[0] == 0 and found.alphas[-1] == 1 and len(found.alphas) == 6
    assert (steps[:-1] - 0.2).abs().max() <= 0.01 and steps[-1] <= 0.2
    uniform = md.path_metrics(sample(torch.linspace(0, 1, len(found.alphas))), d)
    assert uniform.max_over_mean > 2 * md.path_metrics(found.frames, d).max_over_mean


def test_ppl_of_a_linear_path():
    """x(α) = α·v with d = mean squared difference: d(x(α), x(α+ε))/ε² = mean(v²) for every α."""
    v = torch.full((1, 3, 2, 2), 3.0)
    ppl = md.perceptual_path_length(lambda al: al.reshape(-1, 1, 1, 1) * v, lambda a, b: (a - b).square().flatten(1).mean(1),
                                    n=20, generator=torch.Generator().manual_seed(0))
    assert ppl.value == pytest.approx(9.0, rel=1e-3) and ppl.se < 0.01 and ppl.n == 20 and not ppl.trimmed


def test_ppl_keeps_the_abrupt_transition_at_small_n():
    """A path with one jump: below TRIM_FROM samples nothing is dropped, so the jump counts; np.percentile's
    1st–99th trimming of a few dozen values would always drop the largest one."""
    jump = lambda al: (al > 0.5).float().reshape(-1, 1, 1, 1).expand(-1, 3, 2, 2)  # noqa: E731
    d = lambda a, b: (a - b).abs().flatten(1).mean(1)  # noqa: E731
    g = torch.Generator().manual_seed(0)
    alpha = torch.rand(64, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * (1 - 1e-4)
    crossings = int(((alpha <= 0.5) & (alpha + 1e-4 > 0.5)).sum())
    ppl = md.perceptual_path_length(jump, d, n=64, generator=g)
    assert ppl.value == pytest.approx(crossings / 64 / 1e-8) and not ppl.trimmed
    big = md.perceptual_path_length(lambda al: al.reshape(-1, 1, 1, 1) * torch.ones(1, 3, 2, 2), d, n=400,
                                    generator=torch.Generator().manual_seed(1))
    assert big.trimmed and big.value == pytest.approx(1e-4 / 1e-8, rel=1e-3)


def test_reads_as_scene_passes_renders_and_fails_colour_blends():
    """Every render reads as a scene; a half-way cross-fade to another shape colour or another background never does."""
    scenes = sample_scenes(48, seed=0)
    renders = render(scenes)
    ok = reads_as_scene(renders)
    assert ok.shape == (48,) and ok.dtype == torch.bool and ok.all()
    for attribute in ("color", "background"):
        others = [edit_scene(s, attribute, next(c for c in COLORS if c not in (s.color, s.background))) for s in scenes]
        assert not reads_as_scene(0.5 * renders + 0.5 * render(others)).any(), attribute


def test_perceptual_distance_is_zero_on_identical_images_and_grows_with_size(tiny_sd):
    x = render([SCENE])
    sizes = torch.cat([render([dataclasses.replace(SCENE, size=s)]) for s in (6.0, 7.0, 8.0, 9.0, 10.0)])
    d = md.perceptual_distance(sizes, x, tiny_sd, backend="vae")
    assert d.shape == (5,) and d[0] == 0
    assert (d.diff() > 0).all()
    with pytest.raises(ValueError, match="pass model="):
        md.perceptual_distance(x, x, backend="vae")
    with pytest.raises(ValueError, match="\\(B, 3, H, W\\)"):
        md.perceptual_distance(x[0], x, tiny_sd)


def _pair():
    pair = [SCENE, edit_scene(SCENE, "color", "green")]
    return render(pair), [caption(s) for s in pair]


def _state(unet):
    return {k: v.clone() for k, v in unet.state_dict().items()}


def test_end_to_end_on_a_random_sd_pipeline_leaves_the_model_as_it_was(random_sd):
    images, prompts = _pair()
    z0, cond = random_sd.encode(images), random_sd.embed(prompts)
    before = _state(random_sd.unet)
    probe = random_sd(z0, 500, cond)
    distance = lambda a, b: md.perceptual_distance(a, b, random_sd, backend="vae")  # noqa: E731
    morph = md.impus_morph(random_sd, z0, cond, null=random_sd.null, steps=2, ti_iters=2, lora_iters=2, uncond_iters=2,
                           rppd_frames=3, distance=distance, variance_tolerance=10.0,
                           generator=torch.Generator().manual_seed(0))
    assert morph.rank == md.lora_rank(morph.rppd) and morph.cond_adapter != morph.uncond_adapter
    assert set(random_sd.unet.peft_config) == {morph.cond_adapter, morph.uncond_adapter}
    assert not any(p.requires_grad for n, p in random_sd.unet.named_parameters() if "lora" not in n)
    assert [len(v) for v in morph.losses.values()] == [2, 2, 2]
    assert morph.sample(torch.tensor([0.0, 0.5, 1.0])).shape == (3, 4, 8, 8)
    torch.testing.assert_close(random_sd(z0, 500, cond), probe)  # outside a morph's calls: base weights
    morph.remove()
    assert not hasattr(random_sd.unet, "peft_config") and _state(random_sd.unet).keys() == before.keys()
    assert all(torch.equal(v, before[k]) for k, v in _state(random_sd.unet).items())
    assert torch.equal(random_sd(z0, 500, cond), probe)


def test_bad_input_is_explained(random_sd):
    images, prompts = _pair()
    z0, cond = random_sd.encode(images), random_sd.embed(prompts)
    with pytest.raises(ValueError, match="morphs two images"):
        md.impus_morph(random_sd, z0[:1], cond[:1], null=random_sd.null)
    with pytest.raises(ValueError, match="needs distance="):
        md.impus_morph(random_sd, z0, cond, null=random_sd.null, steps=2, ti_iters=0)
    with pytest.raises(ValueError, match="null must have shape"):
        md.impus_morph(random_sd, z0, cond, null=cond, steps=2)


def test_tiny_sd_morph_ablations_and_cleanup(tiny_sd):
    """On the shipped model: a short fit warns that the inverted latents' variance is off (tiny-sd's
    DDIM-inverted noise has Var ≈ 0.3), which forces rank ≥ 16; the ablations share the fit."""
    images, prompts = _pair()
    z0, cond = tiny_sd.encode(images), tiny_sd.embed(prompts)
    distance = lambda a, b: md.perceptual_distance(a, b, tiny_sd, backend="vae")  # noqa: E731
    with pytest.warns(UserWarning, match="Var\\(x_T\\)"):
        morph = md.impus_morph(tiny_sd, z0, cond, null=tiny_sd.null, steps=5, ti_iters=3, lora_iters=3, uncond_iters=2,
                               rppd_frames=3, distance=distance, generator=torch.Generator().manual_seed(0))
    assert not morph.variance_ok and morph.rank >= 16
    alphas = torch.tensor([0.0, 0.5, 1.0])
    frames = {name: m.images(alphas) for name, m in (("impus", morph), ("no LoRA", morph.ablation(lora=False)),
                                                     ("no bias", morph.ablation(bias_correction=False)))}
    assert all(f.shape == (3, 3, 32, 32) for f in frames.values())
    assert not torch.equal(frames["impus"], frames["no bias"]) and not torch.equal(frames["impus"], frames["no LoRA"])
    morph.remove()
    assert not hasattr(tiny_sd.unet, "peft_config")
    torch.testing.assert_close(morph.ablation(lora=False).images(alphas), frames["no LoRA"])


def test_the_perceptual_scaling_diagnostic_changes_one_factor_and_fits_its_exponent():
    from benchmarks import perceptual_scaling as ps
    from toy.detailed import sample_scenes

    scene = next(s for s in sample_scenes(20, seed=5, split="heldout") if len(s.objects) == 1)
    for factor in ps.FACTORS:
        frames = ps.strip(scene, factor)
        assert len(frames) == ps.K and len({f for f in frames}) == ps.K  # K distinct scenes
        changed = {k for f in frames for k, v in vars(f.objects[0]).items() if v != vars(scene.objects[0])[k]}
        assert changed <= {"hue": {"hue"}, "size": {"size"}, "roundness": {"roundness"}, "position": {"cx"}, "frequency": set()}[factor]
    figures = ps.run(n_scenes=3)
    assert set(figures) == set(ps.FACTORS)
    # rPPD is scale-free: the proxy's exponent, not its scale, sets it; a squared feature distance grows faster than linearly
    assert figures["hue"]["gamma"] > 1 and figures["hue"]["rppd"] < 1 / (ps.K - 1)
