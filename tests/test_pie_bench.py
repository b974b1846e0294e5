"""benchmarks/pie_bench.py on a PIE-Bench-layout folder made from the shapes world: one process and a
2-process torchrun give the same rows (each rank taking its half), a killed run resumes without loss or
duplicates, and malformed folders are refused naming the entry."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import pie_bench  # noqa: E402

FAST = ["--model", "tiny-sd", "--steps", "2", "--inner-steps", "1", "--methods", "ddim,nti,npi,direct,freeinv"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
N_DEMO = 4


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return pie_bench.make_demo(tmp_path_factory.mktemp("pie") / "demo", n=N_DEMO)


@pytest.fixture(scope="module")
def single(demo):
    out = demo.parent / "single.jsonl"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "pie_bench.py"), "--data", str(demo), *FAST, "--out", str(out)],
                          env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return pie_bench.read_rows(out), done.stdout


def _key(rows):
    return sorted((r["id"], r["method"]) for r in rows)


def test_one_process_covers_every_image_and_method_and_prints_the_table(single):
    rows, stdout = single
    # 4 images × 5 inversions × (P2P, P2P + LocalBlend): every demo entry has a blend word
    assert len(rows) == N_DEMO * 5 * 2 and len(set(_key(rows))) == len(rows)
    assert all(r["bg_psnr"] is not None and 0 <= r["edit_acc"] <= 1 and r["seconds"] > 0 for r in rows)
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["rows"] == len(rows) and summary["processes"] == 1
    assert "ddim+p2p_lb" in stdout and "27.22" in stdout  # beside PnPInversion's Direct Inversion figure
    assert any("lpips" in m for m in summary["missing"]) or all(r["lpips_bg"] is not None for r in rows)


def test_two_ranks_give_the_same_rows_each_taking_its_half(demo, single):
    out = demo.parent / "two.jsonl"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(ROOT / "benchmarks" / "pie_bench.py"), "--data", str(demo), *FAST, "--out", str(out)],
                          env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["processes"] == 2
    rows, (alone, _) = pie_bench.read_rows(out), single
    assert _key(rows) == _key(alone)
    by_rank = {rank: {r["id"] for r in rows if r["rank"] == rank} for rank in (0, 1)}
    assert len(by_rank[0]) == len(by_rank[1]) == N_DEMO // 2 and not by_rank[0] & by_rank[1]
    index = {(r["id"], r["method"]): r for r in alone}
    for r in rows:
        for metric in ("bg_psnr", "edit_psnr", "bg_ssim", "edit_acc"):
            assert r[metric] == pytest.approx(index[r["id"], r["method"]][metric], abs=1e-3), (r["id"], r["method"], metric)


def test_a_killed_run_resumes_without_loss_or_duplicates(demo, single):
    out = demo.parent / "killed.jsonl"
    partial = out.parent / f"{out.stem}.rank0.jsonl"
    slow = [*FAST, "--steps", "10"]  # slow enough rows to stop it midway
    process = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "pie_bench.py"), "--data", str(demo), *slow, "--out", str(out)],
                               env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and (not partial.exists() or len(partial.read_text().splitlines()) < 3):
        time.sleep(0.05)
    process.kill()
    process.wait()
    written = pie_bench.read_rows(partial)
    assert 3 <= len(written) < N_DEMO * 10, "the run was not stopped midway"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "pie_bench.py"), "--data", str(demo), *slow, "--out", str(out)],
                          env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = pie_bench.read_rows(out)
    assert _key(rows) == _key(single[0]) and len(set(_key(rows))) == len(rows)
    kept = {(r["id"], r["method"]): r for r in rows}
    assert all(kept[r["id"], r["method"]]["seconds"] == r["seconds"] for r in written)  # finished rows were kept, not redone
    assert not partial.exists()


def _folder(tmp_path, demo, change):
    folder = tmp_path / "bad"
    folder.mkdir()
    os.symlink(demo / "annotation_images", folder / "annotation_images")
    mapping = json.loads((demo / "mapping_file.json").read_text())
    text = change(mapping)
    (folder / "mapping_file.json").write_text(text if isinstance(text, str) else json.dumps(mapping))
    return folder


@pytest.mark.parametrize("change, message", [
    (lambda m: "{not json", "not valid JSON"),
    (lambda m: m["000000000001"].__delitem__("source_prompt"), "entry '000000000001': needs 'source_prompt'"),
    (lambda m: m["000000000002"].update(image_path="0_shapes/missing.png"), "entry '000000000002': its image .*missing.png does not exist"),
    (lambda m: m["000000000000"].update(blended_word="circle hexagon"), "entry '000000000000': blend word"),
    (lambda m: m["000000000003"].update(mask=[0, 5, 7]), "entry '000000000003': 'mask' must be run-length pairs"),
])
def test_malformed_folders_are_refused_naming_the_entry(tmp_path, demo, change, message, capsys):
    folder = _folder(tmp_path, demo, change)
    with pytest.raises(pie_bench.PieBenchError, match=message):
        pie_bench.load_cases(folder)
    assert pie_bench.main(["--data", str(folder)]) == 2
    assert "pie_bench:" in capsys.readouterr().err


def test_masks_round_trip_and_the_demo_is_never_overwritten(demo):
    mask = np.random.default_rng(0).random((12, 9)) > 0.6
    back = pie_bench.decode_mask(pie_bench.encode_mask(mask), 12, 9)
    assert (back[1:-1, 1:-1] == mask[1:-1, 1:-1]).all() and back[0].all() and back[:, -1].all()  # the border counts as edited
    with pytest.raises(pie_bench.PieBenchError, match="never overwrites"):
        pie_bench.make_demo(demo)
