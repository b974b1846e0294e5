"""minidiff's one calling convention, asserted over ``minidiff.__all__`` by ``inspect.signature``.

Every method is ``(denoiser, x, cond, …, steps=50, guidance=…, null=None)``: the model first, then the
latent it starts from (``x``: x_0 for an inverter, x_T for a sampler, X_src for an editor), then the
conditioning (``cond``; an editor's ``cond_src`` / ``cond_tar``; P2P's ``edit``), and the shared trio
in that order with those names. A FreeInv schedule is ``schedule`` (always in inversion order) and a
set to draw it from ``candidates``. Each function has one return annotation.
"""
import inspect

import pytest

import minidiff as md

FUNCTIONS = {name: getattr(md, name) for name in md.__all__ if inspect.isfunction(getattr(md, name))}
METHODS = {name: f for name, f in FUNCTIONS.items() if next(iter(inspect.signature(f).parameters)) == "denoiser"}
RETIRED = {"model", "latent", "x0", "xT", "x1", "x_src", "z0", "guidance_scale", "w", "transforms"}
CONDITIONING = {"cond", "cond_src", "cond_tar", "edit"}


def test_every_method_is_found():
    """The methods this convention covers, so that a rename cannot silently drop one from the test."""
    expected = {"ddim_invert", "ddim_sample", "ddim_schedulers", "flow_invert", "flow_sample", "flow_sigmas", "flowedit",
                "inversion_edit", "sdedit", "generate", "direct_inversion", "negative_prompt_inversion",
                "freeinv_invert", "freeinv_sample", "null_text_invert", "impus_morph", "textual_inversion",
                "p2p_sample", "guided"}
    assert expected <= set(METHODS), expected - set(METHODS)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_no_method_uses_a_retired_name(name):
    params = set(inspect.signature(METHODS[name]).parameters)
    assert not params & RETIRED, f"{name} still takes {sorted(params & RETIRED)}"


@pytest.mark.parametrize("name", sorted(METHODS))
def test_methods_take_denoiser_x_cond_then_steps_guidance_null(name):
    params = inspect.signature(METHODS[name]).parameters
    names = list(params)
    assert names[1] in ("x", "prompts", "steps"), f"{name}: the second argument is {names[1]!r}"
    if names[1] == "x" and name != "guided":  # guided(denoiser, x, t, cond, …) is the one-step primitive
        assert names[2] in CONDITIONING, f"{name}: the third argument is {names[2]!r}"
    trio = [n for n in names if n == "steps" or n.startswith("guidance") or n == "null"]
    order = {"steps": 0, "guidance": 1, "guidance_src": 1, "guidance_tar": 1, "null": 2}
    assert [order[n] for n in trio] == sorted(order[n] for n in trio), f"{name}: {trio} out of order"
    if "steps" in params and name != "guided":
        assert params["steps"].default == 50, f"{name}: steps defaults to {params['steps'].default!r}"
    if "null" in params:
        assert params["null"].default is None, f"{name}: null defaults to {params['null'].default!r}"
    for n in ("trajectory", "progress", "generator", "schedule", "candidates"):
        if n in params and name not in ("null_text_invert", "textual_inversion", "generate", "p2p_sample"):
            assert params[n].kind in (params[n].KEYWORD_ONLY, params[n].POSITIONAL_OR_KEYWORD)


@pytest.mark.parametrize("name", sorted(n for n in METHODS if n not in ("ddim_schedulers", "flow_sigmas", "guided")))
def test_guidance_defaults_are_the_rule(name):
    """1 (no guidance) in the generic samplers and inverters; the paper's scale in a method the paper
    defines at one (null-text, P2P, generation: 7.5; IMPUS: 3; FlowEdit on SD3: 3.5 / 13.5)."""
    params = inspect.signature(METHODS[name]).parameters
    paper = {"null_text_invert": 7.5, "p2p_sample": 7.5, "generate": 7.5, "impus_morph": 3.0}
    if "guidance" in params:
        assert params["guidance"].default == paper.get(name, 1.0), name
    if "guidance_src" in params:
        assert params["guidance_src"].default == 3.5
    if "guidance_tar" in params:
        assert params["guidance_tar"].default == 13.5


@pytest.mark.parametrize("name", sorted(n for n in FUNCTIONS if n not in ("wrap", "load_pipeline")))
def test_one_return_type_per_function(name):
    """A method returns one type whatever its flags (the factories wrap and load_pipeline return the
    adapter of the pipeline's family)."""
    annotation = inspect.signature(FUNCTIONS[name]).return_annotation
    assert annotation is not inspect.Signature.empty, f"{name} has no return annotation"
    assert "|" not in str(annotation), f"{name} returns {annotation}"
