"""Input checks shared by the methods: each error says what was wrong and what to do."""
from __future__ import annotations

import math
import numbers
import string

import torch


def check_steps(steps: int, max_steps: int, name: str = "steps") -> None:
    """Refuse a step count that is not an integer in ``[1, max_steps]``."""
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= max_steps:
        raise ValueError(f"{name} must be an integer between 1 and {max_steps}, got {steps!r}.")


def check_latents(x: torch.Tensor, name: str = "x") -> None:
    """Refuse latents that are not a floating-point tensor with a batch dimension, and half precision on the CPU."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor of shape (B, ...), got {type(x).__name__}.")
    if x.dim() < 2:
        raise ValueError(f"{name} must have a batch dimension, shape (B, ...), got shape {tuple(x.shape)}.")
    if x.device.type == "cpu" and x.dtype in (torch.float16, torch.bfloat16):
        raise ValueError(f"{name} is {x.dtype} on the CPU, which is slow and inaccurate here; use torch.float32.")


def check_known_words(tokenizer, prompts: list[str]) -> None:
    """Raise a ValueError naming any word that ``tokenizer`` can only encode as its unknown token.

    Punctuation the tokenizer does not know ("circle,") is named as the cause.
    """
    for prompt in prompts:
        for word in prompt.split():
            if not _unknown(tokenizer, word):
                continue
            bare = word.strip(string.punctuation)
            if bare and bare != word and not _unknown(tokenizer, bare):
                marks = "".join(sorted(set(word) - set(bare)))
                raise ValueError(f"the tokenizer knows {bare!r} but not the punctuation {marks!r} in {word!r} (prompt "
                                 f"{prompt!r}): this model's vocabulary has no punctuation; write the prompt without it.")
            known = sorted(t[:-4] for t in tokenizer.get_vocab() if t.endswith("</w>"))
            hint = f" Known words: {', '.join(known)}." if len(known) < 200 else ""
            raise ValueError(f"the tokenizer does not know the word {word!r} in the prompt {prompt!r}.{hint}")


def _unknown(tokenizer, word: str) -> bool:
    return tokenizer.unk_token_id in tokenizer(word, add_special_tokens=False).input_ids


def check_guidance(guidance, name: str = "guidance") -> None:
    """Refuse a guidance scale that is not a finite real number ≥ 0 (1 = no guidance); a tensor holds
    one scale per sample (IMPUS guides each frame at its own scale)."""
    if isinstance(guidance, torch.Tensor):
        if not guidance.is_floating_point() or not bool(torch.isfinite(guidance).all() and (guidance >= 0).all()):
            raise ValueError(f"{name} must hold finite numbers ≥ 0, got {guidance!r}.")
        return
    if isinstance(guidance, bool) or not isinstance(guidance, numbers.Real) or not math.isfinite(guidance) or guidance < 0:
        raise ValueError(f"{name} must be a number ≥ 0 (1 = no guidance; Stable Diffusion's default is 7.5), "
                         f"got {guidance!r}.")


def check_fraction(value, name: str) -> None:
    """Refuse a share of the steps outside [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"{name} is a fraction of the steps and must lie in [0, 1], got {value!r}.")


def check_prompt_list(prompts) -> list[str]:
    """One prompt or a non-empty list of prompts → a list of strings; a clear error for anything else."""
    if isinstance(prompts, str):
        return [prompts]
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise ValueError(f"prompts must be a string or a non-empty list of strings, got {prompts!r}.")
    bad = [p for p in prompts if not isinstance(p, str)]
    if bad:
        raise ValueError(f"prompts must all be strings; got {type(bad[0]).__name__} {bad[0]!r} in the list.")
    return list(prompts)


def check_seed(seed, name: str = "seed") -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {seed!r}.")


def _batch_of(embedding, name: str) -> int:
    if isinstance(embedding, tuple):
        if not embedding or not all(isinstance(e, torch.Tensor) for e in embedding):
            raise TypeError(f"{name} must be an embedding tensor or a tuple of them (SD3, Flux), got {embedding!r}.")
        return embedding[0].shape[0]
    if not isinstance(embedding, torch.Tensor):
        shown = repr(embedding) if isinstance(embedding, str) else type(embedding).__name__
        raise TypeError(f"{name} must be an embedding from model.embed(prompts) (a tensor, or a tuple of tensors for SD3 "
                        f"and Flux), got {shown}; pass model.embed({shown if isinstance(embedding, str) else 'prompts'}).")
    return embedding.shape[0]


def check_model_inputs(denoiser, x: torch.Tensor, cond, guidance, null) -> None:
    """The checks every model call goes through (``minidiff.denoiser.guided``): latents of the model's
    shape and dtype, embeddings (not strings) with a batch of 1 or of the latents', a valid guidance."""
    check_guidance(guidance)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"latents must be a torch.Tensor, got {type(x).__name__}.")
    channels, size = getattr(denoiser, "latent_channels", None), getattr(denoiser, "sample_size", None)
    if channels is not None and (x.dim() != 4 or x.shape[1] != channels):
        hint = (" These look like pixels: encode images to latents first with model.encode(images)."
                if x.dim() == 4 and x.shape[1] == 3 else "")
        raise ValueError(f"latents must have shape (B, {channels}, {size}, {size}) for this model, got {tuple(x.shape)}.{hint}")
    dtype = getattr(denoiser, "dtype", None)
    if isinstance(dtype, torch.dtype) and x.dtype != dtype:
        raise TypeError(f"latents are {x.dtype} but the model runs in {dtype}; convert them with latents.to({dtype}).")
    for name, embedding in (("cond", cond), ("null", null)):
        if embedding is None:
            continue
        batch = _batch_of(embedding, name)
        if batch not in (1, x.shape[0]):
            raise ValueError(f"{name} has a batch of {batch} but the latents have {x.shape[0]}: pass one embedding per "
                             "latent, or a single one (batch 1) for all.")
