#!/usr/bin/env python3
"""Print the course's key figures. The last line printed is one JSON object.

    python benchmarks/run.py toy2d                    # 2D toy figures + seconds per notebook
    python benchmarks/run.py toy2d --skip-notebooks   # without executing the notebooks
    python benchmarks/run.py shapes                   # tiny-sd / tiny-flow figures + notebook 04
    python benchmarks/run.py inversion                # null-text, FreeInv, P2P on tiny-sd + notebooks 05-07
    python benchmarks/run.py editing                  # every inversion × editor on 30 ground-truth edits (slow)
    python benchmarks/run.py flowedit                 # FlowEdit vs inversion vs SDEdit on tiny-flow, tiny-flux and tiny-flow-64 + notebook 08
    python benchmarks/run.py morph                    # IMPUS morphing on tiny-sd, baselines, ablations + notebook 09
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import course  # noqa: E402

SUITES = {
    "toy2d": ["01_flows_in_2d", "02_ddim_inversion", "03_flowedit_2d"],
    "shapes": ["04_shapes_world"],
    "inversion": ["05_nulltext_2d", "06_nulltext_p2p", "07_freeinv"],
    "editing": ["06_nulltext_p2p"],
    "flowedit": ["08_flowedit_images"],
    "morph": ["09_impus_morphing"],
}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", choices=sorted(SUITES))
    parser.add_argument("--skip-notebooks", action="store_true", help="do not execute the suite's notebooks")
    args = parser.parse_args(argv)

    from benchmarks import editing, flowedit, inversion, morph, shapes, toy2d

    start = time.perf_counter()
    figures = {"toy2d": toy2d.run, "shapes": shapes.run, "inversion": inversion.run, "editing": editing.run,
               "flowedit": flowedit.run, "morph": morph.run}[args.suite]()
    figures["seconds"] = round(time.perf_counter() - start, 1)
    if not args.skip_notebooks:
        paths = [course.NOTEBOOKS / f"{name}.ipynb" for name in SUITES[args.suite]]
        figures["notebooks_seconds"] = course.execute_notebooks(paths, out=course.BUILD / "bench")
    for key, value in figures.items():
        if key not in ("notebooks_seconds", "by_kind"):
            print(f"{key:<34}{value}")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
