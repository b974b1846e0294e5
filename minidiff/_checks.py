"""Input checks shared by the methods: each error says what was wrong and what to do."""
from __future__ import annotations

import torch


def check_steps(steps: int, max_steps: int, name: str = "steps") -> None:
    """Refuse a step count that is not an integer in ``[1, max_steps]``."""
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= max_steps:
        raise ValueError(f"{name} must be an integer between 1 and {max_steps}, got {steps!r}.")


def check_latents(x: torch.Tensor, name: str = "x") -> None:
    """Refuse non-float or non-finite latents, and half precision on the CPU."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor of shape (B, ...), got {type(x).__name__}.")
    if x.dim() < 2:
        raise ValueError(f"{name} must have a batch dimension, shape (B, ...), got shape {tuple(x.shape)}.")
    if x.device.type == "cpu" and x.dtype in (torch.float16, torch.bfloat16):
        raise ValueError(f"{name} is {x.dtype} on the CPU, which is slow and inaccurate here; use torch.float32.")
