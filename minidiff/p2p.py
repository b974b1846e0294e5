"""Prompt-to-Prompt editing (Hertz et al., ICLR 2023) through diffusers' attention-processor API.

A source and a target prompt are sampled side by side from the same latent. During the first
``cross_replace`` fraction of the steps the target's cross-attention maps are taken from the source
(word swap: position by position; refinement: the tokens the two prompts share, aligned, while new
words keep their own maps), optionally re-weighted per word; during the first ``self_replace``
fraction the target's self-attention maps are the source's. The layout follows the source; the words
follow the target.

The control is installed with ``unet.set_attn_processor`` (never by patching classes by name, which
silently stops working when diffusers renames them) and removed afterwards.
"""
from __future__ import annotations

import difflib
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from .ddim import ddim_sample


@dataclass
class P2PEdit:
    """What to edit and for how long.

    Attributes:
        source: the source prompt (the inverted image's caption).
        target: the target prompt: one word swapped, words added (refinement), or the same prompt.
        cross_replace: fraction of the steps in which cross-attention maps are injected.
        self_replace: fraction of the steps in which self-attention maps are injected.
        reweight: {word of the target: scale} applied to that word's cross-attention maps.
    """

    source: str
    target: str
    cross_replace: float = 0.8
    self_replace: float = 0.4
    reweight: dict[str, float] = field(default_factory=dict)


class AttentionControl:
    """Edits attention probabilities of the last two images of each batch ([source, target])."""

    def __init__(self, edit: P2PEdit, tokenizer, steps: int):
        self.edit, self.steps = edit, steps
        src = tokenizer(edit.source, padding="max_length", max_length=tokenizer.model_max_length).input_ids
        tar = tokenizer(edit.target, padding="max_length", max_length=tokenizer.model_max_length).input_ids
        self.mapper, self.aligned = self._align(src, tar)
        self.scale = torch.ones(len(tar))
        words = edit.target.split()
        for word, s in edit.reweight.items():
            if word not in words:
                raise ValueError(f"cannot re-weight {word!r}: it is not a word of the target prompt {edit.target!r}.")
            self.scale[1 + words.index(word)] = s  # token 0 is BOS; one token per word
        self.calls: dict[str, int] = {}

    @staticmethod
    def _align(src: list[int], tar: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """For each target token, the source token whose map it takes (word swap: same position;
        refinement: the matching token), and whether it has one."""
        mapper, aligned = torch.arange(len(tar)), torch.zeros(len(tar), dtype=torch.bool)
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=src, b=tar, autojunk=False).get_opcodes():
            if op == "equal" or (op == "replace" and i2 - i1 == j2 - j1):
                mapper[j1:j2] = torch.arange(i1, i2)
                aligned[j1:j2] = True
        return mapper, aligned

    def __call__(self, name: str, probs: torch.Tensor, is_cross: bool, heads: int) -> torch.Tensor:
        """probs: (batch·heads, queries, keys) → the same, with the target's maps edited."""
        step = self.calls.get(name, 0)
        self.calls[name] = step + 1
        limit = self.edit.cross_replace if is_cross else self.edit.self_replace
        if step >= limit * self.steps:
            return probs
        p = probs.view(-1, heads, *probs.shape[1:])
        src, tar = p[-2], p[-1]
        if is_cross:
            new = torch.where(self.aligned.to(p.device), src[..., self.mapper.to(p.device)], tar) * self.scale.to(p.device)
        else:
            new = src
        p = torch.cat([p[:-1], new[None]])
        return p.view_as(probs)


class P2PAttnProcessor:
    """diffusers' plain attention (``AttnProcessor``) with a hook on the attention probabilities."""

    def __init__(self, name: str, control: AttentionControl):
        self.name, self.control = name, control

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        is_cross = encoder_hidden_states is not None
        batch, length, _ = (encoder_hidden_states if is_cross else hidden_states).shape
        attention_mask = attn.prepare_attention_mask(attention_mask, length, batch)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        context = hidden_states if not is_cross else (
            attn.norm_encoder_hidden_states(encoder_hidden_states) if attn.norm_cross else encoder_hidden_states)
        key, value = attn.to_k(context), attn.to_v(context)
        query, key, value = (attn.head_to_batch_dim(x) for x in (query, key, value))
        probs = attn.get_attention_scores(query, key, attention_mask)
        probs = self.control(self.name, probs, is_cross, attn.heads)
        hidden_states = attn.batch_to_head_dim(torch.bmm(probs, value))
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


@contextmanager
def attention_control(unet, control: AttentionControl):
    """Install P2P processors on every attention layer of ``unet``; restore the originals on exit."""
    original = unet.attn_processors
    unet.set_attn_processor({name: P2PAttnProcessor(name, control) for name in original})
    try:
        yield control
    finally:
        unet.set_attn_processor(original)


@torch.no_grad()
def p2p_sample(
    model,
    latent: torch.Tensor,
    edit: P2PEdit,
    steps: int = 50,
    guidance: float = 7.5,
    null=None,
    transforms=None,
    target_latent: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sample the source and the edited target side by side with Prompt-to-Prompt control.

    Args:
        model: an ε adapter with a UNet (``minidiff.pipelines.StableDiffusionDenoiser``).
        latent: the inverted latent z_T of the source image, shape (1, C, h, w).
        edit: prompts and injection schedule.
        steps: DDIM steps (the inversion's).
        guidance: CFG scale.
        null: the unconditional embedding, or null-text inversion's list of ∅_t.
        transforms: FreeInv's schedule reversed for sampling (``schedule[::-1]``), or None.
        target_latent: the target branch's start if it differs (FreeInv's P2P starts the target
            from the plain DDIM latent); defaults to ``latent``.

    Returns:
        Latents (2, C, h, w): [source reconstruction, edit].
    """
    model.check_prompts([edit.source, edit.target])
    null = model.null if null is None else null
    x = torch.cat([latent, latent if target_latent is None else target_latent])
    cond = model.embed([edit.source, edit.target])
    control = AttentionControl(edit, model.pipe.tokenizer, steps)
    with attention_control(model.unet, control):
        return ddim_sample(model, x, cond, steps, guidance, null, transforms=transforms)
