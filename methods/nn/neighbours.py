"""Neighbour lists: the pairs of atoms closer than a cutoff, with the minimum image in a periodic box.

The displacement convention is :func:`benchmark.graph.minimum_image` (the one
definition, shared with the metrics).
"""

from __future__ import annotations

import numpy as np
import torch

from benchmark.graph import minimum_image


def radius_pairs(positions: torch.Tensor, box: torch.Tensor | None, cutoff: float,
                 backend: str = "auto", dense_max_atoms: int = 1024):
    """Neighbour list of every sample: (b, i, j) long tensors with |x_i - x_j|_mic < cutoff, i != j.

    ``backend``: ``dense`` (all pairs, minimum image; right for tens to hundreds
    of atoms), ``vesin`` (cell lists, for large boxes), ``auto`` (dense up to
    ``dense_max_atoms`` atoms).  Both give the same pairs, in (b, i, j) order.
    """
    B, N, _ = positions.shape
    if backend == "auto":
        backend = "dense" if N <= dense_max_atoms else "vesin"
    if backend == "dense":
        with torch.no_grad():
            rel = minimum_image(positions[:, :, None] - positions[:, None], box)
            d2 = (rel ** 2).sum(-1)
            eye = torch.eye(N, dtype=torch.bool, device=positions.device)
            b, i, j = torch.nonzero((d2 < cutoff ** 2) & ~eye, as_tuple=True)
        return b, i, j
    if backend != "vesin":
        raise ValueError(f"unknown neighbour-list backend {backend!r}; valid: auto, dense, vesin")
    import vesin

    out_b, out_i, out_j = [], [], []
    calc = vesin.NeighborList(cutoff=float(cutoff), full_list=True)
    pos = positions.detach().cpu().double().numpy()
    if box is None:  # vesin needs a box even without periodicity
        cell, periodic = np.zeros((3, 3)), False
    else:
        cell, periodic = np.diag(box.detach().cpu().double().numpy()), True
    for s in range(B):
        i, j = calc.compute(points=pos[s], box=cell, periodic=periodic, quantities="ij")
        i, j = torch.as_tensor(i.astype(np.int64)), torch.as_tensor(j.astype(np.int64))
        keep = i != j  # self-images appear only if cutoff > box/2, which callers prevent
        i, j = i[keep], j[keep]
        order = torch.argsort(i * N + j)
        out_b.append(torch.full((len(order),), s, dtype=torch.long))
        out_i.append(i[order])
        out_j.append(j[order])
    dev = positions.device
    return torch.cat(out_b).to(dev), torch.cat(out_i).to(dev), torch.cat(out_j).to(dev)
