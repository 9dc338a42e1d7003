"""The sinusoidal time embedding of the transformer / DDPM, shared by every method that embeds a time."""

from __future__ import annotations

import math

import torch


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """[*] -> [*, dim]: sin/cos of ``t`` at ``dim/2`` geometric frequencies 1 .. 1/max_period."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=t.dtype, device=t.device)
                      / max(half - 1, 1))
    arg = t[..., None] * freqs
    emb = torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)
    if dim % 2:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb
