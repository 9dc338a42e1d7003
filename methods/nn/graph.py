"""The graphs the layers run on: :class:`Graph` (EGNN layers) and :class:`EdgeGraph` (PaiNN, attention).

Edge convention of both: a message goes from the sender j to the receiver i,
and the relative vector of the edge is ``r_ij = x_i - x_j`` (receiver minus
sender), with the minimum image in a periodic box.

* :class:`Graph` holds connectivity only (the EGNN layers recompute relative
  vectors of their updated positions every layer) in one of three layouts
  chosen for speed: a dense [N, N] mask or one edge list shared by all G
  graphs of a batch (molecules), or a flattened per-sample neighbour list
  (periodic boxes).
* :class:`EdgeGraph` is an edge list over the flattened atoms of a batch with
  its geometry (``vec`` = r_ij, ``dist``), fixed for one forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmark.graph import minimum_image
from methods.nn.neighbours import radius_pairs


@dataclass
class Graph:
    """The static graph the EGNN layers of one forward pass run on.

    Node tensors are ``[G, M, F]``.  ``mode``:
      ``dense``  M = N atoms, ``mask`` [N, N] (1 on edges) shared by all G graphs;
      ``edges``  M = N atoms, ``row``/``col`` [E] shared by all G graphs;
      ``flat``   G = 1, M = all atoms of all graphs, ``row``/``col`` index them
                 (per-sample neighbour lists of periodic boxes).
    Messages go j -> i along (row=i receiver, col=j sender); ``inv_deg`` [M, 1] = 1/max(deg, 1).
    """

    mode: str
    n_nodes: int
    row: torch.Tensor | None = None
    col: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    inv_deg: torch.Tensor | None = None
    box: torch.Tensor | None = None

    @classmethod
    def from_edges(cls, edges: torch.Tensor, n_atoms: int, dense_fraction: float = 0.5,
                   dtype=torch.float32, box=None) -> "Graph":
        """One edge list [2, E] (row = receiver, col = sender) shared by every graph of the batch."""
        row, col = edges[0].long(), edges[1].long()
        deg = torch.bincount(row, minlength=n_atoms).to(dtype)
        inv_deg = (1.0 / deg.clamp(min=1))[:, None]
        if n_atoms > 1 and len(row) >= dense_fraction * n_atoms * (n_atoms - 1):
            mask = torch.zeros(n_atoms, n_atoms, dtype=dtype, device=edges.device)
            mask[row, col] = 1.0
            return cls("dense", n_atoms, row, col, mask, inv_deg, box)
        return cls("edges", n_atoms, row, col, None, inv_deg, box)

    @classmethod
    def flat(cls, b: torch.Tensor, i: torch.Tensor, j: torch.Tensor, n_samples: int, copies: int,
             n_atoms: int, dtype=torch.float32, box=None) -> "Graph":
        """Per-sample pairs (b, i receiver, j sender) replicated over ``copies`` graphs per sample.

        Graph g = b * copies + k holds node ``g * n_atoms + i``.
        """
        k = torch.arange(copies, device=b.device)
        g = (b[None] * copies + k[:, None]).T.reshape(-1)  # edge-major: sample b, copy k
        row = g * n_atoms + i.repeat_interleave(copies)
        col = g * n_atoms + j.repeat_interleave(copies)
        m = n_samples * copies * n_atoms
        deg = torch.bincount(row, minlength=m).to(dtype)
        return cls("flat", m, row, col, None, (1.0 / deg.clamp(min=1))[:, None], box)

    def edge_list(self, n_graphs: int):
        """(row, col) over flattened nodes of ``n_graphs`` graphs (for the reference layer)."""
        if self.mode == "flat":
            return self.row, self.col
        offs = (torch.arange(n_graphs, device=self.row.device) * self.n_nodes)[:, None]
        return (self.row[None] + offs).reshape(-1), (self.col[None] + offs).reshape(-1)

    def relative(self, x: torch.Tensor) -> torch.Tensor:
        """Relative vectors r_ij = x_i - x_j (minimum image): dense [G, N, N, 3], else [G, E, 3]."""
        if self.mode == "dense":
            rel = x[:, :, None] - x[:, None]
        else:
            rel = x.index_select(1, self.row) - x.index_select(1, self.col)
        return minimum_image(rel, self.box)


class EdgeGraph:
    """Directed edges j -> i over the flattened atoms of a batch, with their geometry.

    ``src`` (senders j) / ``dst`` (receivers i) index the flattened nodes;
    ``vec`` [E, 3] = r_ij = x_dst - x_src (minimum image), ``dist`` [E] = |r_ij|;
    ``n_nodes`` the number of nodes; ``inv_degree`` [n_nodes] = 1/max(in-degree, 1).
    """

    def __init__(self, src, dst, vec, dist, n_nodes):
        self.src, self.dst, self.vec, self.dist, self.n_nodes = src, dst, vec, dist, n_nodes
        deg = torch.zeros(n_nodes, dtype=vec.dtype, device=vec.device)
        deg.index_add_(0, dst, torch.ones_like(dist))
        self.inv_degree = 1.0 / deg.clamp(min=1.0)
        self.cache: dict = {}  # per-module tensors that depend on the geometry only (PaiNN filters)

    @property
    def edge_index(self) -> torch.Tensor:
        """[2, E] in PyTorch Geometric's order: row 0 = senders j (source), row 1 = receivers i (target)."""
        return torch.stack([self.src, self.dst])

    def repeat(self, times: int) -> "EdgeGraph":
        """The same graph copied ``times`` times over consecutive node blocks (batched ODE segments)."""
        if times == 1:
            return self
        shift = (torch.arange(times, device=self.src.device) * self.n_nodes)[:, None]
        return EdgeGraph((self.src[None] + shift).reshape(-1), (self.dst[None] + shift).reshape(-1),
                         self.vec.repeat(times, 1), self.dist.repeat(times), self.n_nodes * times)

    def over_frames(self, xs: torch.Tensor, box=None) -> "EdgeGraph":
        """These edges (of a batch of B samples x N atoms) in every frame of xs [B, M, N, 3], with each
        frame's geometry; nodes frame-major (frame m, sample b, atom i at ``(m * B + b) * N + i``)."""
        b, m, n, _ = xs.shape
        flat = xs.transpose(0, 1).reshape(m, b * n, 3)
        vec = minimum_image(flat[:, self.dst] - flat[:, self.src], box).reshape(-1, 3)
        shift = (torch.arange(m, device=xs.device) * b * n)[:, None]
        return EdgeGraph((self.src[None] + shift).reshape(-1), (self.dst[None] + shift).reshape(-1), vec,
                         torch.sqrt((vec ** 2).sum(-1) + 1e-12), m * b * n)


def radius_graph(pos: torch.Tensor, cutoff: float, box: torch.Tensor | None = None) -> EdgeGraph:
    """All pairs i != j of each sample closer than ``cutoff`` (minimum image when ``box`` is set).

    pos [B, N, 3] -> :class:`EdgeGraph` over B*N nodes.  The pair list comes from
    :func:`methods.nn.neighbours.radius_pairs` (all pairs up to 1024 atoms,
    vesin cell lists above, so memory and time grow linearly with the atoms of
    a large box) and is chosen without gradient; the geometry keeps the
    gradient with respect to ``pos``.
    """
    b, n, _ = pos.shape
    bi, ii, jj = radius_pairs(pos.detach(), box, cutoff)
    vec = minimum_image(pos[bi, ii] - pos[bi, jj], box)  # r_ij = x_i - x_j
    dist = torch.sqrt((vec ** 2).sum(-1) + 1e-12)
    return EdgeGraph(bi * n + jj, bi * n + ii, vec, dist, b * n)
