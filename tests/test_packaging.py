"""environment.yml mirrors pyproject.toml; weights are safetensors only."""
import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ]", req, maxsplit=1)[0].lower()


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r): r.replace(" ", "") for r in project["dependencies"] + sum(project["optional-dependencies"].values(), [])}
    pip_lines = [ln.strip()[2:].strip() for ln in (ROOT / "environment.yml").read_text().splitlines() if ln.strip().startswith("- ") and "=" in ln or "<" in ln]
    listed = {_name(r): r.replace(" ", "") for r in pip_lines if not r.startswith(("python", "-e"))}
    assert listed.pop("torch") == "torch==2.13.0"
    wanted.pop("torch")
    assert listed == wanted


def test_no_pickled_weights_are_shipped():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    files += [str(p.relative_to(ROOT)) for p in (ROOT / "toy").rglob("*") if p.is_file()]
    assert not [f for f in files if f.endswith((".pt", ".pth", ".bin", ".ckpt", ".pkl"))]


def test_the_hosted_gpu_install_path_keeps_the_hosts_cuda_torch():
    """The README's hosted-GPU commands install the package without pinning the CPU wheel, and the
    package's own torch requirement admits the CUDA builds a GPU host has."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("**In a hosted GPU notebook**", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [ln.split("#")[0].strip() for ln in block.splitlines() if ln.strip()]
    assert any(c.startswith("pip install -e") for c in commands)
    assert not any("torch" in c or "course.py" in c or "download.pytorch.org" in c or "+cpu" in c for c in commands)
    torch_req = next(r for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"] if _name(r) == "torch")
    assert "==" not in torch_req and "+cpu" not in torch_req
