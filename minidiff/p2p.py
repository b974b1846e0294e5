"""Prompt-to-Prompt editing (Hertz et al., ICLR 2023, Alg. 1) through diffusers' attention-processor API.

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
from typing import Sequence

import torch

from ._checks import check_fraction
from .ddim import ddim_sample
from .freeinv import PerImage


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
            edits the whole image unless ``blend_maps`` is "difference".
        blend_maps: what the mask is made of: "attention" (the paper's: the blend words'
            cross-attention maps, :meth:`AttentionControl.blend_mask`) or "difference" (where the
            two branches' latents differ, averaged over the steps so far, DiffEdit's idea
            (Couairon et al., ICLR 2023) applied to P2P's own two branches: no extra model call, and
            no need for word maps that localise; :func:`difference_mask`).
        blend_threshold: the mask keeps where the normalised map exceeds this (official k = 0.3).
        blend_start: fraction of the steps after which blending starts (official 0.2).
        blend_max_side: None reads LocalBlend's maps at the official resolution, the finest with at most
            a quarter of the latent's side (SD's 16×16 maps of 64² latents); a side s reads the finest
            maps of at most s × s instead (an ablation for small latents, where a quarter of the side
            leaves maps of a few cells: 4×4 on 16×16 latents).
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
    blend_maps: str = "attention"
    blend_threshold: float = 0.3
    blend_start: float = 0.2
    blend_max_side: int | None = None
    self_max_queries: int = 32 ** 2

    def __post_init__(self):
        for name in ("cross_replace", "self_replace", "blend_start"):
            check_fraction(getattr(self, name), name)
        for name in ("source", "target"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a prompt string, got {getattr(self, name)!r}.")
        if self.blend_maps not in ("attention", "difference"):
            raise ValueError(f"blend_maps must be 'attention' or 'difference', got {self.blend_maps!r}.")
        if self.blend_maps == "difference" and self.blend_words is not None:
            raise ValueError("blend_words name the words of an attention mask; a 'difference' mask takes none.")
        if self.blend_max_side is not None and (not isinstance(self.blend_max_side, int) or self.blend_max_side < 1):
            raise ValueError(f"blend_max_side must be None (the official resolution) or a positive int side, got {self.blend_max_side!r}.")


class AttentionControl:
    """Edits the attention probabilities of a batch of n (source, target) pairs and collects the
    cross-attention maps that local blending needs.

    The batch is laid out pair by pair, [src_1, tar_1, …, src_n, tar_n], and under CFG as
    [unconditional pairs; conditional pairs]; only the conditional pairs are edited (as the official
    code edits only the conditional half). One edit gives n = 1; the edits of a batch must share the
    injection and blending schedule, and may differ in prompts, re-weighting and blend words.
    """

    def __init__(self, edits: P2PEdit | Sequence[P2PEdit], tokenizer, steps: int):
        self.edits = [edits] if isinstance(edits, P2PEdit) else list(edits)
        self.edit, self.steps = self.edits[0], steps
        schedule = lambda e: (e.cross_replace, e.self_replace, e.blend_maps, e.blend_threshold,  # noqa: E731
                              e.blend_start, e.blend_max_side, e.self_max_queries, e.blend_words is None)
        if any(schedule(e) != schedule(self.edit) for e in self.edits):
            raise ValueError("the edits of one batch must share cross_replace, self_replace, self_max_queries and the "
                             "blending settings; run edits with different schedules in separate batches.")
        length = tokenizer.model_max_length
        per_edit = [self._tensors(e, tokenizer, length) for e in self.edits]
        self.spans = [p[0] for p in per_edit]
        self.mappers, self.aligneds, self.scales = (torch.stack([p[k] for p in per_edit]) for k in (1, 2, 3))
        # (n, 2, tokens): which tokens' maps make each branch's mask, or None
        self.blends = None if self.edit.blend_words is None else torch.stack([p[4] for p in per_edit])
        self.store: dict[int, torch.Tensor] = {}  # queries → summed cross-attention maps (n, 2, queries, tokens)
        self.calls: dict[str, int] = {}

    @classmethod
    def _tensors(cls, edit: P2PEdit, tokenizer, length: int):
        src_words, tar_words = edit.source.split(), edit.target.split()
        src_spans, tar_spans = _word_spans(tokenizer, src_words), _word_spans(tokenizer, tar_words)
        mapper, aligned = cls._align(src_words, tar_words, src_spans, tar_spans, length)
        scale = torch.ones(length)
        for word, c in edit.reweight.items():
            if word not in tar_words:
                raise ValueError(f"cannot re-weight {word!r}: it is not a word of the target prompt {edit.target!r}.")
            for k, w in enumerate(tar_words):
                if w == word:
                    scale[slice(*tar_spans[k])] = c
        blend = None
        if edit.blend_words is not None:
            blend = torch.stack([
                _word_weights(words, prompt_words, spans, length, which)
                for words, prompt_words, spans, which in zip(edit.blend_words, (src_words, tar_words),
                                                              (src_spans, tar_spans), ("source", "target"))])
        return (src_spans, tar_spans), mapper, aligned, scale, blend

    # The first (or only) edit's tensors, as the single-edit API names them.
    src_spans = property(lambda self: self.spans[0][0])
    tar_spans = property(lambda self: self.spans[0][1])
    mapper = property(lambda self: self.mappers[0])
    aligned = property(lambda self: self.aligneds[0])
    scale = property(lambda self: self.scales[0])
    blend = property(lambda self: None if self.blends is None else self.blends[0])

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
        code (``seq_aligner``) does so between swapped words, but after the last one it writes
        ``mapper[j, j] = 1``, which leaves the rest of the prompt unshifted. Here every later token keeps
        its own source token, the end-of-text token and the padding included: after a refinement that
        adds k tokens, the target's end-of-text token takes the source's end-of-text map, where the
        official j → j gives it the map of the padding token k places on. Deliberate: the end-of-text
        token's map is the prompt's summary, and SD's attention puts much of its mass there. On a tiny-sd
        refinement edit the two mappings give outputs that differ by up to 0.19 (pixels in [−1, 1]).
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
        """probs: (batch·heads, queries, keys) → the same, with the targets' maps edited."""
        step = self.calls.get(name, 0)
        self.calls[name] = step + 1
        n = len(self.edits)
        p = probs.view(-1, n, 2, heads, *probs.shape[1:])  # (uncond/cond, pair, src/tar, heads, queries, keys)
        if is_cross and self.blends is not None:
            maps = p[-1].mean(2).detach()  # (n, 2, queries, tokens): the conditional sources and targets
            self.store[maps.shape[2]] = self.store.get(maps.shape[2], 0) + maps
        limit = self.edit.cross_replace if is_cross else self.edit.self_replace
        if step >= limit * self.steps or (not is_cross and probs.shape[1] > self.edit.self_max_queries):
            return probs
        src, tar = p[-1, :, 0], p[-1, :, 1]  # (n, heads, queries, keys)
        if is_cross:
            mapped = src @ self.mappers.transpose(1, 2)[:, None].to(p.device, p.dtype)  # (n, heads, queries, target tokens)
            aligned, scale = self.aligneds[:, None, None].to(p.device), self.scales[:, None, None].to(p.device, p.dtype)
            new = torch.where(aligned, mapped, tar) * scale
        else:
            new = src
        p = torch.cat([p[:-1], torch.stack([src, new], 1)[None]])
        return p.reshape(probs.shape)

    def blend_mask(self, latent_size: tuple[int, int]) -> torch.Tensor:
        """LocalBlend's masks (n, 1, h, w): the blend words' cross-attention maps summed over their tokens
        and averaged over layers, heads and the steps so far, at :func:`blend_resolution`'s resolution (the
        finest of at most a quarter of the latent's side: the official "≤ 16²" of SD's 64² latents, unless
        ``blend_max_side`` is set), dilated by a max-pool
        of one cell per 16 of that side (official 3×3 at 16²), upsampled to the latent, rescaled to
        [0, 1] and thresholded; the union of each source's and target's masks.

        The official code divides by the maximum only; the minimum is subtracted here as well. On SD
        the maps are peaked, so the two agree; tiny-sd spreads attention almost evenly over its 16
        tokens, and the maximum alone would keep every pixel."""
        h, w = latent_size
        queries = blend_resolution(self.store, latent_size, self.edit.blend_max_side)
        side, n = int(queries ** 0.5), len(self.edits)
        store = self.store[queries]
        maps = (store * self.blends.to(store)[:, :, None, :]).sum(-1).view(n * 2, 1, side, side)
        radius = side // 16
        if radius:
            maps = torch.nn.functional.max_pool2d(maps, 2 * radius + 1, stride=1, padding=radius)
        maps = torch.nn.functional.interpolate(maps, size=latent_size, mode="bilinear")
        return (_rescale(maps) > self.edit.blend_threshold).view(n, 2, 1, h, w).any(1).float()


def blend_resolution(queries, latent_size: tuple[int, int], max_side: int | None = None) -> int:
    """The cross-attention resolution (a query count) that LocalBlend reads, of those in ``queries``:
    the finest with at most a quarter of the latent's side (or, given ``max_side``, at most that side),
    else the coarsest."""
    h, w = latent_size
    limit = h * w // 16 if max_side is None else max_side ** 2
    fine = [q for q in queries if q <= limit]
    return max(fine) if fine else min(queries)


def difference_mask(summed_difference: torch.Tensor, threshold: float) -> torch.Tensor:
    """The "difference" masks (n, 1, h, w) from Σ_steps Σ_channels |x_tar − x_src|, shape (n, h, w):
    each rescaled to [0, 1] and thresholded."""
    return (_rescale(summed_difference[:, None]) > threshold).float()


def _rescale(maps: torch.Tensor) -> torch.Tensor:
    """(B, 1, h, w) → each map shifted and scaled to span [0, 1]."""
    low, high = maps.amin((2, 3), keepdim=True), maps.amax((2, 3), keepdim=True)
    return (maps - low) / (high - low).clamp_min(1e-12)


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
    denoiser,
    x: torch.Tensor,
    edit: P2PEdit | Sequence[P2PEdit],
    steps: int = 50,
    guidance: float = 7.5,
    null=None,
    schedule=None,
    target_latent: torch.Tensor | None = None,
    source_path: list[torch.Tensor] | None = None,
    masks: list | None = None,
    word_maps: dict | None = None,
) -> torch.Tensor:
    """Sample sources and edited targets side by side with Prompt-to-Prompt control.

    Args:
        denoiser: an ε adapter with a UNet (``minidiff.pipelines.StableDiffusionDenoiser``).
        x: the inverted latents z_T of the n source images, shape (n, C, h, w).
        edit: one P2PEdit (n = 1) or a list of n, one per image: prompts, injection schedule and
            local blending.
        steps: DDIM steps (the inversion's).
        guidance: CFG scale.
        null: the unconditional embedding (1 or n, ...), null-text inversion's list of ∅_t (each
            (n, ...)), or the source prompts' embeddings (negative-prompt inversion); an image's
            source and target branches share it.
        schedule: FreeInv's schedule as :func:`~minidiff.freeinv_invert` returns it (inversion order;
            walked backwards here), one transformation per step for all n images or a ``PerImage``
            of the n images per step (an image's source and target branches share its draw); or None.
        target_latent: the target branches' start (n, C, h, w) if it differs (FreeInv's P2P starts
            the target from the plain DDIM latent); defaults to ``latent``.
        source_path: Direct Inversion's [z*_T, …, z*_0], each (n, C, h, w): after step i the source
            branches are put back on z*_{t−1}, which is adding d_t = z*_{t−1} − (the step just taken)
            (:func:`minidiff.direct_inversion`).
        masks: if a list, local blending's masks (n, 1, h, w) of every blended step are appended to it.
        word_maps: if a dict (edits with ``blend_words`` only), filled with {side: (n, 2, side, side)}:
            at each cross-attention resolution, the share of the conditional attention that goes to the
            blend words' tokens at every position, over all layers, heads and steps, for the source and
            the target branch (what LocalBlend's mask is made of).

    Returns:
        Latents (n, 2, C, h, w): [source reconstruction, edit] of each image, for one P2PEdit (n = 1)
        as for a list.
    """
    model, latent = denoiser, x
    if not hasattr(model, "unet"):
        raise ValueError(f"Prompt-to-Prompt edits a UNet's attention (SD-family models); {type(model).__name__} has none. "
                         "For SD3 / Flux use minidiff.flowedit.")
    edits = [edit] if isinstance(edit, P2PEdit) else list(edit)
    n = len(edits)
    if latent.shape[0] != n:
        raise ValueError(f"{latent.shape[0]} latents for {n} edits; pass one latent per edit.")
    prompts = [p for e in edits for p in (e.source, e.target)]
    model.check_prompts(prompts)
    pairs = lambda z: z.repeat_interleave(2, 0) if z.shape[0] == n and n > 1 else z  # noqa: E731  (n, …) → (2n, …)
    null = model.null if null is None else null
    null = [pairs(z) for z in null] if isinstance(null, list) else pairs(null)
    tar = latent if target_latent is None else target_latent
    x = torch.stack([latent, tar], 1).flatten(0, 1)  # [src_1, tar_1, …]
    cond = model.embed(prompts)
    control = AttentionControl(edits, model.pipe.tokenizer, steps)
    blend_from = int(edits[0].blend_start * steps)
    difference = torch.zeros(n, *latent.shape[-2:], device=latent.device)

    def after_step(i: int, x: torch.Tensor) -> torch.Tensor:
        nonlocal difference
        x = x.view(n, 2, *x.shape[1:])
        src, tar = x[:, 0], x[:, 1]
        if source_path is not None:
            src = source_path[i + 1].to(x)
        difference = difference + (tar - src).abs().sum(1).float()
        mask = None
        if i >= blend_from and edits[0].blend_maps == "difference":
            mask = difference_mask(difference, edits[0].blend_threshold)
        elif i >= blend_from and control.blends is not None:
            mask = control.blend_mask(tuple(x.shape[-2:]))
        if mask is not None:  # outside the mask the edit is the source branch (LocalBlend)
            tar = src + mask.to(x) * (tar - src)
            if masks is not None:
                masks.append(mask)
        return torch.stack([src, tar], 1).flatten(0, 1)

    if word_maps is not None and control.blends is None:
        raise ValueError("word_maps are the blend words' maps: give every P2PEdit blend_words=(source words, target words).")
    if schedule is not None:  # both branches of an image go through its transformation
        schedule = [PerImage(f for f in step.transforms for f in (f, f)) if isinstance(step, PerImage) else step
                    for step in schedule]
    with attention_control(model.unet, control):
        out = ddim_sample(model, x, cond, steps, guidance, null, schedule=schedule, callback=after_step)
    if word_maps is not None:
        for queries, store in control.store.items():  # (n, 2, queries, tokens), summed over layers and steps
            side = int(queries ** 0.5)
            share = (store * control.blends.to(store)[:, :, None, :]).sum(-1) / store.sum(-1)
            word_maps[side] = share.view(n, 2, side, side).float().cpu()
    return out.view(n, 2, *out.shape[1:])
