"""Bad input a new user tries gets an error that names the argument, what was expected and what to do:
never a raw torch / Python / transformers error, never silent acceptance."""
import pytest
import torch

import minidiff as md
from minidiff.p2p import P2PEdit
from minidiff.pipelines import load_pipeline

PROMPT = "a red circle on a blue background"


@pytest.fixture(scope="module")
def sd():
    return load_pipeline("tiny-sd", device="cpu")


@pytest.fixture(scope="module")
def latents(sd):
    return sd.noise(2, torch.Generator().manual_seed(0))


def _cases(sd, latents):
    cond = sd.embed([PROMPT, PROMPT])
    return {
        "prompt 42": (lambda: md.generate(sd, 42, steps=2), ValueError, "prompts must be a string or a non-empty list"),
        "prompt None": (lambda: md.generate(sd, None, steps=2), ValueError, "prompts must be a string"),
        "a list holding an int": (lambda: sd.embed([PROMPT, 3]), ValueError, "prompts must all be strings; got int 3"),
        "no prompts": (lambda: sd.embed([]), ValueError, "non-empty list"),
        "a string as cond": (lambda: md.ddim_invert(sd, latents, PROMPT, steps=2), TypeError,
                             "cond must be an embedding from model.embed"),
        "pixels as latents": (lambda: md.ddim_invert(sd, torch.zeros(1, 3, 32, 32), cond[:1], steps=2), ValueError,
                              r"latents must have shape \(B, 4, 8, 8\).*look like pixels.*model.encode"),
        "float64 latents": (lambda: md.ddim_invert(sd, latents.double(), cond, steps=2), TypeError,
                            "latents are torch.float64 but the model runs in torch.float32"),
        "cond batch mismatch": (lambda: md.ddim_invert(sd, latents, sd.embed([PROMPT] * 3), steps=2), ValueError,
                                "cond has a batch of 3 but the latents have 2"),
        "seed 'abc'": (lambda: md.generate(sd, PROMPT, steps=2, seed="abc"), ValueError, "seed must be a non-negative integer"),
        "guidance -1": (lambda: md.ddim_sample(sd, latents, cond, steps=2, guidance=-1, null=sd.null), ValueError,
                        "guidance must be a number ≥ 0"),
        "guidance 'high'": (lambda: md.generate(sd, PROMPT, steps=2, guidance="high"), ValueError, "guidance must be a number"),
        "P2P cross_replace 1.5": (lambda: P2PEdit(PROMPT, PROMPT, cross_replace=1.5), ValueError,
                                  r"cross_replace is a fraction of the steps and must lie in \[0, 1\]"),
        "dtype 'fp16'": (lambda: load_pipeline("tiny-sd", device="cpu", dtype="fp16"), ValueError, "did you mean 'float16'"),
        "dtype 'bogus'": (lambda: load_pipeline("tiny-sd", device="cpu", dtype="bogus"), ValueError,
                          "dtype must be 'auto', torch.float32"),
        "dtype 'float16' on the CPU": (lambda: load_pipeline("tiny-sd", device="cpu", dtype="float16"), ValueError,
                                       "torch.float16 on the CPU is not supported"),
        "model 'tiny-sdx'": (lambda: load_pipeline("tiny-sdx", device="cpu"), ValueError, "did you mean 'tiny-sd'"),
        "model 'sd15', offline": (lambda: load_pipeline("sd15", device="cpu"), OSError,
                                  "stable-diffusion-v1-5/stable-diffusion-v1-5"),
        "model 42": (lambda: load_pipeline(42, device="cpu"), TypeError, "model must be a name, a folder or a hub id"),
    }


CASES = ["prompt 42", "prompt None", "a list holding an int", "no prompts", "a string as cond", "pixels as latents",
         "float64 latents", "cond batch mismatch", "seed 'abc'", "guidance -1", "guidance 'high'", "P2P cross_replace 1.5",
         "dtype 'fp16'", "dtype 'bogus'", "dtype 'float16' on the CPU", "model 'tiny-sdx'", "model 'sd15', offline", "model 42"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gets_a_clear_error(sd, latents, case, monkeypatch):
    monkeypatch.setattr(md.pipelines.hf_constants, "HF_HUB_OFFLINE", True)
    call, error, message = _cases(sd, latents)[case]
    with pytest.raises(error, match=message):
        call()


def test_every_case_is_parametrised(sd, latents):
    assert sorted(_cases(sd, latents)) == sorted(CASES)


def test_a_black_uint8_tensor_reads_as_black(sd):
    """uint8 tensors are pixels in 0–255 (as torchvision reads them), not values in [-1, 1]."""
    black = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    assert torch.equal(sd.to_tensor(black), torch.full((1, 3, 32, 32), -1.0))
    white = torch.full((3, 32, 32), 255, dtype=torch.uint8)
    assert torch.equal(sd.to_tensor(white), torch.ones(1, 3, 32, 32))


def test_family_names_map_to_hub_ids():
    assert md.pipelines.locate("tiny-sd").endswith("tiny-sd")
    with pytest.raises(OSError, match="black-forest-labs/FLUX.1-dev"):
        md.pipelines.locate("flux")
