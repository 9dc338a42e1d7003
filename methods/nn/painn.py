"""PaiNN message passing, shared by DoMiNO (encoder, graph ODE, decoder) and ITO (conditioner, score net).

Paper: K. T. Schuett, O. T. Unke, M. Gastegger, "Equivariant message passing for
the prediction of tensorial properties and molecular spectra", ICML 2021.
Implemented equations (their Eqs. 7-11), per atom i with scalar features
``s_i`` [F] and vector features ``v_i`` [3, F], edges j -> i of an
:class:`~methods.nn.graph.EdgeGraph` with relative vector ``r_ij = x_i - x_j``
(minimum image in a periodic box), distance ``d = |r_ij|`` and unit vector
``u = r_ij / d``:

* message:  ``phi(s_j) * W(d) = (a, b, c)`` with ``phi`` a 2-layer SiLU MLP and
  ``W`` a linear filter on sin radial basis functions times a cosine cutoff;
  ``ds_i = sum_j a``,  ``dv_i = sum_j (v_j * b - c * u)``;
* update:  ``U v, V v`` (linear maps over the feature axis, no bias),
  ``(a_vv, a_sv, a_ss) = MLP([s_i, |V v_i|])``,
  ``dv_i = a_vv * U v_i``,  ``ds_i = a_sv * <U v_i, V v_i> + a_ss``.

The direction term ``- c * u`` is the paper's ``c * (x_j - x_i) / d`` written
with the shared edge convention r_ij = x_i - x_j.  Scalars are invariant and
vectors equivariant under rotations, translations and permutations of the
atoms (tested in float64 in ``tests/test_methods_latent.py``).  Graphs: all
pairs closer than ``cutoff`` (A) inside each sample
(:func:`methods.nn.graph.radius_graph`).  ``aggregate="mean"`` divides the
neighbour sum by the degree (used inside graph ODEs, where summed messages
over ~40 neighbours make the dynamics stiff: dopri5 needed over 400 function
evaluations, ~14 with the mean); ``"sum"`` is the paper's choice.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from methods.nn.graph import EdgeGraph


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

    def forward(self, s, v, graph: EdgeGraph, filt):
        f = s.shape[-1]
        src, dst = graph.src, graph.dst
        s_in, v_in = self.normed(s, v, 0)
        x = self.phi(s_in).index_select(0, src) * filt  # index_select: deterministic backward on CPU
        a, b, c = torch.split(x, f, dim=-1)
        unit = graph.vec / graph.dist[:, None]
        # r_ij = x_i - x_j points from the sender to the receiver: the paper's x_j - x_i is -unit
        dv_edge = v_in.index_select(0, src) * b[:, None, :] - c[:, None, :] * unit[:, :, None]
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

    def filters(self, graph: EdgeGraph, dtype) -> list[torch.Tensor]:
        """Edge filters of every layer; they depend on the geometry only, so they are computed once
        per graph object and reused (a graph ODE evaluates the same fixed graph ~80 times per solve)."""
        key = id(self)
        if key not in graph.cache:
            rbf, fcut = self.rbf(graph.dist)
            graph.cache[key] = [layer.edge_filter(rbf.to(dtype), fcut.to(dtype)) for layer in self.layers]
        return graph.cache[key]

    def forward(self, s, v, graph: EdgeGraph):
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
