"""Prompt-to-Prompt editing (Hertz et al., ICLR 2023) through diffusers' attention-processor API.

A source and a target prompt are sampled side by side from the same latent. During the first
``cross_replace`` fraction of the steps the target's cross-attention maps are taken from the source
through a replacement mapper M, :math:`A^*_{tar} = A_{src} M^\\top` (word swap: word by word, a word of
n tokens sharing its source word's map, 1/n each; refinement: the tokens the two prompts share, aligned,
while new words keep their own maps), optionally re-weighted, every token of a word by the same scale,
:math:`A^*_{tar}[\\ldots, j] \\leftarrow c_j\\,A^*_{tar}[\\ldots, j]`; during the first ``self_replace``
fraction the target's self-attention maps are the source's, in the layers of at most 32² queries. The
layout follows the source; the words follow the target.

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
        reweight: {word of the target: scale} applied to the cross-attention maps of every token of
            that word.
        blend_words: local blending (the paper's LocalBlend): (words of the source, words of the
            target) whose cross-attention maps make the edit's mask, e.g. ("circle", "square"); None
            edits the whole image.
        blend_threshold: the mask keeps where the normalised map exceeds this (official k = 0.3).
        blend_start: fraction of the steps after which blending starts (official 0.2).
        self_max_queries: self-attention is injected only in layers with at most this many queries
            (the official ``replace_self_attention``: 32², so SD 1.5's 64×64 layers of a 512² image are
            skipped and its 32×32, 16×16 and 8×8 ones injected). Every layer of tiny-sd qualifies: its
            latents are 8×8, so its largest self-attention has 64 queries.
    """

    source: str
    target: str
    cross_replace: float = 0.8
    self_replace: float = 0.4
    reweight: dict[str, float] = field(default_factory=dict)
    blend_words: tuple[str, str] | None = None
    blend_threshold: float = 0.3
    blend_start: float = 0.2
    self_max_queries: int = 32 ** 2


class AttentionControl:
    """Edits attention probabilities of the last two images of each batch ([source, target]), and
    collects the cross-attention maps that local blending needs."""

    def __init__(self, edit: P2PEdit, tokenizer, steps: int):
        self.edit, self.steps = edit, steps
        src_words, tar_words = edit.source.split(), edit.target.split()
        self.src_spans, self.tar_spans = _word_spans(tokenizer, src_words), _word_spans(tokenizer, tar_words)
        length = tokenizer.model_max_length
        self.mapper, self.aligned = self._align(src_words, tar_words, self.src_spans, self.tar_spans, length)
        self.scale = torch.ones(length)
        for word, s in edit.reweight.items():
            if word not in tar_words:
                raise ValueError(f"cannot re-weight {word!r}: it is not a word of the target prompt {edit.target!r}.")
            for k, w in enumerate(tar_words):
                if w == word:
                    self.scale[slice(*self.tar_spans[k])] = s
        self.blend = None
        if edit.blend_words is not None:
            self.blend = torch.stack([
                _word_weights(words, prompt_words, spans, length, which)
                for words, prompt_words, spans, which in zip(edit.blend_words, (src_words, tar_words),
                                                              (self.src_spans, self.tar_spans), ("source", "target"))
            ])  # (2, tokens): which tokens' maps make each branch's mask
        self.store: dict[int, torch.Tensor] = {}  # queries → summed cross-attention maps (2, queries, tokens)
        self.calls: dict[str, int] = {}

    @staticmethod
    def _align(src_words, tar_words, src_spans, tar_spans, length) -> tuple[torch.Tensor, torch.Tensor]:
        """The replacement mapper M (target tokens × source tokens): the target token j takes the map
        Σ_i M[j, i]·A_src[i]; ``aligned[j]`` says whether it takes one at all.

        Words are matched with difflib. Equal words map token to token; a swapped word maps its n
        target tokens onto its m source tokens, each with weight 1/n (the official
        ``get_replacement_mapper_``: one to one when n = m, and a target token of "hexagon" = hex +
        agon takes ½·A_src["circle"]); an added word keeps its own map (refinement). BOS and the
        padding after the prompt map to their counterparts.

        The words after a swap of unequal length are shifted onto their counterparts. The official
        code does so between swapped words, but after the last one it writes ``mapper[j, j] = 1``,
        which leaves the rest of the prompt unshifted. Here every later word keeps its own source word.
        """
        mapper, aligned = torch.zeros(length, length), torch.zeros(length, dtype=torch.bool)
        mapper[0, 0], aligned[0] = 1, True
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=src_words, b=tar_words, autojunk=False).get_opcodes():
            if not (op == "equal" or (op == "replace" and i2 - i1 == j2 - j1)):
                continue
            for (s0, s1), (t0, t1) in zip(src_spans[i1:i2], tar_spans[j1:j2]):
                if s1 - s0 == t1 - t0:
                    mapper[range(t0, t1), range(s0, s1)] = 1
                else:
                    mapper[t0:t1, s0:s1] = 1 / (t1 - t0)
                aligned[t0:t1] = True
        src_end, tar_end = src_spans[-1][1] if src_spans else 1, tar_spans[-1][1] if tar_spans else 1
        for j in range(tar_end, length):
            mapper[j, min(src_end + j - tar_end, length - 1)], aligned[j] = 1, True
        return mapper, aligned

    def __call__(self, name: str, probs: torch.Tensor, is_cross: bool, heads: int) -> torch.Tensor:
        """probs: (batch·heads, queries, keys) → the same, with the target's maps edited."""
        step = self.calls.get(name, 0)
        self.calls[name] = step + 1
        p = probs.view(-1, heads, *probs.shape[1:])
        if is_cross and self.blend is not None:
            maps = p[-2:].mean(1).detach()  # (2, queries, tokens): the conditional source and target
            self.store[maps.shape[1]] = self.store.get(maps.shape[1], 0) + maps
        limit = self.edit.cross_replace if is_cross else self.edit.self_replace
        if step >= limit * self.steps or (not is_cross and probs.shape[1] > self.edit.self_max_queries):
            return probs
        src, tar = p[-2], p[-1]
        if is_cross:
            mapped = src @ self.mapper.T.to(p.device, p.dtype)  # (heads, queries, target tokens)
            new = torch.where(self.aligned.to(p.device), mapped, tar) * self.scale.to(p.device, p.dtype)
        else:
            new = src
        p = torch.cat([p[:-1], new[None]])
        return p.view_as(probs)

    def blend_mask(self, latent_size: tuple[int, int]) -> torch.Tensor:
        """LocalBlend's mask (1, 1, h, w): the blend words' cross-attention maps summed over their tokens
        and averaged over layers, heads and the steps so far, at the finest resolution ≤ 16×16
        (SD: 16×16 of 64×64 latents), max-pooled 3×3, upsampled to the latent, normalised by the
        maximum, thresholded; the union of the source's and the target's masks."""
        queries = max(q for q in self.store if q <= 16 ** 2) if any(q <= 16 ** 2 for q in self.store) else min(self.store)
        side = int(queries ** 0.5)
        maps = (self.store[queries] * self.blend.to(self.store[queries].device)[:, None, :]).sum(-1)
        maps = torch.nn.functional.max_pool2d(maps.view(2, 1, side, side), 3, stride=1, padding=1)
        maps = torch.nn.functional.interpolate(maps, size=latent_size)
        maps = maps / maps.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12)
        return (maps > self.edit.blend_threshold).any(0, keepdim=True).float()


def _word_spans(tokenizer, words: list[str]) -> list[tuple[int, int]]:
    """[start, end) token positions of each word in the tokenised prompt (position 0 is BOS)."""
    spans, start = [], 1
    for word in words:
        n = len(tokenizer(word, add_special_tokens=False).input_ids)
        spans.append((start, start + n))
        start += n
    if start >= tokenizer.model_max_length:
        raise ValueError(f"the prompt {' '.join(words)!r} is {start - 1} tokens; this text encoder takes at most "
                         f"{tokenizer.model_max_length - 2}.")
    return spans


def _word_weights(words: str, prompt_words: list[str], spans, length: int, which: str) -> torch.Tensor:
    """1 on every token of ``words`` (space-separated) in the prompt, 0 elsewhere, shape (length,)."""
    weights = torch.zeros(length)
    for word in words.split():
        if word not in prompt_words:
            raise ValueError(f"cannot blend on {word!r}: it is not a word of the {which} prompt {' '.join(prompt_words)!r}.")
        for k, w in enumerate(prompt_words):
            if w == word:
                weights[slice(*spans[k])] = 1
    return weights


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
    source_path: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Sample the source and the edited target side by side with Prompt-to-Prompt control.

    Args:
        model: an ε adapter with a UNet (``minidiff.pipelines.StableDiffusionDenoiser``).
        latent: the inverted latent z_T of the source image, shape (1, C, h, w).
        edit: prompts, injection schedule and local blending.
        steps: DDIM steps (the inversion's).
        guidance: CFG scale.
        null: the unconditional embedding, null-text inversion's list of ∅_t, or the source prompt's
            embedding (negative-prompt inversion).
        transforms: FreeInv's schedule reversed for sampling (``schedule[::-1]``), or None.
        target_latent: the target branch's start if it differs (FreeInv's P2P starts the target
            from the plain DDIM latent); defaults to ``latent``.
        source_path: Direct Inversion's [z*_T, …, z*_0], each (1, C, h, w): after step i the source
            branch is put back on z*_{t−1}, which is adding d_t = z*_{t−1} − (the step just taken)
            (:func:`minidiff.direct_inversion`).

    Returns:
        Latents (2, C, h, w): [source reconstruction, edit].
    """
    model.check_prompts([edit.source, edit.target])
    null = model.null if null is None else null
    x = torch.cat([latent, latent if target_latent is None else target_latent])
    cond = model.embed([edit.source, edit.target])
    control = AttentionControl(edit, model.pipe.tokenizer, steps)
    blend_from = int(edit.blend_start * steps)

    def after_step(i: int, x: torch.Tensor) -> torch.Tensor:
        if source_path is not None:
            x = torch.cat([source_path[i + 1].to(x), x[1:]])
        if control.blend is not None and i >= blend_from:
            # outside the mask the edit is the source branch (LocalBlend)
            x = torch.cat([x[:1], x[:1] + control.blend_mask(tuple(x.shape[-2:])) * (x[1:] - x[:1])])
        return x

    with attention_control(model.unet, control):
        return ddim_sample(model, x, cond, steps, guidance, null, transforms=transforms, callback=after_step)
