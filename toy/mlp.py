"""Small MLP denoisers for the 2D toys, saved and loaded with diffusers' ``save_pretrained`` /
``from_pretrained`` (``ModelMixin`` + ``ConfigMixin``), the same code path as the image models."""
from __future__ import annotations

import math

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from .mixtures import DDPM_CONFIG, FLOW_CONFIG


def time_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of times t ∈ [0, 1], shape (B,) → (B, dim)."""
    freqs = torch.exp(torch.linspace(0, math.log(1000.0), dim // 2, device=t.device))
    angles = t[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], 1)


class MLPDenoiser(ModelMixin, ConfigMixin):
    """An MLP predicting ε (DDPM) or the velocity (rectified flow) of 2D points.

    With ``num_classes > 0`` it is class-conditional: ``embed(labels)`` gives class embeddings
    (B, cond_dim) and ``null_embedding`` (1, cond_dim) is the learnt unconditional embedding ∅
    used for classifier-free guidance (trained by dropping labels), the 2D stand-in for CLIP's
    embedding of the empty prompt.

    Call: ``model(x, t, cond)`` with x (B, 2), t a scalar or (B,) in the model's native time
    (training step for ε, σ ∈ [0, 1] for velocity) and cond (B or 1, cond_dim) or None → (B, 2).
    """

    @register_to_config
    def __init__(
        self,
        prediction: str = "velocity",
        hidden: int = 128,
        layers: int = 4,
        time_dim: int = 32,
        num_classes: int = 0,
        cond_dim: int = 16,
        data_scale: float = 1.0,
    ):
        super().__init__()
        self.prediction = prediction
        self.scheduler_config = FLOW_CONFIG if prediction == "velocity" else DDPM_CONFIG
        in_dim = 2 + time_dim + (cond_dim if num_classes else 0)
        blocks = []
        for i in range(layers):
            blocks += [nn.Linear(in_dim if i == 0 else hidden, hidden), nn.SiLU()]
        self.net = nn.Sequential(*blocks, nn.Linear(hidden, 2))
        if num_classes:
            self.class_embedding = nn.Embedding(num_classes, cond_dim)
            self.null = nn.Parameter(torch.zeros(1, cond_dim))

    def embed(self, labels: torch.Tensor) -> torch.Tensor:
        """Class embeddings c for integer labels (B,) → (B, cond_dim)."""
        return self.class_embedding(labels)

    @property
    def null_embedding(self) -> torch.Tensor:
        """The learnt unconditional embedding ∅, shape (1, cond_dim) (a detached copy)."""
        return self.null.detach().clone()

    def _unit_time(self, t) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float32).reshape(-1)
        return t / 1000.0 if self.prediction == "epsilon" else t

    def forward(self, x: torch.Tensor, t, cond: torch.Tensor | None = None) -> torch.Tensor:
        scale = self.config.data_scale
        tt = self._unit_time(t).to(x.device).expand(x.shape[0])  # one t for all rows, or one per row
        parts = [x / scale, time_features(tt, self.config.time_dim)]
        if self.config.num_classes:
            if cond is None:
                raise ValueError("this model is class-conditional: pass cond=model.embed(labels) or model.null_embedding.")
            parts.append(cond.expand(x.shape[0], -1))
        out = self.net(torch.cat(parts, 1))
        # velocities scale with the data, ε is unit-variance noise
        return out * scale if self.prediction == "velocity" else out
