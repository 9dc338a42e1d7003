"""Geometry shared by tasks, metrics and methods: molecular graphs, and the one minimum-image convention.

:func:`minimum_image` is the only definition in the repository; the metrics and
every method layer (:mod:`methods.nn`) import it from here.
"""

from __future__ import annotations

import numpy as np
import torch


def minimum_image(delta, box):
    """Wrap displacement vectors into [-box/2, box/2) (orthorhombic ``box``; no-op if None).

    Works on numpy arrays and torch tensors; ``box`` broadcasts over the last axis.
    """
    if box is None:
        return delta
    if isinstance(delta, torch.Tensor):
        box = torch.as_tensor(box, dtype=delta.dtype, device=delta.device)
        return delta - box * torch.round(delta / box)
    box = np.asarray(box, dtype=delta.dtype)
    return delta - box * np.round(delta / box)


def molecular_graph(positions0: np.ndarray, bonds: np.ndarray | None = None, cutoff: float = 1.6,
                    two_hop: bool = True) -> torch.Tensor:
    """Static directed edge list [2, E] of a molecule.

    1-hop edges are the known ``bonds`` or, without them, the pairs closer than
    ``cutoff`` (A) in the first frame (the EGNO/GF-NODE MD17 convention); with
    ``two_hop`` every pair joined through one intermediate atom is added.
    """
    n = positions0.shape[0]
    adj = np.zeros((n, n), dtype=bool)
    if bonds is not None and len(bonds):
        b = np.asarray(bonds, dtype=np.int64)
        adj[b[:, 0], b[:, 1]] = adj[b[:, 1], b[:, 0]] = True
    else:
        d = np.linalg.norm(positions0[:, None] - positions0[None], axis=-1)
        adj = d < cutoff
    np.fill_diagonal(adj, False)
    if two_hop:
        two = (adj.astype(np.int64) @ adj.astype(np.int64)) > 0
        adj = adj | two
        np.fill_diagonal(adj, False)
    src, dst = np.nonzero(adj)
    return torch.as_tensor(np.stack([src, dst]), dtype=torch.long)
