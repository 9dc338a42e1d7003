"""Shared building blocks of the graph methods (EGNN, EGNO, GF-NODE, NDCN and later ones).

Not a method (no ``name``): the registry skips this module.

* :class:`EGNNLayer` - the E(n)-equivariant layer with a velocity term, as in
  the EGNO / GF-NODE code (Satorras et al. 2021, eqs. 3-6 with the velocity
  variant of eq. 7):

      m_ij = SiLU(W2 SiLU(W1 [h_i, h_j, |r_ij|^2, a_ij] + b1) + b2),  r_ij = x_i - x_j
      x_i' = x_i + phi_v(h_i) v_i + clamp(1/|N(i)| sum_j r_ij phi_x(m_ij), +-100)
      h_i' = phi_h([h_i, sum_j m_ij])

  (v is carried through unchanged, as in the published EGNO / GF-NODE layer;
  the last linear layer of phi_x is initialised with gain 1e-3 as in the EGNN
  code).  Two implementations of the same parameters:

  - :meth:`EGNNLayer.forward` (fast): node tensors are batched ``[G, N, F]``
    (G = graphs = samples x target times), the first edge layer is computed
    as per-node projections ``W1a h_i + W1b h_j`` that are broadcast (dense
    mode, ``[G, N, N, F]`` with an edge mask, for small fully/mostly
    connected molecules) or gathered afterwards (edge mode, ``[G, E, F]``
    with one static edge list shared by all G graphs; a periodic box is one
    flattened graph, G = 1); aggregation is a masked sum (as a batched
    matmul) or ``index_add_``; no ``cat`` of edge inputs; the per-edge MLPs
    run on blocks of at most ``edge_block`` edges (bounds single tensors);
  - :meth:`EGNNLayer.forward_reference`: the straightforward sparse version
    (flattened nodes, edge list replicated per graph, ``cat`` of edge inputs,
    ``scatter_add_`` aggregation as in the published code).  Kept for the
    equality test (``tests/test_layers.py``) and the speed comparison
    (``python -m benchmark.perf``).

* :class:`Graph` - the static graph of a batch (dense mask or shared edge
  list, or a flattened per-sample neighbour list for periodic boxes) with the
  minimum-image convention for relative vectors;
  :func:`radius_pairs` - the neighbour list (dense all-pairs with minimum
  image for small systems, ``vesin`` for large boxes);
* :func:`sinusoidal_embedding` - the transformer / DDPM time embedding;
* :class:`ODESolver` - torchdiffeq ``odeint`` with a count of function
  evaluations and a cap (above the cap the solve is redone with fixed-step
  rk4, and the event is counted);
* :func:`tune_malloc` - glibc allocator settings that avoid page faults on
  large activations (the main CPU speed lever measured here);
* :class:`GraphMethod` - the common ``TorchMethod`` plumbing: node features,
  graphs, time normalisation, protocol B (training windows, chunked queries).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from methods.base import TorchMethod

# --------------------------------------------------------------------------- embeddings


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


# --------------------------------------------------------------------------- graphs


def minimum_image(delta: torch.Tensor, box: torch.Tensor | None) -> torch.Tensor:
    """Wrap displacements into [-box/2, box/2] (orthorhombic; no-op without a box)."""
    if box is None:
        return delta
    return delta - box * torch.round(delta / box)


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


@dataclass
class Graph:
    """The static graph the EGNN layers of one forward pass run on.

    Node tensors are ``[G, M, F]``.  ``mode``:
      ``dense``  M = N atoms, ``mask`` [N, N] (1 on edges) shared by all G graphs;
      ``edges``  M = N atoms, ``row``/``col`` [E] shared by all G graphs;
      ``flat``   G = 1, M = all atoms of all graphs, ``row``/``col`` index them
                 (per-sample neighbour lists of periodic boxes).
    Messages go j -> i along (row=i, col=j); ``inv_deg`` [M, 1] = 1/max(deg, 1).
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
        """Per-sample pairs (b, i, j) replicated over ``copies`` graphs per sample.

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
        """Relative vectors x_i - x_j (minimum image): dense [G, N, N, 3], else [G, E, 3]."""
        if self.mode == "dense":
            rel = x[:, :, None] - x[:, None]
        else:
            rel = x.index_select(1, self.row) - x.index_select(1, self.col)
        return minimum_image(rel, self.box)


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


# --------------------------------------------------------------------------- EGNN layer


class EGNNLayer(nn.Module):
    """E(n)-equivariant layer with velocity term (see module docstring for the equations)."""

    edge_block = 262144  # edges per block of the per-edge MLP; blocks bound the size of single tensors

    def __init__(self, hidden: int, edge_dim: int = 0, coord_clamp: float = 100.0):
        super().__init__()
        self.hidden, self.edge_dim, self.coord_clamp = hidden, edge_dim, coord_clamp
        self.edge1 = nn.Linear(2 * hidden + 1 + edge_dim, hidden)  # [h_i, h_j, r^2, a_ij]
        self.edge2 = nn.Linear(hidden, hidden)
        self.coord1 = nn.Linear(hidden, hidden)
        self.coord2 = nn.Linear(hidden, 1, bias=False)
        nn.init.xavier_uniform_(self.coord2.weight, gain=0.001)
        self.vel1 = nn.Linear(hidden, hidden)
        self.vel2 = nn.Linear(hidden, 1)
        self.node1 = nn.Linear(2 * hidden, hidden)  # [h_i, sum_j m_ij]
        self.node2 = nn.Linear(hidden, hidden)
        self.act = nn.SiLU()

    # -- the fast implementation -------------------------------------------------------
    def forward(self, h, x, v, graph: Graph, edge_attr=None):
        """h [G, M, F], x/v [G, M, 3]; edge_attr dense [G, N, N, A] or [G, E, A]."""
        F_ = self.hidden
        w = self.edge1.weight
        p_i = torch.addmm(self.edge1.bias, h.reshape(-1, F_), w[:, :F_].T).view(h.shape)  # per node
        p_j = (h.reshape(-1, F_) @ w[:, F_:2 * F_].T).view(h.shape)
        rel = graph.relative(x)
        r2 = (rel ** 2).sum(-1, keepdim=True)
        scal = torch.cat([r2, edge_attr], dim=-1) if self.edge_dim else r2
        # the per-edge MLPs run on blocks of about ``edge_block`` edges, so that their
        # intermediates stay in cache (and autograd's backward walks the blocks in turn)
        forces, aggs = [], []
        if graph.mode == "flat":  # one graph: blocks of edges, partial sums added per block
            force = torch.zeros_like(x)
            agg = torch.zeros_like(h)
            for lo in range(0, len(graph.row), self.edge_block):
                sl = slice(lo, lo + self.edge_block)
                row, col = graph.row[sl], graph.col[sl]
                m, phi = self._edge_mlp(scal[:, sl], p_i.index_select(1, row), p_j.index_select(1, col), w)
                force = force.index_add(1, row, rel[:, sl] * phi)
                agg = agg.index_add(1, row, m)
            force = force * graph.inv_deg
        else:  # G graphs sharing one edge set: blocks of graphs
            per_graph = graph.n_nodes ** 2 if graph.mode == "dense" else len(graph.row)
            step = max(1, self.edge_block // max(per_graph, 1))
            for lo in range(0, h.shape[0], step):
                sl = slice(lo, lo + step)
                if graph.mode == "dense":
                    m, phi = self._edge_mlp(scal[sl], p_i[sl, :, None], p_j[sl, None], w)
                    forces.append((rel[sl] * phi).mul_(graph.mask[..., None]).sum(2))
                    aggs.append(torch.matmul(graph.mask[:, None, :], m).squeeze(2))  # sum_j mask_ij m_ij
                else:
                    m, phi = self._edge_mlp(scal[sl], p_i[sl].index_select(1, graph.row),
                                            p_j[sl].index_select(1, graph.col), w)
                    forces.append(torch.zeros_like(x[sl]).index_add_(1, graph.row, rel[sl] * phi))
                    aggs.append(torch.zeros_like(h[sl]).index_add_(1, graph.row, m))
            force = (forces[0] if len(forces) == 1 else torch.cat(forces)) * graph.inv_deg
            agg = aggs[0] if len(aggs) == 1 else torch.cat(aggs)
        force = force.clamp(-self.coord_clamp, self.coord_clamp)
        x = x + self.vel2(self.act(self.vel1(h))) * v + force
        wn = self.node1.weight
        h = self.node2(self.act(torch.addmm(self.node1.bias, h.reshape(-1, F_), wn[:, :F_].T).view(h.shape)
                                + agg @ wn[:, F_:].T))
        return h, x, v

    def _edge_mlp(self, scal, pi, pj, w):
        """m_ij and phi_x(m_ij) from the per-edge scalars and the (broadcast or gathered) node projections."""
        pre = scal @ w[:, 2 * self.hidden:].T
        pre = pre + pi
        pre.add_(pj)
        m = self.act(self.edge2(self.act(pre)))
        return m, self.coord2(self.act(self.coord1(m)))

    # -- the straightforward sparse reference ----------------------------------------
    def forward_reference(self, h, x, v, row, col, edge_attr=None, box=None):
        """h [M, F], x/v [M, 3] flattened; row/col [E] over all nodes; edge_attr [E, A]."""
        rel = minimum_image(x[row] - x[col], box)
        r2 = (rel ** 2).sum(-1, keepdim=True)
        parts = [h[row], h[col], r2] + ([edge_attr] if self.edge_dim else [])
        m = self.act(self.edge2(self.act(self.edge1(torch.cat(parts, dim=-1)))))
        f = rel * self.coord2(self.act(self.coord1(m)))
        idx3 = row[:, None].expand(-1, 3)
        tot = torch.zeros_like(x).scatter_add_(0, idx3, f)
        count = torch.zeros_like(x).scatter_add_(0, idx3, torch.ones_like(f))
        force = (tot / count.clamp(min=1)).clamp(-self.coord_clamp, self.coord_clamp)
        x = x + self.vel2(self.act(self.vel1(h))) * v + force
        agg = torch.zeros_like(h).scatter_add_(0, row[:, None].expand(-1, h.shape[1]), m)
        h = self.node2(self.act(self.node1(torch.cat([h, agg], dim=-1))))
        return h, x, v


class EGNN(nn.Module):
    """A stack of :class:`EGNNLayer` (embedding of the node input is left to the caller)."""

    def __init__(self, hidden: int, n_layers: int, edge_dim: int = 0):
        super().__init__()
        self.layers = nn.ModuleList(EGNNLayer(hidden, edge_dim) for _ in range(n_layers))
        self.impl = "fast"  # or "reference" (same parameters, same outputs)

    def layer(self, i, h, x, v, graph: Graph, edge_attr=None):
        """Apply layer ``i`` with the chosen implementation; tensors [G, M, *]."""
        layer = self.layers[i]
        if self.impl == "fast":
            return layer(h, x, v, graph, edge_attr)
        G, M = h.shape[:2]
        row, col = graph.edge_list(G)
        ea = None
        if layer.edge_dim:
            ea = edge_attr.expand(G, *edge_attr.shape[1:])
            ea = ea[:, graph.row, graph.col] if graph.mode == "dense" else ea
            ea = ea.reshape(-1, ea.shape[-1])
        h2, x2, v2 = layer.forward_reference(h.reshape(G * M, -1), x.reshape(G * M, 3), v.reshape(G * M, 3),
                                             row, col, ea, graph.box)
        return h2.view(G, M, -1), x2.view(G, M, 3), v2.view(G, M, 3)

    def forward(self, h, x, v, graph: Graph, edge_attr=None):
        for i in range(len(self.layers)):
            h, x, v = self.layer(i, h, x, v, graph, edge_attr)
        return h, x, v


def initial_sq_dist(x: torch.Tensor, graph: Graph) -> torch.Tensor:
    """Edge attribute |x_i - x_j|^2 of the input frame: dense [G, N, N, 1] or [G, E, 1]."""
    with torch.no_grad():
        return (graph.relative(x) ** 2).sum(-1, keepdim=True)


# --------------------------------------------------------------------------- ODE helper


class NFECapExceeded(RuntimeError):
    pass


class ODESolver:
    """``torchdiffeq.odeint`` with a function-evaluation count and a cap.

    ``solve(func, y0, t)`` integrates ``func(t, y)`` (y a tensor or a tuple of
    tensors) and returns the states at ``t`` (t[0] = initial time).  If the
    adaptive solver needs more than ``max_nfe`` evaluations the solve is
    redone with fixed-step rk4 over ``fallback_steps`` steps and counted in
    ``capped``; ``last_nfe`` / ``total_nfe`` / ``solves`` record the cost.
    """

    def __init__(self, method="dopri5", rtol=1e-3, atol=1e-4, max_nfe=1000, fallback_steps=32):
        self.method, self.rtol, self.atol = method, rtol, atol
        self.max_nfe, self.fallback_steps = max_nfe, fallback_steps
        self.last_nfe = self.total_nfe = self.solves = self.capped = 0

    def solve(self, func, y0, t):
        from torchdiffeq import odeint

        count = [0]

        def counted(tt, y):
            count[0] += 1
            if count[0] > self.max_nfe:
                raise NFECapExceeded
            return func(tt, y)

        try:
            out = odeint(counted, y0, t, method=self.method, rtol=self.rtol, atol=self.atol)
        except NFECapExceeded:
            self.capped += 1
            count[0] = 0
            step = float(t[-1] - t[0]) / self.fallback_steps
            out = odeint(func, y0, t, method="rk4", options={"step_size": step})
            count[0] = 4 * self.fallback_steps
        self.last_nfe = count[0]
        self.total_nfe += count[0]
        self.solves += 1
        return out

    def stats(self) -> dict:
        return {"solves": self.solves, "mean_nfe": self.total_nfe / max(self.solves, 1),
                "last_nfe": self.last_nfe, "capped": self.capped}


def gather_times(sol: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """States [L, B, ...] at the times ``where`` [B, K] (indices into L) -> [B, K, ...].

    ``index_select`` (its backward is a deterministic ``index_add_`` on CPU),
    not advanced indexing, whose accumulating backward is not bit-reproducible.
    """
    L, B = sol.shape[:2]
    flat = sol.transpose(0, 1).reshape(B * L, *sol.shape[2:])
    idx = (torch.arange(B, device=where.device)[:, None] * L + where).reshape(-1)
    return flat.index_select(0, idx).view(*where.shape, *sol.shape[2:])


def union_times(tau: torch.Tensor):
    """Sorted unique times with 0 first, and the index of every entry of ``tau`` (>= 0) in it."""
    zero = torch.zeros(1, dtype=tau.dtype, device=tau.device)
    t_union, inverse = torch.unique(torch.cat([zero, tau.reshape(-1)]), sorted=True, return_inverse=True)
    if t_union[0] < 0:
        raise ValueError("query times must be >= 0 (after t0)")
    return t_union, inverse[1:].view(tau.shape)


# --------------------------------------------------------------------------- method plumbing


def tune_malloc() -> bool:
    """Keep freed memory in glibc's heap instead of returning it to the OS (True if applied).

    glibc serves large allocations with fresh mmap pages and unmaps them on
    free, so every large activation tensor page-faults on first touch.  With
    mmap disabled and trimming off, freed blocks are reused: the EGNN on the
    21-atom case of ``python -m benchmark.perf`` went from 30 to 16 CPU
    seconds per epoch (about the effect of preloading tcmalloc, which the
    Makefile does when it is installed).  Peak memory is about unchanged; freed memory stays with this
    process for reuse.  No-op where glibc's ``mallopt`` is missing.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2 ** 30))



def is_extrapolation(sample_set) -> bool:
    """Protocol B sample set (one long future per trajectory) rather than protocol A windows."""
    from benchmark.tasks import WindowSpec

    return not isinstance(sample_set.spec, WindowSpec)


def window_starts(sample_set) -> int:
    """How many single-frame windows of length ``horizon`` fit in a protocol B part's frames."""
    first = sample_set.t0 - sample_set.spec.observed + 1
    last = sample_set.t0 + sample_set.offsets.max(axis=1)
    return int(np.maximum(0, last - int(sample_set.spec.delta_frame) - first + 1).sum())


def query_chunks(k: int, chunk: int) -> list[torch.Tensor]:
    """Strided groups of query indices (j, j+n, j+2n, ...), each of at most ``chunk`` entries.

    Strided rather than contiguous, so every group spans the whole horizon like
    a training window (EGNO's temporal convolution mixes the times of a group).
    """
    n = max(1, math.ceil(k / chunk))
    return [torch.arange(j, k, n) for j in range(n)]


class GraphMethod(TorchMethod):
    """Shared plumbing of the graph methods; subclasses implement ``build``.

    ``setup`` records what the model needs that is fixed per dataset: atom
    count, the largest atomic number, periodicity, and the horizon (frames)
    that normalises query times, tau = offset / horizon (protocol A:
    ``delta_frame``; protocol B: ``horizon``).  Under protocol B
    ``fit`` trains on protocol-A-style windows with ``delta_frame`` = that
    horizon, drawn by ``SampleSet.windows`` when the task provides it.

    Shared parameters: ``hidden``, ``n_layers``; ``cutoff`` (A, radius graph of
    liquids, kept below half the box); ``dense_fraction`` (a molecular graph
    with at least this fraction of all pairs uses the dense layer form);
    ``neighbor_backend`` (auto / dense / vesin); ``max_graphs`` (graph copies
    per forward pass, bounds memory when K is large); ``train_queries``,
    ``n_windows``, ``n_val_windows`` (protocol B training windows);
    ``tune_malloc`` (see :func:`tune_malloc`).
    """

    defaults = {**TorchMethod.defaults, "hidden": 64, "n_layers": 5, "cutoff": 7.5,
                "dense_fraction": 0.5, "neighbor_backend": "auto", "max_graphs": 400,
                "train_queries": 8, "n_windows": 500, "n_val_windows": 200, "tune_malloc": True}

    def setup(self, train) -> dict:
        horizon = int(train.spec.delta_frame)  # protocol B: the horizon (its windows use it too)
        return {"n_atoms": int(train.n_atoms), "z_max": int(train.atomic_numbers.max()),
                "horizon": horizon, "train_queries": int(train.offsets.shape[1])}

    def training_sets(self, train, val, seed):
        if not is_extrapolation(train) or not hasattr(train, "windows"):
            return train, val
        kw = {"delta_frame": int(train.spec.delta_frame), "num_queries": self.params["train_queries"],
              "observed": 1}
        return (train.windows(n=min(self.params["n_windows"], window_starts(train)), seed=seed, **kw),
                val.windows(n=min(self.params["n_val_windows"], window_starts(val)), seed=seed + 1, **kw))

    def fit(self, train, val, budget, seed, device, checkpoint_dir=None) -> dict:
        train, val = self.training_sets(train, val, seed)
        if self.params["tune_malloc"]:
            tune_malloc()
        facts = super().fit(train, val, budget, seed, device, checkpoint_dir)
        solver = getattr(self.model, "solver", None)
        if solver is not None:
            facts["ode"] = solver.stats()
        return facts


class GraphModel(nn.Module):
    """Base of the graph models: inputs, graphs and query chunking.

    Subclasses implement ``run(ctx_x, ctx_v, tau, graph_for, base) -> [B, K, N, 3]``
    via ``forward_chunk``; ``forward`` splits K query times into strided chunks
    of at most ``max_graphs // B`` (or ``fixed_chunk``) times.
    """

    fixed_chunk: int | None = None

    def __init__(self, n_atoms, z_max, horizon, train_queries, hidden, cutoff, dense_fraction,
                 neighbor_backend, max_graphs):
        super().__init__()
        self.n_atoms, self.z_max, self.horizon = n_atoms, z_max, horizon
        self.train_queries, self.hidden, self.cutoff = train_queries, hidden, cutoff
        self.dense_fraction, self.neighbor_backend, self.max_graphs = dense_fraction, neighbor_backend, max_graphs

    # inputs ------------------------------------------------------------------------
    def node_inputs(self, context) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [B, N, 3] A, v [B, N, 3] in A per stored frame, features [B, N, 2] = [|v|, Z/Zmax]."""
        x = context.positions
        v = context.velocities * context.dt_fs
        z = context.atomic_numbers.to(x.dtype) / self.z_max
        feats = torch.cat([v.norm(dim=-1, keepdim=True), z.expand(x.shape[0], -1)[..., None]], dim=-1)
        return x, v, feats

    def tau(self, context, query_times) -> torch.Tensor:
        """Query offsets as a fraction of the horizon, [B, K]."""
        return query_times.to(context.positions.dtype) / (self.horizon * context.dt_fs)

    def box(self, context):
        return None if context.box is None else context.box.to(context.positions.dtype)

    def effective_cutoff(self, box) -> float:
        """The cutoff, kept below half the smallest box edge so minimum image is exact."""
        if box is None:
            return self.cutoff
        return min(self.cutoff, 0.5 * float(box.min()) * 0.999)

    def molecule_graph(self, context, x) -> Graph:
        return Graph.from_edges(context.edges.to(x.device), x.shape[1], self.dense_fraction, x.dtype)

    def pair_lists(self, context, x):
        """Per-sample (b, i, j) pairs: the radius graph (liquids) or the molecular edges."""
        box = self.box(context)
        if context.edges is not None:
            e = context.edges.to(x.device)
            B = x.shape[0]
            b = torch.arange(B, device=x.device).repeat_interleave(e.shape[1])
            return b, e[0].repeat(B), e[1].repeat(B)
        return radius_pairs(x, box, self.effective_cutoff(box), self.neighbor_backend)

    def graph(self, context, x, copies: int, pairs=None) -> Graph:
        """The graph of B samples x ``copies`` graphs each (G = B * copies)."""
        if context.edges is not None:
            return self.molecule_graph(context, x)
        b, i, j = pairs if pairs is not None else self.pair_lists(context, x)
        return Graph.flat(b, i, j, x.shape[0], copies, x.shape[1], x.dtype, self.box(context))

    @staticmethod
    def to_groups(t: torch.Tensor, graph: Graph) -> torch.Tensor:
        """[B, K, N, F] -> the node layout of ``graph``: [B*K, N, F] or [1, B*K*N, F]."""
        B, K, N = t.shape[:3]
        if graph.mode == "flat":
            return t.reshape(1, B * K * N, -1)
        return t.reshape(B * K, N, -1)

    # chunking ----------------------------------------------------------------------
    def forward(self, context, query_times):
        B, K = query_times.shape
        chunk = self.fixed_chunk or max(1, self.max_graphs // max(B, 1))
        if K <= chunk:
            return self.forward_chunk(context, query_times)
        out = torch.empty(B, K, self.n_atoms, 3, dtype=context.positions.dtype, device=query_times.device)
        groups = query_chunks(K, chunk)
        per_call = max(1, self.max_graphs // (B * chunk))  # several chunks per pass, as extra samples
        for size in sorted({len(g) for g in groups}):
            same = [g for g in groups if len(g) == size]
            for lo in range(0, len(same), per_call):
                idx = torch.stack(same[lo:lo + per_call]).to(query_times.device)  # [c, size]
                c = idx.shape[0]
                ctx = dataclasses.replace(context,
                                          observed_positions=context.observed_positions.repeat(c, 1, 1, 1),
                                          observed_velocities=context.observed_velocities.repeat(c, 1, 1, 1))
                qt = query_times[:, idx].transpose(0, 1).reshape(c * B, size)  # sample (chunk j, b) = j*B + b
                pred = self.forward_chunk(ctx, qt).view(c, B, size, self.n_atoms, 3)
                out[:, idx] = pred.transpose(0, 1)
        return out

    def forward_chunk(self, context, query_times):
        raise NotImplementedError
