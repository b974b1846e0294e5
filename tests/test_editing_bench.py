"""The editing benchmark's cases and scores: balanced, exact on the ground truth."""
import pytest

from toy.shapes import caption, render
from toy.shapes.editing import editing_cases, score_edits, summarize


def test_cases_cover_the_three_edit_kinds_equally():
    cases = editing_cases(30)
    assert [c.attribute for c in cases].count("shape") == 10 and len({c.source for c in cases}) == 30
    assert all(caption(c.source) != caption(c.target) for c in cases)
    with pytest.raises(ValueError, match="multiple of 3"):
        editing_cases(10)


def test_the_ground_truth_scores_perfectly_and_the_source_does_not():
    cases = editing_cases(9)
    truth = score_edits(render([c.target for c in cases]), cases)
    assert truth["edit_acc"].tolist() == [1.0] * 9 and (truth["bg_psnr"] >= 60).all() and (truth["gt_psnr"] >= 60).all()
    unedited = score_edits(render([c.source for c in cases]), cases)
    assert unedited["edit_acc"].sum() == 0 and (unedited["bg_psnr"] >= 60).all() and (unedited["gt_psnr"] < 30).all()
    summary = summarize(unedited, cases)
    assert summary["edit_acc"] == {"mean": 0.0, "se": 0.0, "shape": 0.0, "color": 0.0, "background": 0.0}


def test_blend_words_name_the_changed_object():
    shape, color, background = editing_cases(3)
    assert shape.blend_words[0].endswith(shape.source.kind) and shape.blend_words[1].endswith(shape.target.kind)
    assert color.blend_words[1].startswith(color.target.color)
    assert background.blend_words == ("background", "background")


def test_the_benchmark_runs_every_pair_on_a_small_setting():
    from benchmarks.editing import INVERSIONS, run

    figures = run(n=3, steps=2, inversions=INVERSIONS, editors=("p2p_lb",), detailed_model=None)
    for name in INVERSIONS:
        assert 0 <= figures[f"{name}_p2p_lb_edit_acc"] <= 1 and figures[f"{name}_seconds_per_edit"] > 0
    assert set(figures["by_kind"]["direct_p2p_lb_bg_psnr"]) == {"shape", "color", "background"}
    from toy.shapes.inversion_editing import SWEEP_EDITORS, SWEEP_GUIDANCES, SWEEP_INVERSIONS

    sweep = {(r["guidance"], r["inversion"], r["editor"]): r for r in figures["guidance_sweep"]}
    assert set(sweep) == {(w, i, e) for w in SWEEP_GUIDANCES for i in SWEEP_INVERSIONS for e in SWEEP_EDITORS}
    # the sweep's w = 7.5 rows are the main table's pairs, reused
    assert sweep[7.5, "direct", "p2p_lb"]["bg_psnr"] == figures["direct_p2p_lb_bg_psnr"]
    assert all(r["bg_psnr_se"] >= 0 and 0 <= r["edit_acc"] <= 1 for r in sweep.values())


def test_batches_give_the_same_results_as_one_batch():
    # at full scale the lessons invert, edit and generate a few images per model call
    import torch

    import minidiff as md
    from minidiff.pipelines import load_pipeline
    from toy.shapes.flow_editing import FLUX_SETTING, run_edits
    from toy.shapes.inversion_editing import evaluate

    cases = editing_cases(3)
    sd = load_pipeline("tiny-sd", device="cpu")
    pairs = [("nti", "p2p"), ("npi", "p2p"), ("direct", "p2p_lbd")]
    whole, split = (evaluate(sd, cases, pairs, steps=2, inner_steps=2, batch=b) for b in (None, 2))
    for pair in pairs:
        torch.testing.assert_close(split[pair]["edits"], whole[pair]["edits"], rtol=1e-4, atol=1e-4)
        assert split[pair]["mask"].shape == whole[pair]["mask"].shape
    nti = split["nti", "p2p"]["inversion"]
    assert len(nti["null"]) == 2 and nti["null"][0].shape[0] == 3 and len(nti["result"].inner_iters) == 2
    flux = load_pipeline("tiny-flux", device="cpu")
    setting = FLUX_SETTING.but(steps=3, n_max=2)
    a, b = (run_edits(flux, cases, setting, ("inversion",), batch=n)["inversion"] for n in (None, 2))
    torch.testing.assert_close(a.latents, b.latents, rtol=1e-4, atol=1e-4)
    prompts = [caption(c.source) for c in cases]
    torch.testing.assert_close(md.generate(sd, prompts, guidance=3.0, steps=2, batch_size=2), md.generate(sd, prompts, guidance=3.0, steps=2), rtol=1e-4, atol=1e-4)
