"""A word-level CLIP tokenizer for a closed vocabulary, built offline.

``CLIPTokenizer`` is a BPE tokenizer: it splits a word into characters and applies merges in rank
order. Learning BPE merges on the vocabulary itself (repeatedly merging the most frequent adjacent
pair) yields merges that rebuild every vocabulary word into exactly one token, so each caption word
is one token — which keeps Prompt-to-Prompt's word ↔ attention-map alignment exact. The vocab file
lists only whole words and the special tokens: a word outside the vocabulary ends as pieces that are
not in it and becomes the unknown token, which ``minidiff.pipelines.check_known_words`` turns into a
clear error.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from tokenizers.processors import TemplateProcessing
from transformers import CLIPTokenizer, T5TokenizerFast

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def learn_merges(words: list[str]) -> list[tuple[str, str]]:
    """BPE merges (in rank order) that turn each of ``words`` into the single symbol ``word</w>``."""
    return learn_unit_merges([list(w[:-1]) + [w[-1] + "</w>"] for w in words])


def learn_unit_merges(units: list[list[str]]) -> list[tuple[str, str]]:
    """BPE merges (in rank order) that turn each unit, a list of symbols, into one symbol: the most
    frequent adjacent pair first, ties broken deterministically."""
    corpus = [list(u) for u in units]
    merges = []
    while True:
        pairs = Counter(p for symbols in corpus for p in zip(symbols, symbols[1:]))
        if not pairs:
            return merges
        best = max(pairs, key=lambda p: (pairs[p], p))
        merges.append(best)
        for k, symbols in enumerate(corpus):
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            corpus[k] = merged


def build_word_tokenizer(words: list[str], folder: str | Path, max_length: int = 16) -> CLIPTokenizer:
    """Write vocab.json and merges.txt for ``words`` into ``folder`` and load them as a CLIPTokenizer.

    Args:
        words: the closed vocabulary (lower-case words).
        folder: where to save the tokenizer (``save_pretrained`` layout).
        max_length: the text encoder's context length (``model_max_length``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {BOS: 0, EOS: 1} | {f"{w}</w>": i + 2 for i, w in enumerate(sorted(set(words)))}
    (folder / "vocab.json").write_text(json.dumps(vocab, indent=0))
    merges = learn_merges(sorted(set(words)))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_length)
    tokenizer.save_pretrained(folder)
    return tokenizer


def build_t5_word_tokenizer(words: list[str], folder: str | Path, max_length: int = 16) -> T5TokenizerFast:
    """A word-level ``T5TokenizerFast`` for ``words`` (Flux's second text encoder), built offline.

    T5's own tokenizer is a SentencePiece model that cannot be downloaded here; a ``tokenizers``
    WordLevel model over the closed vocabulary, with T5's special tokens (``<pad>`` 0, ``</s>`` 1,
    ``<unk>`` 2) and an ``</s>`` appended to every text, is wrapped in ``T5TokenizerFast`` and saved with
    ``save_pretrained``, so ``FluxPipeline.from_pretrained`` loads it like T5's.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2} | {w: i + 3 for i, w in enumerate(sorted(set(words)))}
    model = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    model.pre_tokenizer = WhitespaceSplit()
    model.post_processor = TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer = T5TokenizerFast(tokenizer_object=model, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                extra_ids=0, model_max_length=max_length)
    tokenizer.save_pretrained(folder)
    return tokenizer
