"""Input checks shared by the methods: each error says what was wrong and what to do."""
from __future__ import annotations

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
