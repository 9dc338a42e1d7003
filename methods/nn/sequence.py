"""Indexing along the time axis: the observed frames an encoder reads, and chunks of query times."""

from __future__ import annotations

import math

import torch


def encode_indices(n_observed: int, encode_frames: int) -> torch.Tensor:
    """Up to ``encode_frames`` evenly spaced frame indices of the observed sequence, last included."""
    m = min(n_observed, max(1, encode_frames))
    if m == 1:
        return torch.tensor([n_observed - 1])
    return torch.unique(torch.linspace(0, n_observed - 1, m).round().long())


def query_chunks(k: int, chunk: int) -> list[torch.Tensor]:
    """Strided groups of query indices (j, j+n, j+2n, ...), each of at most ``chunk`` entries.

    Strided rather than contiguous, so every group spans the whole horizon like
    a training window (EGNO's temporal convolution mixes the times of a group).
    """
    n = max(1, math.ceil(k / chunk))
    return [torch.arange(j, k, n) for j in range(n)]
