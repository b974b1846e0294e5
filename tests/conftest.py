import os
import shutil
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def saved_pipeline(tmp_path_factory, build) -> str:
    """The folder of a random pipeline from ``build`` (a ``toy.tiny_models`` or ``toy.full_arch``
    ``build_*``), seeded and written with save_pretrained."""
    import torch

    folder = tmp_path_factory.mktemp("pipeline")
    torch.manual_seed(0)
    build(tokenizer_dir=folder / "tok").save_pretrained(folder / "pipe")
    return str(folder / "pipe")


def saved_and_loaded(tmp_path_factory, build):
    """A random pipeline from ``build``, saved with save_pretrained and loaded back by load_pipeline:
    the full-scale code path on a tiny model."""
    from minidiff.pipelines import load_pipeline

    return load_pipeline(saved_pipeline(tmp_path_factory, build), device="cpu")


# ---------------------------------------------------------------- a real browser, with no network

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).exists()), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                    "(apt-get install chromium; .ci/run installs it when run as root)")
_OFFLINE = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--host-resolver-rules=MAP * ~NOTFOUND"]  # offline: no host name resolves


def dump_dom(page, profile: Path) -> str:
    """The DOM of ``page`` (a Path, or a file:// URL with a query) after its scripts ran, in headless
    Chromium with no network at all."""
    url = page.as_uri() if isinstance(page, Path) else page
    done = subprocess.run([CHROMIUM, *_OFFLINE, f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def screenshot(page: Path, profile: Path, out: Path, size: str = "1200,900") -> Path:
    """A PNG of ``page`` rendered offline in headless Chromium."""
    done = subprocess.run([CHROMIUM, *_OFFLINE, f"--user-data-dir={profile}", "--virtual-time-budget=10000",
                           f"--window-size={size}", f"--screenshot={out}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and out.exists(), done.stderr[-2000:]
    return out
