"""Every method on tiny random models with the full-scale architectures (toy.full_arch) of SD 1.5,
SD3 (with T5) and FLUX.1-dev, through save_pretrained → load_pipeline: the code path of the real
checkpoints, with closed-form checks where the methods have them."""
import pytest
import torch
import torch.nn.functional as F

from conftest import saved_and_loaded

import minidiff as md
from minidiff.freeinv import IDENTITY, ROTATIONS
from minidiff.p2p import AttentionControl, P2PEdit, p2p_sample
from minidiff.pipelines import FluxDenoiser, SD3Denoiser, StableDiffusionDenoiser
from toy.full_arch import build_flux_arch, build_sd3_arch, build_sd15_arch
from toy.shapes import Scene, render

SOURCE = "a red circle on a blue background"
TARGET = "a red hexagon on a blue background"  # "hexagon": two BPE tokens in the SD 1.5-arch tokenizer
OTHER = "a green square on a white background"
DDIM_STEPS, FLOW_STEPS, W = 2, 3, 7.5
SCENES = [Scene("circle", "red", "blue", 16.0, 16.0, 7.0), Scene("square", "green", "white", 14.0, 18.0, 6.0)]


def images(size: int, n: int = 1) -> torch.Tensor:
    """Shapes-world renders (32²) scaled to ``size``², in [−1, 1]."""
    return F.interpolate(render(SCENES[:n]), size=(size, size), mode="nearest")


@pytest.fixture(scope="module")
def sd15(tmp_path_factory):
    return saved_and_loaded(tmp_path_factory, build_sd15_arch)


@pytest.fixture(scope="module")
def sd3(tmp_path_factory):
    return saved_and_loaded(tmp_path_factory, build_sd3_arch)


@pytest.fixture(scope="module")
def flux(tmp_path_factory):
    return saved_and_loaded(tmp_path_factory, build_flux_arch)


@pytest.fixture(scope="module")
def sd15_z0(sd15):
    return sd15.encode(images(64))


# ---------------------------------------------------------------- SD 1.5 architecture


def test_sd15_arch_keeps_sd15s_layout_through_loading(sd15, sd15_z0):
    assert isinstance(sd15, StableDiffusionDenoiser)
    unet, vae, pipe = sd15.unet.config, sd15.vae.config, sd15.pipe
    assert tuple(unet.down_block_types) == ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)
    assert tuple(unet.up_block_types) == ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3
    assert unet.layers_per_block == 2 and len(unet.block_out_channels) == 4
    assert type(sd15.unet.mid_block).__name__ == "UNetMidBlock2DCrossAttn"
    # SD 1.5's 16 transformer blocks: 3·2 down + 1 mid + 3·3 up, each one self- and one cross-attention
    assert len(sd15.unet.attn_processors) == 32
    assert len(vae.down_block_types) == 4 and vae.latent_channels == 4 and pipe.vae_scale_factor == 8
    assert type(pipe.text_encoder).__name__ == "CLIPTextModel" and type(pipe.scheduler).__name__ == "DDIMScheduler"
    assert sd15.scheduler_config["beta_schedule"] == "scaled_linear" and sd15.scheduler_config["steps_offset"] == 1
    assert sd15.image_size == 64 and sd15_z0.shape == (1, 4, 8, 8)
    assert sd15.embed(SOURCE).shape == (1, 16, unet.cross_attention_dim)
    tok = pipe.tokenizer
    assert tok.convert_ids_to_tokens(tok("hexagon", add_special_tokens=False).input_ids) == ["hex", "agon</w>"]
    for word in ("magenta", "background", "triangle", "circle"):  # every other word stays one token
        assert len(tok(word, add_special_tokens=False).input_ids) == 1, word


def test_sd15_ddim_inversion_and_reconstruction(sd15, sd15_z0):
    cond = sd15.embed(SOURCE)
    path = []
    zT = md.ddim_invert(sd15, sd15_z0, cond, DDIM_STEPS, trajectory=path)
    assert len(path) == DDIM_STEPS + 1 and path[0] is sd15_z0 and zT.shape == sd15_z0.shape
    assert (zT - sd15_z0).abs().max() > 0.1  # it went somewhere
    rec = md.ddim_sample(sd15, zT, cond, DDIM_STEPS, guidance=W, null=sd15.null)
    assert rec.shape == sd15_z0.shape and torch.isfinite(rec).all()
    assert sd15.decode(rec).shape == (1, 3, 64, 64)


def test_sd15_null_text_inversion(sd15, sd15_z0):
    cond, null = sd15.embed(SOURCE), sd15.null
    ddim = md.ddim_invert(sd15, sd15_z0, cond, DDIM_STEPS)
    untouched = md.null_text_invert(sd15, sd15_z0, cond, null=null, steps=DDIM_STEPS, guidance=W, inner_steps=0)
    assert torch.equal(untouched.latent, ddim)
    assert len(untouched.nulls) == DDIM_STEPS and all(torch.equal(n, null) for n in untouched.nulls)
    # with ∅_t = ∅ the per-step list samples exactly as the single ∅ does
    torch.testing.assert_close(md.ddim_sample(sd15, ddim, cond, DDIM_STEPS, W, untouched.nulls),
                               md.ddim_sample(sd15, ddim, cond, DDIM_STEPS, W, null), atol=0, rtol=0)
    nti = md.null_text_invert(sd15, sd15_z0, cond, null=null, steps=DDIM_STEPS, guidance=W, inner_steps=1)
    assert torch.equal(nti.latent, ddim) and nti.inner_iters == [1.0] * DDIM_STEPS
    assert all(n.shape == null.shape and not torch.equal(n, null) for n in nti.nulls)  # one Adam step moved each ∅_t
    assert all(torch.isfinite(torch.tensor(nti.losses)))
    assert torch.isfinite(md.ddim_sample(sd15, nti.latent, cond, DDIM_STEPS, W, nti.nulls)).all()


def test_sd15_negative_prompt_inversion_samples_the_source_at_w1(sd15, sd15_z0):
    cond = sd15.embed(SOURCE)
    npi = md.negative_prompt_inversion(sd15, sd15_z0, cond, DDIM_STEPS)
    assert torch.equal(npi.latent, md.ddim_invert(sd15, sd15_z0, cond, DDIM_STEPS)) and npi.null is cond
    out = p2p_sample(sd15, npi.latent, P2PEdit(SOURCE, TARGET), DDIM_STEPS, guidance=W, null=npi.null)[0]
    torch.testing.assert_close(out[0], md.ddim_sample(sd15, npi.latent, cond, DDIM_STEPS)[0], atol=1e-5, rtol=0)


def test_sd15_direct_inversion_reconstructs_the_source_branch_exactly_under_cfg(sd15, sd15_z0):
    di = md.direct_inversion(sd15, sd15_z0, sd15.embed(SOURCE), DDIM_STEPS)
    assert len(di.source_path) == DDIM_STEPS + 1
    torch.testing.assert_close(di.source_path[0], di.latent)
    torch.testing.assert_close(di.source_path[-1], sd15_z0)
    out = p2p_sample(sd15, di.latent, P2PEdit(SOURCE, TARGET), DDIM_STEPS, guidance=W, source_path=di.source_path)[0]
    torch.testing.assert_close(out[0], sd15_z0[0], atol=1e-5, rtol=0)
    drift = p2p_sample(sd15, di.latent, P2PEdit(SOURCE, TARGET), DDIM_STEPS, guidance=W)[0]
    assert (drift[0] - sd15_z0[0]).abs().max() > 1e-2  # without the path, guidance pulls the source away


def test_sd15_freeinv_identity_is_ddim_and_rotations_are_not(sd15, sd15_z0):
    cond = sd15.embed(SOURCE)
    ddim = md.ddim_invert(sd15, sd15_z0, cond, DDIM_STEPS)
    inv = md.freeinv_invert(sd15, sd15_z0, cond, DDIM_STEPS, schedule=[IDENTITY] * DDIM_STEPS)
    assert torch.equal(inv.latent, ddim)
    assert torch.equal(md.freeinv_sample(sd15, inv.latent, schedule=inv.schedule, cond=cond, steps=DDIM_STEPS),
                       md.ddim_sample(sd15, ddim, cond, DDIM_STEPS))
    turned = md.freeinv_invert(sd15, sd15_z0, cond, DDIM_STEPS, schedule=[ROTATIONS[1], ROTATIONS[2]])
    assert (turned.latent - ddim).abs().max() > 1e-3  # a random UNet is not rotation-equivariant
    assert torch.isfinite(md.freeinv_sample(sd15, turned.latent, schedule=turned.schedule, cond=cond, steps=DDIM_STEPS)).all()


def test_sd15_p2p_word_swap_to_a_two_token_word(sd15, sd15_z0):
    control = AttentionControl(P2PEdit(SOURCE, TARGET), sd15.pipe.tokenizer, DDIM_STEPS)
    assert control.src_spans[2] == (3, 4) and control.tar_spans[2] == (3, 5)
    assert control.mapper[3, 3] == control.mapper[4, 3] == 0.5 and control.mapper[3:5].sum() == 1
    assert control.mapper[5, 4] == 1 and control.aligned.all()  # "on" after "hexagon" is shifted by one
    cond_src, cond_tar = sd15.embed(SOURCE), sd15.embed(TARGET)
    zT = md.ddim_invert(sd15, sd15_z0, cond_src, DDIM_STEPS)
    processors = {k: type(v) for k, v in sd15.unet.attn_processors.items()}
    edit = P2PEdit(SOURCE, TARGET, cross_replace=1.0, self_replace=1.0)
    out = p2p_sample(sd15, zT, edit, DDIM_STEPS, guidance=W)[0]
    assert out.shape == (2, 4, 8, 8) and torch.isfinite(out).all()
    assert {k: type(v) for k, v in sd15.unet.attn_processors.items()} == processors  # removed again
    # the source branch is plain guided DDIM sampling (up to float rounding, which w = 7.5 amplifies to
    # ~1e-4 on latents of size ~4); the target follows neither its own prompt alone nor the source
    torch.testing.assert_close(out[0], md.ddim_sample(sd15, zT, cond_src, DDIM_STEPS, W, sd15.null)[0], atol=5e-4, rtol=0)
    plain_target = md.ddim_sample(sd15, zT, cond_tar, DDIM_STEPS, W, sd15.null)[0]
    assert (out[1] - plain_target).abs().max() > 1e-2 and (out[1] - out[0]).abs().max() > 1e-2


def test_sd15_impus_morph_runs_and_leaves_the_unet_as_it_was(sd15):
    z0, cond = sd15.encode(images(64, 2)), sd15.embed([SOURCE, OTHER])
    before = {k: v.clone() for k, v in sd15.unet.state_dict().items()}
    probe = sd15(z0, 500, cond)
    distance = lambda a, b: md.perceptual_distance(a, b, sd15, backend="vae")  # noqa: E731
    morph = md.impus_morph(sd15, z0, cond, null=sd15.null, steps=DDIM_STEPS, ti_iters=2, lora_iters=2, uncond_iters=2,
                           rppd_frames=3, distance=distance, variance_tolerance=10.0,
                           generator=torch.Generator().manual_seed(0))
    try:
        assert morph.rank == md.lora_rank(morph.rppd) and [len(v) for v in morph.losses.values()] == [2, 2, 2]
        assert morph.embeddings.shape == cond.shape and not torch.equal(morph.embeddings, cond)  # textual inversion moved them
        frames = morph.images(torch.tensor([0.0, 0.5, 1.0]))
        assert frames.shape == (3, 3, 64, 64) and torch.isfinite(frames).all()
        assert (frames[0] - frames[2]).abs().max() > 0
    finally:
        morph.remove()
    assert not hasattr(sd15.unet, "peft_config")
    assert all(torch.equal(v, before[k]) for k, v in sd15.unet.state_dict().items())
    assert torch.equal(sd15(z0, 500, cond), probe)


# ---------------------------------------------------------------- SD3 architecture (with T5)


@pytest.fixture(scope="module")
def sd3_z0(sd3):
    return sd3.encode(images(64))


def test_sd3_arch_has_three_text_encoders_and_t5_length_sequences(sd3, sd3_z0):
    assert isinstance(sd3, SD3Denoiser)
    pipe, tf = sd3.pipe, sd3.transformer.config
    assert [type(e).__name__ for e in (pipe.text_encoder, pipe.text_encoder_2, pipe.text_encoder_3)] == [
        "CLIPTextModelWithProjection", "CLIPTextModelWithProjection", "T5EncoderModel"]
    assert type(pipe.tokenizer_3).__name__ == "T5TokenizerFast"
    clip_widths = pipe.text_encoder.config.hidden_size + pipe.text_encoder_2.config.hidden_size
    t5_width = pipe.text_encoder_3.config.d_model
    assert tf.patch_size == 2 and tf.in_channels == 16 and sd3.vae.config.latent_channels == 16
    assert len(sd3.vae.config.down_block_types) == 4 and sd3.vae.config.shift_factor == 0.0609  # SD3's VAE
    assert tf.joint_attention_dim == t5_width >= clip_widths
    assert tf.pooled_projection_dim == pipe.text_encoder.config.projection_dim + pipe.text_encoder_2.config.projection_dim
    assert sd3.scheduler_config["shift"] == 3.0 and sd3.image_size == 64 and sd3_z0.shape == (1, 16, 8, 8)
    embeds, pooled = sd3.embed(SOURCE)
    clip_len = pipe.tokenizer.model_max_length
    assert sd3.max_sequence_length == 256
    assert embeds.shape == (1, clip_len + sd3.max_sequence_length, t5_width) and pooled.shape == (1, tf.pooled_projection_dim)
    assert torch.equal(embeds[:, :clip_len, clip_widths:], torch.zeros_like(embeds[:, :clip_len, clip_widths:]))  # CLIP zero-padded
    assert embeds[:, clip_len:].abs().max() > 0  # T5's states, not the zeros of a pipeline without T5
    other = sd3.embed(OTHER)[0]
    assert (other[:, clip_len:] - embeds[:, clip_len:]).abs().max() > 1e-4  # T5 reads the prompt
    short = SD3Denoiser(pipe, max_sequence_length=8).embed(SOURCE)[0]
    assert short.shape == (1, clip_len + 8, t5_width)  # the adapter's max_sequence_length is what T5 gets
    torch.testing.assert_close(short[:, :clip_len], embeds[:, :clip_len])


def test_sd3_flow_inversion_and_reconstruction(sd3, sd3_z0):
    cond = sd3.embed(SOURCE)
    path = []
    x1 = md.flow_invert(sd3, sd3_z0, cond, FLOW_STEPS, trajectory=path)
    assert len(path) == FLOW_STEPS + 1 and path[0] is sd3_z0 and (x1 - sd3_z0).abs().max() > 0.1
    rec = md.flow_sample(sd3, x1, cond, FLOW_STEPS, guidance=3.5, null=sd3.null)
    assert rec.shape == sd3_z0.shape and torch.isfinite(rec).all()
    assert sd3.decode(rec).shape == (1, 3, 64, 64)


def test_sd3_flowedit_with_equal_prompts_returns_the_source(sd3, sd3_z0):
    cond = sd3.embed(SOURCE)
    kwargs = dict(steps=FLOW_STEPS, n_max=FLOW_STEPS, guidance_src=3.5, guidance_tar=3.5, null=sd3.null)
    same = md.flowedit(sd3, sd3_z0, cond, cond, generator=torch.Generator().manual_seed(0), **kwargs)
    torch.testing.assert_close(same, sd3_z0, atol=1e-5, rtol=0)
    edited = md.flowedit(sd3, sd3_z0, cond, sd3.embed(TARGET), generator=torch.Generator().manual_seed(0), **kwargs)
    assert torch.isfinite(edited).all() and (edited - sd3_z0).abs().max() > 1e-4


def test_sd3_freeinv_identity_is_flow_inversion(sd3, sd3_z0):
    cond = sd3.embed(SOURCE)
    plain = md.flow_invert(sd3, sd3_z0, cond, FLOW_STEPS)
    inv = md.freeinv_invert(sd3, sd3_z0, cond, FLOW_STEPS, schedule=[IDENTITY] * FLOW_STEPS)
    assert torch.equal(inv.latent, plain)
    assert torch.equal(md.freeinv_sample(sd3, plain, schedule=inv.schedule, cond=cond, steps=FLOW_STEPS), md.flow_sample(sd3, plain, cond, FLOW_STEPS))
    turned = md.freeinv_invert(sd3, sd3_z0, cond, FLOW_STEPS, schedule=list(ROTATIONS[1:4]))
    assert (turned.latent - plain).abs().max() > 1e-3


def test_epsilon_only_methods_refuse_a_flow_model_clearly(sd3, sd3_z0):
    cond = sd3.embed(SOURCE)
    for method in (lambda: md.ddim_invert(sd3, sd3_z0, cond, DDIM_STEPS),
                   lambda: md.null_text_invert(sd3, sd3_z0, cond, null=sd3.null, steps=DDIM_STEPS, inner_steps=0),
                   lambda: md.direct_inversion(sd3, sd3_z0, cond, DDIM_STEPS),
                   lambda: md.impus_morph(sd3, sd3_z0.expand(2, -1, -1, -1), cond[0].expand(2, -1, -1), null=sd3.null[0])):
        with pytest.raises(ValueError, match="needs a 'epsilon' model"):
            method()
    from minidiff.p2p import P2PEdit, p2p_sample

    with pytest.raises(ValueError, match="UNet's attention.*flowedit"):
        p2p_sample(sd3, sd3.noise(1), P2PEdit(SOURCE, SOURCE), DDIM_STEPS)[0]


# ---------------------------------------------------------------- FLUX.1-dev architecture


@pytest.fixture(scope="module")
def flux_z0(flux):
    return flux.encode(images(flux.image_size))


def test_flux_flow_inversion_and_reconstruction(flux, flux_z0):
    assert isinstance(flux, FluxDenoiser) and flux.embedded_guidance
    assert type(flux.pipe.text_encoder_2).__name__ == "T5EncoderModel" and flux.transformer.config.guidance_embeds
    cond = flux.embed(SOURCE)
    x1 = md.flow_invert(flux, flux_z0, cond, FLOW_STEPS, guidance=3.5)
    assert x1.shape == flux_z0.shape and (x1 - flux_z0).abs().max() > 0.1
    rec = md.flow_sample(flux, x1, cond, FLOW_STEPS, guidance=3.5)
    assert torch.isfinite(rec).all() and flux.decode(rec).shape == (1, 3, flux.image_size, flux.image_size)


def test_flux_flowedit_with_equal_prompts_returns_the_source(flux, flux_z0):
    cond = flux.embed(SOURCE)
    kwargs = dict(steps=FLOW_STEPS, n_max=FLOW_STEPS, guidance_src=1.5, guidance_tar=5.5)
    same = md.flowedit(flux, flux_z0, cond, cond, generator=torch.Generator().manual_seed(0),
                       **(kwargs | dict(guidance_tar=1.5)))
    torch.testing.assert_close(same, flux_z0, atol=1e-5, rtol=0)
    edited = md.flowedit(flux, flux_z0, cond, flux.embed(OTHER), generator=torch.Generator().manual_seed(0), **kwargs)
    assert torch.isfinite(edited).all() and (edited - flux_z0).abs().max() > 1e-4


def test_flux_freeinv_identity_is_flow_inversion(flux, flux_z0):
    cond = flux.embed(SOURCE)
    plain = md.flow_invert(flux, flux_z0, cond, FLOW_STEPS, guidance=3.5)
    inv = md.freeinv_invert(flux, flux_z0, cond, FLOW_STEPS, 3.5, schedule=[IDENTITY] * FLOW_STEPS)
    assert torch.equal(inv.latent, plain)
    assert torch.equal(md.freeinv_sample(flux, plain, schedule=inv.schedule, cond=cond, steps=FLOW_STEPS, guidance=3.5),
                       md.flow_sample(flux, plain, cond, FLOW_STEPS, 3.5))
    turned = md.freeinv_invert(flux, flux_z0, cond, FLOW_STEPS, 3.5, schedule=list(ROTATIONS[1:4]))
    assert (turned.latent - plain).abs().max() > 1e-3
