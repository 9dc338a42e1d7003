"""PaiNN message passing, shared by DoMiNO (encoder, graph ODE, decoder) and ITO (conditioner, score net).

Paper: K. T. Schuett, O. T. Unke, M. Gastegger, "Equivariant message passing for
the prediction of tensorial properties and molecular spectra", ICML 2021.
Implemented equations (their Eqs. 7-11), per atom i with scalar features
``s_i`` [F] and vector features ``v_i`` [3, F], edges j -> i with relative
vector ``r_ij = x_j - x_i`` (minimum image in a periodic box), distance
``d = |r_ij|`` and unit vector ``u = r_ij / d``:

* message:  ``phi(s_j) * W(d) = (a, b, c)`` with ``phi`` a 2-layer SiLU MLP and
  ``W`` a linear filter on sin radial basis functions times a cosine cutoff;
  ``ds_i = sum_j a``,  ``dv_i = sum_j (v_j * b + c * u)``;
* update:  ``U v, V v`` (linear maps over the feature axis, no bias),
  ``(a_vv, a_sv, a_ss) = MLP([s_i, |V v_i|])``,
  ``dv_i = a_vv * U v_i``,  ``ds_i = a_sv * <U v_i, V v_i> + a_ss``.

Scalars are invariant and vectors equivariant under rotations, translations
and permutations of the atoms (tested in float64 in
``tests/test_methods_latent.py``).  Graphs: all pairs closer than ``cutoff``
(A) inside each sample; the pair list comes from a dense [B, N, N]
distance matrix, which is cheap for the benchmark's sizes (<= ~800 atoms).
``aggregate="mean"`` divides the neighbour sum by the degree (used inside
graph ODEs, where summed messages over ~40 neighbours make the dynamics stiff:
dopri5 needed over 400 function evaluations, ~14 with the mean); ``"sum"`` is the paper's choice.

This module registers no method; it only holds layers.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from benchmark.graph import minimum_image
from methods.layers import radius_pairs, sinusoidal_embedding  # noqa: F401  (shared time embedding, re-exported)


class Graph:
    """Directed edges j -> i over the flattened atoms of a batch, with geometry.

    ``src``/``dst`` index the flattened nodes [B*N]; ``vec`` [E, 3] is
    ``x_src - x_dst`` (minimum image), ``dist`` [E]; ``n_nodes`` = B*N.
    """

    def __init__(self, src, dst, vec, dist, n_nodes):
        self.src, self.dst, self.vec, self.dist, self.n_nodes = src, dst, vec, dist, n_nodes
        deg = torch.zeros(n_nodes, dtype=vec.dtype, device=vec.device)
        deg.index_add_(0, dst, torch.ones_like(dist))
        self.inv_degree = 1.0 / deg.clamp(min=1.0)
        self.cache: dict = {}  # per-module tensors that depend on the geometry only (PaiNN filters)

    def repeat(self, times: int) -> "Graph":
        """The same graph copied ``times`` times over consecutive node blocks (batched ODE segments)."""
        if times == 1:
            return self
        shift = (torch.arange(times, device=self.src.device) * self.n_nodes)[:, None]
        return Graph((self.src[None] + shift).reshape(-1), (self.dst[None] + shift).reshape(-1),
                     self.vec.repeat(times, 1), self.dist.repeat(times), self.n_nodes * times)


def radius_graph(pos: torch.Tensor, cutoff: float, box: torch.Tensor | None = None) -> Graph:
    """All pairs i != j of each sample closer than ``cutoff`` (minimum image when ``box`` is set).

    pos [B, N, 3] -> :class:`Graph` over B*N nodes.  The pair list comes from
    the shared neighbour list (:func:`methods.layers.radius_pairs`: all pairs
    up to 1024 atoms, vesin cell lists above, so memory and time grow linearly
    with the atoms of a large box) and is chosen without gradient; the geometry
    keeps the gradient with respect to ``pos``.
    """
    b, n, _ = pos.shape
    bi, ii, jj = radius_pairs(pos.detach(), box, cutoff)
    vec = minimum_image(pos[bi, jj] - pos[bi, ii], box)  # x_j - x_i
    dist = torch.sqrt((vec ** 2).sum(-1) + 1e-12)
    return Graph(bi * n + jj, bi * n + ii, vec, dist, b * n)


def fixed_graph(pos: torch.Tensor, edges: torch.Tensor, box: torch.Tensor | None = None) -> Graph:
    """The given molecular edge list [2, E] (same for every sample) with geometry of ``pos`` [B, N, 3]."""
    b, n, _ = pos.shape
    shift = (torch.arange(b, device=pos.device) * n)[:, None]
    src = (edges[0][None].to(pos.device) + shift).reshape(-1)
    dst = (edges[1][None].to(pos.device) + shift).reshape(-1)
    flat = pos.reshape(-1, 3)
    vec = minimum_image(flat[src] - flat[dst], box)
    return Graph(src, dst, vec, torch.sqrt((vec ** 2).sum(-1) + 1e-12), b * n)


class RadialBasis(nn.Module):
    """``sin(k pi d / c) / d`` for k = 1..n_rbf, times the cosine cutoff ``0.5 (cos(pi d / c) + 1)``."""

    def __init__(self, n_rbf: int, cutoff: float):
        super().__init__()
        self.cutoff = float(cutoff)
        self.register_buffer("freq", torch.arange(1, n_rbf + 1, dtype=torch.float32) * math.pi / self.cutoff)

    def forward(self, dist):
        rbf = torch.sin(dist[:, None] * self.freq) / dist[:, None]
        fcut = 0.5 * (torch.cos(dist * math.pi / self.cutoff) + 1.0) * (dist < self.cutoff)
        return rbf, fcut


class PaiNNLayer(nn.Module):
    """One PaiNN interaction (message) + update block, residual on s and v."""

    def __init__(self, features: int, n_rbf: int, aggregate: str = "sum", norm: bool = False):
        super().__init__()
        if aggregate not in ("sum", "mean"):
            raise ValueError(f"aggregate must be 'sum' or 'mean', got {aggregate!r}")
        f = features
        self.aggregate = aggregate
        # pre-norm (``norm``): the message and update blocks read layer-normed scalars and
        # RMS-normed vectors, so the residual stream grows additively, not by the update's
        # products (<Uv, Vv> squares v at every layer: far from the training data, e.g. two
        # atoms 0.09 A apart in a diffusion sample, five layers overflowed float32 to inf)
        self.s_norms = nn.ModuleList([nn.LayerNorm(f), nn.LayerNorm(f)]) if norm else None
        self.phi = nn.Sequential(nn.Linear(f, f), nn.SiLU(), nn.Linear(f, 3 * f))
        self.filter = nn.Linear(n_rbf, 3 * f)
        self.U = nn.Linear(f, f, bias=False)
        self.V = nn.Linear(f, f, bias=False)
        self.update_mlp = nn.Sequential(nn.Linear(2 * f, f), nn.SiLU(), nn.Linear(f, 3 * f))

    def edge_filter(self, rbf, fcut):
        """W(d) times the cutoff [E, 3F]: depends on the geometry only (cached for a fixed graph)."""
        return self.filter(rbf) * fcut[:, None]

    def normed(self, s, v, i: int):
        """Layer-normed scalars and RMS-normed vectors (rotation-invariant scale) when ``norm``."""
        if self.s_norms is None:
            return s, v
        return self.s_norms[i](s), v / torch.sqrt((v ** 2).sum(1, keepdim=True).mean(2, keepdim=True) + 1e-8)

    def forward(self, s, v, graph: Graph, filt):
        f = s.shape[-1]
        src, dst = graph.src, graph.dst
        s_in, v_in = self.normed(s, v, 0)
        x = self.phi(s_in).index_select(0, src) * filt  # index_select: deterministic backward on CPU
        a, b, c = torch.split(x, f, dim=-1)
        unit = graph.vec / graph.dist[:, None]
        dv_edge = v_in.index_select(0, src) * b[:, None, :] + c[:, None, :] * unit[:, :, None]
        ds = torch.zeros_like(s).index_add_(0, dst, a)
        dv = torch.zeros_like(v).index_add_(0, dst, dv_edge)
        if self.aggregate == "mean":
            ds = ds * graph.inv_degree[:, None]
            dv = dv * graph.inv_degree[:, None, None]
        s, v = s + ds, v + dv
        s_in, v_in = self.normed(s, v, 1)
        uv, vv = self.U(v_in), self.V(v_in)
        norm = torch.sqrt((vv ** 2).sum(1) + 1e-8)
        a_vv, a_sv, a_ss = torch.split(self.update_mlp(torch.cat([s_in, norm], -1)), f, dim=-1)
        return s + a_sv * (uv * vv).sum(1) + a_ss, v + a_vv[:, None, :] * uv


class PaiNN(nn.Module):
    """A stack of PaiNN layers on given initial features.

    ``forward(s [M, F], v [M, 3, F], graph)`` -> (s, v); the caller builds
    the initial features (atom embeddings, conditioning) and the graph.
    """

    def __init__(self, features: int, layers: int, cutoff: float, n_rbf: int = 20, aggregate: str = "sum",
                 norm: bool = False):
        super().__init__()
        self.rbf = RadialBasis(n_rbf, cutoff)
        self.layers = nn.ModuleList([PaiNNLayer(features, n_rbf, aggregate, norm) for _ in range(layers)])

    def filters(self, graph: Graph, dtype) -> list[torch.Tensor]:
        """Edge filters of every layer; they depend on the geometry only, so they are computed once
        per graph object and reused (a graph ODE evaluates the same fixed graph ~80 times per solve)."""
        key = id(self)
        if key not in graph.cache:
            rbf, fcut = self.rbf(graph.dist)
            graph.cache[key] = [layer.edge_filter(rbf.to(dtype), fcut.to(dtype)) for layer in self.layers]
        return graph.cache[key]

    def forward(self, s, v, graph: Graph):
        for layer, filt in zip(self.layers, self.filters(graph, s.dtype)):
            s, v = layer(s, v, graph, filt)
        return s, v


class GatedEquivariantReadout(nn.Module):
    """Equivariant vector output: ``out_i = sum_c W(v_i)[:, c] * g_c(s_i)`` -> [M, 3, out]."""

    def __init__(self, scalar_in: int, vector_in: int, out: int = 1, hidden: int = 64):
        super().__init__()
        self.mix = nn.Linear(vector_in, out, bias=False)
        self.gate = nn.Sequential(nn.Linear(scalar_in, hidden), nn.SiLU(), nn.Linear(hidden, out))

    def forward(self, s, v):
        return self.mix(v) * self.gate(s)[:, None, :]
