#!/usr/bin/env python3
"""The PIE-Bench editing table from one command: inversions × Prompt-to-Prompt, with and without
LocalBlend, on a folder in PIE-Bench's layout, on one process or sharded over many with accelerate.

    python benchmarks/pie_bench.py --data DIR --model sd15 --methods ddim,nti,npi,direct,freeinv --out rows.jsonl
    torchrun --nproc_per_node 2 benchmarks/pie_bench.py --data DIR ...     # or: accelerate launch benchmarks/pie_bench.py ...
    python benchmarks/pie_bench.py --make-demo DIR                         # a small PIE-Bench folder from the shapes world

``DIR/mapping_file.json`` maps each id to ``image_path`` (under ``DIR/annotation_images``, else ``DIR``),
``source_prompt`` and ``target_prompt`` (PIE-Bench brackets the edited words: "a [cat] sitting"; the
brackets are dropped), ``blended_word`` ("cat dog": LocalBlend's source and target word, or "") and
``mask``, the edited region run-length encoded over the image's pixels ([start, length, …], row-major;
the image border counts as edited, as PIE-Bench's evaluation has it, against annotation errors there).

Each finished (image, method) is one JSON line, written and flushed at once, so a stopped run resumes
where it stopped and loses nothing: ``id``, ``method`` (inversion+editor), then background PSNR / SSIM /
MSE outside the mask (``bg_*``) and the same inside it (``edit_*``), ``edit_acc`` where the folder's
world has a reader (the demo's), LPIPS and CLIP where their weights are on the machine (``null`` and
named as missing otherwise, never a zero), and ``seconds``. Images are brought to the model's size by
``model.fit`` (centre crop, then resize) and their masks by the same crop and a nearest resize.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import minidiff as md  # noqa: E402
from minidiff.settings import settings_for  # noqa: E402
from toy.shapes.inversion_editing import edit_all, invert  # noqa: E402

#: the CLI's method names → toy.shapes.inversion_editing's inversions (DDIM inverts at w = 1 and edits
#: at the editing guidance, PIE-Bench's DDIM + P2P row)
INVERSIONS = {"ddim": "ddim_w1_cfg", "nti": "nti", "npi": "npi", "direct": "direct", "freeinv": "freeinv"}
EDITORS = ("p2p", "p2p_lb")
#: PnPInversion's table (SD 1.4, P2P): background PSNR, LPIPS ×10³ and structure distance ×10³ outside the mask
PUBLISHED = {"ddim": (17.87, 208.8, 69.4), "nti": (27.03, 60.7, 13.4), "npi": (26.21, None, 16.17),
             "direct": (27.22, 54.6, 11.65)}
CLIP_ID = "openai/clip-vit-large-patch14"


class PieBenchError(ValueError):
    """A folder or entry that is not in PIE-Bench's layout; the message names the file or entry."""


@dataclass(frozen=True)
class PieCase:
    """One entry, with what :func:`toy.shapes.inversion_editing.edit_all`'s editors read."""

    id: str
    image: Path
    source_caption: str
    target_caption: str
    blend_words: tuple[str, str] | None
    rle: tuple[int, ...]
    world: str | None


def _prompt(text: str) -> str:
    return " ".join(text.replace("[", " ").replace("]", " ").split())


def load_cases(data: Path) -> list[PieCase]:
    """The entries of ``data/mapping_file.json``, checked: a clear :class:`PieBenchError` for a missing or
    malformed file, an entry without a field or of the wrong type, a missing image, or a blend word that
    its prompt does not contain."""
    mapping = data / "mapping_file.json"
    if not mapping.is_file():
        raise PieBenchError(f"{mapping} does not exist: --data must be a folder in PIE-Bench's layout (mapping_file.json "
                            "and the images), or make one with --make-demo.")
    try:
        entries = json.loads(mapping.read_text())
    except json.JSONDecodeError as err:
        raise PieBenchError(f"{mapping} is not valid JSON: {err}") from None
    if not isinstance(entries, dict) or not entries:
        raise PieBenchError(f"{mapping} must map ids to entries ({{\"000000000000\": {{...}}, ...}}), got {type(entries).__name__}.")
    images = data / "annotation_images" if (data / "annotation_images").is_dir() else data
    cases = []
    for key, entry in entries.items():
        where = f"{mapping.name} entry {key!r}"
        for field, kind in (("image_path", str), ("source_prompt", str), ("target_prompt", str), ("mask", list)):
            if not isinstance(entry, dict) or not isinstance(entry.get(field), kind):
                raise PieBenchError(f"{where}: needs {field!r} ({kind.__name__}), got {entry.get(field) if isinstance(entry, dict) else entry!r}.")
        rle = entry["mask"]
        if len(rle) % 2 or not all(isinstance(v, int) and v >= 0 for v in rle):
            raise PieBenchError(f"{where}: 'mask' must be run-length pairs [start, length, …] of non-negative ints.")
        image = images / entry["image_path"]
        if not image.is_file():
            raise PieBenchError(f"{where}: its image {image} does not exist.")
        source, target = _prompt(entry["source_prompt"]), _prompt(entry["target_prompt"])
        words = entry.get("blended_word", "").split()
        if words and len(words) != 2:
            raise PieBenchError(f"{where}: 'blended_word' must be two words, source and target (\"cat dog\"), or \"\"; got {entry['blended_word']!r}.")
        for word, prompt, side in zip(words, (source, target), ("source", "target")):
            if word not in prompt.split():
                raise PieBenchError(f"{where}: blend word {word!r} is not a word of the {side} prompt {prompt!r}.")
        cases.append(PieCase(str(key), image, source, target, tuple(words) or None, tuple(rle), entry.get("minidiff_world")))
    return cases


def decode_mask(rle, height: int, width: int) -> np.ndarray:
    """PIE-Bench's run-length mask → bool (height, width), True where the edit is; the border counts as edited."""
    flat = np.zeros(height * width, dtype=bool)
    for start, length in zip(rle[::2], rle[1::2]):
        flat[start:start + length] = True
    mask = flat.reshape(height, width)
    mask[0, :] = mask[-1, :] = mask[:, 0] = mask[:, -1] = True
    return mask


def encode_mask(mask: np.ndarray) -> list[int]:
    """bool (H, W) → [start, length, …] over the row-major pixels (the inverse of :func:`decode_mask`'s runs)."""
    flat = np.concatenate([[False], mask.reshape(-1), [False]])
    edges = np.flatnonzero(flat[1:] != flat[:-1])
    return [int(v) for s, e in zip(edges[::2], edges[1::2]) for v in (s, e - s)]


def _fitted_mask(model, mask: np.ndarray) -> torch.Tensor:
    """The edit mask through ``model.fit``'s crop and a nearest resize: bool (1, 1, S, S)."""
    fitted = model.fit(Image.fromarray(mask.astype(np.uint8) * 255).convert("RGB"))[0]
    return torch.from_numpy(np.asarray(fitted)[..., 0] > 127)[None, None]


def _ssim(a: torch.Tensor, b: torch.Tensor, keep: torch.Tensor) -> float:
    """SSIM of the kept pixels, PIE-Bench's way: both images in [0, 1] multiplied by the mask."""
    from skimage.metrics import structural_similarity

    x, y = (((v[0] + 1) / 2 * keep[0]).permute(1, 2, 0).double().numpy() for v in (a, b))
    return float(structural_similarity(x, y, data_range=1.0, channel_axis=2, win_size=min(7, x.shape[0] // 2 * 2 - 1)))


def _region(edited: torch.Tensor, source: torch.Tensor, keep: torch.Tensor, prefix: str) -> dict:
    if not keep.any():
        return {f"{prefix}_psnr": None, f"{prefix}_ssim": None, f"{prefix}_mse": None}
    mse = float(((edited - source) ** 2)[keep.expand_as(edited)].double().mean() / 4)  # on [0, 1] pixels
    return {f"{prefix}_psnr": float(md.psnr_per_image(edited, source, keep)[0]), f"{prefix}_ssim": _ssim(edited, source, keep),
            f"{prefix}_mse": mse}


class Extras:
    """LPIPS and CLIP score when their weights are on this machine (no download); ``missing`` names the rest."""

    def __init__(self):
        self.missing = []
        self.lpips = None
        if md.perceptual.lpips_available():
            self.lpips = lambda a, b: float(md.perceptual_distance(a, b, backend="lpips")[0])
        else:
            self.missing.append("lpips (the lpips package and its AlexNet weights)")
        try:
            from transformers import CLIPModel, CLIPProcessor

            self.clip = CLIPModel.from_pretrained(CLIP_ID, local_files_only=True).eval()
            self.clip_processor = CLIPProcessor.from_pretrained(CLIP_ID, local_files_only=True)
        except OSError:
            self.clip = None
            self.missing.append(f"clip ({CLIP_ID} in the Hugging Face cache)")

    @torch.no_grad()
    def clip_score(self, image: torch.Tensor, prompt: str) -> float | None:
        if self.clip is None:
            return None
        pixels = ((image[0] + 1) * 127.5).clamp(0, 255).byte().permute(1, 2, 0).numpy()
        inputs = self.clip_processor(text=[prompt], images=[pixels], return_tensors="pt", padding=True)
        out = self.clip(**inputs)
        return float(100 * torch.nn.functional.cosine_similarity(out.image_embeds, out.text_embeds).clamp_min(0)[0])


def _edit_accuracy(edited: torch.Tensor, case: PieCase) -> float | None:
    """1/0 where the folder's world has a reader (the demo's shapes world), else None."""
    if case.world != "shapes":
        return None
    from toy.shapes import parse_caption, read_attributes
    from toy.shapes.world import to_world

    return float(read_attributes(to_world(edited))[0] == parse_caption(case.target_caption))


def run_case(model, case: PieCase, methods: list[str], editors: tuple[str, ...], steps: int, guidance: float,
             inner_steps: int, extras: Extras, done: set) -> list[dict]:
    """Every (method, editor) row of one image that is not in ``done``."""
    image = Image.open(case.image).convert("RGB")
    source = model.to_tensor(model.fit(image)).float().cpu()
    edit_mask = _fitted_mask(model, decode_mask(case.rle, image.height, image.width))
    z0, cond = model.encode(source), model.embed([case.source_caption])
    rows = []
    for method in methods:
        todo = [e for e in editors if (case.id, f"{method}+{e}") not in done and (e != "p2p_lb" or case.blend_words)]
        if not todo:
            continue
        start = time.perf_counter()
        inv = invert(model, INVERSIONS[method], z0, cond, steps, guidance, inner_steps)
        invert_seconds = time.perf_counter() - start
        for editor in todo:
            start = time.perf_counter()
            edited = edit_all(model, inv, [case], editor, steps)["edits"].float().cpu()
            row = {"id": case.id, "method": f"{method}+{editor}", "inversion": method, "editor": editor,
                   **_region(edited, source, ~edit_mask, "bg"), **_region(edited, source, edit_mask, "edit"),
                   "edit_acc": _edit_accuracy(edited, case),
                   "lpips_bg": extras.lpips(edited * ~edit_mask, source * ~edit_mask) if extras.lpips else None,
                   "clip_target": extras.clip_score(edited, case.target_caption),
                   "seconds": invert_seconds + time.perf_counter() - start}
            rows.append(row)
    return rows


def read_rows(*paths: Path) -> list[dict]:
    """Rows of JSON-lines files, skipping a last line cut short by a kill."""
    rows = []
    for path in paths:
        if path.is_file():
            for line in path.read_text().splitlines():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return rows


def _rank_files(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f"{out.stem}.rank*.jsonl"))


def merge(out: Path) -> list[dict]:
    """``out``'s rows and every rank's, one per (id, method), written to ``out`` (through a temporary file);
    the rank files are removed once merged."""
    seen, rows = set(), []
    for row in read_rows(out, *_rank_files(out)):
        if (row["id"], row["method"]) not in seen:
            seen.add((row["id"], row["method"]))
            rows.append(row)
    rows.sort(key=lambda r: (r["id"], r["method"]))
    tmp = out.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(out)
    for path in _rank_files(out):
        path.unlink()
    return rows


def summary(rows: list[dict], missing: list[str]) -> str:
    """Mean ± s.e. per method over its images, beside PnPInversion's published figures."""
    from minidiff.stats import fmt

    lines = [f"{'method':<18}{'n':>4}{'bg PSNR':>16}{'bg SSIM':>15}{'bg MSE ×1e3':>15}{'edit acc':>15}{'s / image':>13}"
             f"   PIE-Bench (SD 1.4): PSNR, LPIPS×1e3, structure×1e3"]
    for method in sorted({r["method"] for r in rows}):
        mine = [r for r in rows if r["method"] == method]

        def col(key, scale=1.0, digits=2):
            values = [r[key] * scale for r in mine if r.get(key) is not None]
            return fmt(values, digits) if len(values) > 1 else ("—" if not values else f"{values[0]:.{digits}f}")

        published = PUBLISHED.get(mine[0]["inversion"])
        paper = ", ".join("—" if v is None else f"{v:g}" for v in published) if published else "—"
        lines.append(f"{method:<18}{len(mine):>4}{col('bg_psnr'):>16}{col('bg_ssim', digits=3):>15}{col('bg_mse', 1e3):>15}"
                     f"{col('edit_acc'):>15}{col('seconds'):>13}   {paper}")
    if missing:
        lines.append("not measured (weights not on this machine): " + "; ".join(missing))
    return "\n".join(lines)


def make_demo(folder: Path, n: int = 6, size: int = 128) -> Path:
    """A PIE-Bench-layout folder of ``n`` shapes-world edits (images ``size``², their true change masks
    run-length encoded, bracketed prompts, the changed word as ``blended_word``); refuses a folder that exists."""
    from toy.shapes import caption
    from toy.shapes.edits import change_mask
    from toy.shapes.editing import editing_cases
    from toy.shapes.world import render

    if folder.exists():
        raise PieBenchError(f"{folder} exists; --make-demo writes a new folder and never overwrites one.")
    images = folder / "annotation_images" / "0_shapes"
    images.mkdir(parents=True)
    mapping = {}
    for i, case in enumerate(editing_cases(-(-n // 3) * 3)[:n]):
        key = f"{i:012d}"
        pixels = ((render([case.source], size=size)[0] + 1) * 127.5).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
        Image.fromarray(pixels).save(images / f"{key}.png")
        mask = change_mask(case.source, case.target)[0].numpy().repeat(size // 32, 0).repeat(size // 32, 1)
        old, new = {"shape": (case.source.kind, case.target.kind), "color": (case.source.color, case.target.color),
                    "background": (case.source.background, case.target.background)}[case.attribute]
        src, tar = caption(case.source).split(), caption(case.target).split()
        at = next(j for j, (a, b) in enumerate(zip(src, tar)) if a != b)
        src[at], tar[at] = f"[{src[at]}]", f"[{tar[at]}]"
        mapping[key] = {"image_path": f"0_shapes/{key}.png", "source_prompt": " ".join(src), "target_prompt": " ".join(tar),
                        "editing_instruction": f"change the {case.attribute} to {new}", "editing_type_id": "0",
                        "blended_word": f"{old} {new}", "mask": encode_mask(mask), "minidiff_world": "shapes"}
    (folder / "mapping_file.json").write_text(json.dumps(mapping, indent=1))
    return folder


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks/pie_bench.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a folder in PIE-Bench's layout (mapping_file.json and the images)")
    parser.add_argument("--model", default="tiny-sd", help="a family (sd15), hub id, shipped name or folder (default: %(default)s)")
    parser.add_argument("--methods", default="ddim,nti,npi,direct,freeinv", help=f"comma-separated, of {', '.join(INVERSIONS)} (default: %(default)s)")
    parser.add_argument("--editors", default=",".join(EDITORS), help="p2p, p2p_lb or both (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("pie_rows.jsonl"), help="JSON-lines output, resumed if it exists (default: %(default)s)")
    parser.add_argument("--steps", type=int, help="DDIM steps (default: the model's paper setting, 50 for SD)")
    parser.add_argument("--guidance", type=float, help="editing CFG scale (default: the model's paper setting, 7.5 for SD)")
    parser.add_argument("--inner-steps", type=int, default=10, help="null-text's N (default: %(default)s)")
    parser.add_argument("--limit", type=int, help="only the first N entries (default: all)")
    parser.add_argument("--make-demo", type=Path, metavar="DIR", help="write a shapes-world folder in PIE-Bench's layout and stop")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.make_demo:
            print(f"wrote {make_demo(args.make_demo)}")
            return 0
        if args.data is None:
            raise PieBenchError("pass --data DIR (a folder in PIE-Bench's layout), or --make-demo DIR to write one.")
        methods = [m for m in args.methods.split(",") if m]
        editors = tuple(e for e in args.editors.split(",") if e)
        for name, given, known in (("--methods", methods, INVERSIONS), ("--editors", editors, EDITORS)):
            if not given or set(given) - set(known):
                raise PieBenchError(f"{name} {','.join(given)}: choose from {', '.join(known)}.")
        cases = load_cases(args.data)[:args.limit]
    except PieBenchError as err:
        print(f"pie_bench: {err}", file=sys.stderr)
        return 2
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    settings = settings_for(args.model)
    steps, guidance = args.steps or settings["steps"], args.guidance or settings["guidance"]
    model = md.load_pipeline(settings["model"], device=state.device, dtype=torch.float32)
    out = args.out.resolve()
    done = {(r["id"], r["method"]) for r in read_rows(out, *_rank_files(out))}
    extras = Extras()
    mine_file = out.parent / f"{out.stem}.rank{state.process_index}.jsonl"
    with state.split_between_processes(cases) as mine:
        with mine_file.open("a") as sink:
            for case in mine:
                for row in run_case(model, case, methods, editors, steps, guidance, args.inner_steps, extras, done):
                    sink.write(json.dumps(row | {"rank": state.process_index}) + "\n")
                    sink.flush()
                    os.fsync(sink.fileno())
    state.wait_for_everyone()
    if state.is_main_process:
        rows = merge(out)
        print(summary(rows, extras.missing))
        print(json.dumps({"rows": len(rows), "processes": state.num_processes, "out": str(out), "missing": extras.missing}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
