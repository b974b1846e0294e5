"""Splitting a batch into chunks that fit a GPU: the slices, and a conditioning sliced alike.

The tiny models take every image at once; at full scale a lesson runs a few images per model call
(``minidiff.settings``'s ``batch``). ``cond`` is whatever an adapter's ``embed`` returns: a tensor
(B, L, D) or a tuple of them (SD3's and Flux's sequence and pooled embeddings).
"""
from __future__ import annotations

import torch


def batches(n: int, size: int | None) -> list[slice]:
    """Slices of ``range(n)`` of at most ``size`` items (one slice of all ``n`` when size is None)."""
    size = size or max(n, 1)
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def take(cond, part: slice):
    """``cond[part]`` for a tensor, or for each tensor of a tuple."""
    if isinstance(cond, tuple):
        return tuple(c[part] for c in cond)
    return cond[part]


def join(values: list, sizes: list[int]):
    """Put the per-chunk results of one computation back together, field by field: tensors are
    concatenated (one shared tensor stays itself), lists are joined element by element, numbers that
    differ are averaged with weights ``sizes``, dataclasses and dicts field by field, None stays None."""
    first = values[0]
    if len(values) == 1 or first is None:
        return first
    if isinstance(first, torch.Tensor):
        return first if all(v is first for v in values) else torch.cat(values)
    if isinstance(first, (list, tuple)):
        return type(first)(join(list(parts), sizes) for parts in zip(*values))
    if isinstance(first, dict):
        return {k: join([v[k] for v in values], sizes) for k in first}
    if hasattr(first, "__dataclass_fields__"):
        return type(first)(**{k: join([getattr(v, k) for v in values], sizes) for k in first.__dataclass_fields__})
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        if all(v == first for v in values):
            return first
        return sum(v * s for v, s in zip(values, sizes)) / sum(sizes)
    return first
