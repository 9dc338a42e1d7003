"""Adjacency matrices and graph Laplacians (GF-NODE's graph Fourier basis, NDCN's diffusion operator)."""

from __future__ import annotations

import torch


def adjacency(graph_edges: torch.Tensor, n_atoms: int, dtype=torch.float64) -> torch.Tensor:
    """Symmetric 0/1 adjacency [N, N] of an edge list [2, E]."""
    adj = torch.zeros(n_atoms, n_atoms, dtype=dtype, device=graph_edges.device)
    adj[graph_edges[0], graph_edges[1]] = 1.0
    adj = torch.maximum(adj, adj.T)
    adj.fill_diagonal_(0.0)
    return adj


def laplacian_modes(adj: torch.Tensor, k: int) -> torch.Tensor:
    """Eigenvectors of L = D - A for the ``k`` lowest eigenvalues: [..., N, N] -> [..., N, k].

    Computed in float64.  Eigenvector signs are arbitrary; the GF-NODE spectral
    dynamics are linear per mode, so predictions do not depend on them.
    """
    a = adj.double()
    lap = torch.diag_embed(a.sum(-1)) - a
    _, vecs = torch.linalg.eigh(lap)
    return vecs[..., :k].to(adj.dtype)


def normalized_laplacian(adj: torch.Tensor) -> torch.Tensor:
    """D^-1/2 (D - A) D^-1/2 (isolated nodes get zero rows), [..., N, N]."""
    deg = adj.sum(-1)
    d = torch.where(deg > 0, deg.clamp(min=1e-12).rsqrt(), torch.zeros_like(deg))
    lap = torch.diag_embed(deg) - adj
    return d[..., :, None] * lap * d[..., None, :]
