"""The full-scale switch: the image lessons run unchanged on a model of the real architecture.

The image notebooks (04: SD 1.5 and SD3; 06, 07, 09: SD 1.5; 08: SD3 and FLUX.1) are executed end to
end with their ``MODEL`` parameters set, as ``course.py run --model`` sets them, to tiny random pipelines of the full-scale
architectures (toy.full_arch) saved with ``save_pretrained``. A local folder takes its family's
full-scale settings (minidiff.settings); the run sizes are cut by name, and the shapes world's
checks are reported instead of asserted, as on a real model.
"""
import os
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import saved_pipeline

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import course  # noqa: E402
from minidiff.settings import settings_for  # noqa: E402
from toy.full_arch import build_flux_arch, build_sd3_arch, build_sd15_arch  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"


def execute(stem: str, values: dict, tmp_path: Path):
    """Run notebook ``stem`` with ``values`` injected; returns the executed notebook and its printed text."""
    nb = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    course.inject_parameters(nb, values)
    os.environ.update(course.headless_env())
    course.run_notebook(nb, NOTEBOOKS, timeout=600)
    nbformat.write(nb, tmp_path / f"{stem}.ipynb")
    text = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)
    return nb, text


def test_a_folder_takes_its_familys_full_scale_settings(tmp_path_factory):
    sd15, sd3 = saved_pipeline(tmp_path_factory, build_sd15_arch), saved_pipeline(tmp_path_factory, build_sd3_arch)
    assert settings_for(sd15) | {"model": "x"} == settings_for("sd15") | {"model": "x"}
    assert settings_for(sd3)["family"] == "sd3" and settings_for(sd3)["model"] == sd3
    assert not settings_for(sd15)["shapes_world"] and settings_for("tiny-sd")["shapes_world"]


def test_course_sets_every_model_parameter_of_a_family():
    nb06 = nbformat.read(NOTEBOOKS / "06_nulltext_p2p.ipynb", as_version=4)
    nb08 = nbformat.read(NOTEBOOKS / "08_flowedit_images.ipynb", as_version=4)
    assert course.model_parameters(nb06) == {"MODEL": "sd15"}
    assert course.model_parameters(nb08) == {"MODEL_FLOW": "sd3", "MODEL_FLUX": "flux"}
    paths = [NOTEBOOKS / "06_nulltext_p2p.ipynb", NOTEBOOKS / "08_flowedit_images.ipynb"]
    assert course.full_scale_parameters(paths, ["flux"], named=False) == {"08_flowedit_images": {"MODEL_FLUX": "flux"}}
    with pytest.raises(SystemExit, match="no MODEL parameter of family sd3"):
        course.full_scale_parameters(paths[:1], ["sd3"], named=True)
    course.inject_parameters(nb06, {"MODEL": "sd15", "N_EDITS": 3})
    source = course.parameters_cell(nb06).source
    assert "MODEL = 'sd15'  # set by course.py" in source and "N_EDITS = 3  # set by course.py" in source
    assert 'STEPS = 20 if SHAPES_WORLD else S["steps"]' in source  # what derives from MODEL follows it
    with pytest.raises(ValueError, match="no parameter NOPE"):
        course.inject_parameters(nb06, {"NOPE": 1})


def test_every_image_lesson_has_a_model_parameter():
    for stem in ("04_shapes_world", "06_nulltext_p2p", "07_freeinv", "08_flowedit_images", "09_impus_morphing"):
        families = set(course.model_parameters(nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)).values())
        assert families, stem


def test_notebook_06_runs_on_the_sd15_architecture(tmp_path_factory, tmp_path):
    folder = saved_pipeline(tmp_path_factory, build_sd15_arch)
    _, text = execute("06_nulltext_p2p", {"MODEL": folder, "N_EDITS": 3, "STEPS": 2, "INNER_STEPS": 1}, tmp_path)
    assert "not asserted on" in text and "there is no second model here" in text
    assert "shapes-world checks reported, not asserted" in text


def test_notebook_08_runs_on_the_sd3_and_flux_architectures(tmp_path_factory, tmp_path):
    sd3, flux = saved_pipeline(tmp_path_factory, build_sd3_arch), saved_pipeline(tmp_path_factory, build_flux_arch)
    values = {"MODEL_FLOW": sd3, "MODEL_FLUX": flux, "N_EDITS": 3, "STEPS_FLOW": 3, "STEPS_FLUX": 3,
              "N_MAX_SWEEP": (1, 2), "N_VAR_SEEDS": 2, "N_VAR_CASES": 3, "N_RECON": 2, "RECON_STEPS": (2,), "N_GENERATE": 4}
    _, text = execute("08_flowedit_images", values, tmp_path)
    assert "not asserted on" in text and "shapes-world checks reported, not asserted" in text


def test_notebook_07_runs_on_the_sd15_architecture(tmp_path_factory, tmp_path):
    folder = saved_pipeline(tmp_path_factory, build_sd15_arch)
    values = {"MODEL": folder, "N_IMAGES": 2, "N_EDITS": 3, "EDIT_STEPS": 2, "SD_STEP_COUNTS": (2, 4)}
    _, text = execute("07_freeinv", values, tmp_path)
    assert "shapes-world checks reported, not asserted" in text


def test_notebook_09_runs_on_the_sd15_architecture(tmp_path_factory, tmp_path):
    folder = saved_pipeline(tmp_path_factory, build_sd15_arch)
    values = {"MODEL": folder, "STEPS": 2, "TI_ITERS": 2, "LORA_ITERS": 2, "UNCOND_ITERS": 1, "PPL_SAMPLES": 2,
              "FRAMES": 3, "MAX_PROBES": 1, "STEPS_64": 2, "TI_ITERS_64": 2, "LORA_ITERS_64": 2, "UNCOND_ITERS_64": 1, "PPL_SAMPLES_64": 2}
    _, text = execute("09_impus_morphing", values, tmp_path)
    assert "shapes-world checks reported, not asserted" in text


def test_notebook_04_runs_on_the_sd15_and_sd3_architectures(tmp_path_factory, tmp_path):
    sd15, sd3 = saved_pipeline(tmp_path_factory, build_sd15_arch), saved_pipeline(tmp_path_factory, build_sd3_arch)
    _, text = execute("04_shapes_world", {"MODEL_SD": sd15, "MODEL_FLOW": sd3, "N_EVAL": 8, "STEPS": 2}, tmp_path)
    assert "shapes-world checks reported, not asserted" in text
