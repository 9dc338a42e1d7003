"""The EGNN layer with a velocity term, as in the EGNO / GF-NODE code, and a stack of them.

Satorras et al. 2021, eqs. 3-6 with the velocity variant of eq. 7; edges
j -> i with r_ij = x_i - x_j (the convention of :mod:`methods.nn.graph`):

    m_ij = SiLU(W2 SiLU(W1 [h_i, h_j, |r_ij|^2, a_ij] + b1) + b2)
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
  run on blocks of at most ``edge_block`` edges (bounds single tensors), as
  one autograd function with a hand-written backward (:class:`EdgeMLP`);
- :meth:`EGNNLayer.forward_reference`: the straightforward sparse version
  (flattened nodes, edge list replicated per graph, ``cat`` of edge inputs,
  ``scatter_add_`` aggregation as in the published code).  Kept for the
  equality test (``tests/test_layers.py``) and the speed comparison
  (``python -m benchmark.perf``).
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.graph import minimum_image
from methods.nn.graph import Graph


class EdgeMLP(torch.autograd.Function):
    """The per-edge MLPs of the layer, with a hand-written backward.

    p = pi + pj + W1s [r^2, a],  m = SiLU(W2 SiLU(p) + b2),  phi = w4 SiLU(W3 m + b3)

    ``pi`` = W1a h_i + b1 and ``pj`` = W1b h_j [..., F] are the node projections, broadcast over
    the edges of a dense graph or gathered per edge; ``r2`` [..., 1] and ``edge_attr`` [..., A]
    (or None) the edge scalars, ``ws`` [F, 1 + A] their columns of W1.

    The same arithmetic as the modules (``edge2``, ``coord1``, ``coord2``); the backward adds the
    gradient m receives from the aggregation inside the matrix product that adds phi's (``addmm``),
    writes each SiLU gradient over its input buffer and keeps no autograd graph of its own: fewer
    passes over and fewer allocations of the [edges, F] tensors, which dominate the layer's cost.
    """

    @staticmethod
    def forward(ctx, pi, pj, r2, edge_attr, ws, w2, b2, w3, b3, w4):
        pre = pi + pj  # broadcast (dense) or gathered node projections
        shape = pre.shape[:-1]
        s = (r2 if edge_attr is None else torch.cat([r2, edge_attr], dim=-1)).reshape(-1, ws.shape[1])
        p = pre.view(-1, pre.shape[-1]).addmm_(s, ws.T)
        a1 = nn.functional.silu(p)
        z2 = torch.addmm(b2, a1, w2.T)
        m = nn.functional.silu(z2)
        z3 = torch.addmm(b3, m, w3.T)
        a3 = nn.functional.silu(z3)
        phi = a3 @ w4.T
        ctx.save_for_backward(p, s, ws, a1, z2, m, z3, a3, w2, w3, w4)
        ctx.pre_shape, ctx.pi_shape, ctx.pj_shape = pre.shape, pi.shape, pj.shape
        ctx.set_materialize_grads(False)
        return m.view(*shape, -1), phi.view(*shape, 1)

    @staticmethod
    def backward(ctx, g_m, g_phi):
        p, s, ws, a1, z2, m, z3, a3, w2, w3, w4 = ctx.saved_tensors
        silu_grad = torch.ops.aten.silu_backward.grad_input
        ones = p.new_ones(p.shape[0])  # bias gradients as matrix-vector products (faster than sum(0))
        if g_phi is None and g_m is None:
            return (None,) * 10
        if g_phi is None:
            g_w3 = g_b3 = g_w4 = None
            g_m = g_m.reshape(m.shape).clone()  # overwritten below
        else:
            g_phi = g_phi.reshape(-1, 1)
            g_w4 = g_phi.T @ a3
            g_z3 = g_phi * w4
            silu_grad(g_z3, z3, grad_input=g_z3)
            g_w3, g_b3 = g_z3.T @ m, torch.mv(g_z3.T, ones)
            g_m = g_z3 @ w3 if g_m is None else torch.addmm(g_m.reshape(m.shape), g_z3, w3)
        silu_grad(g_m, z2, grad_input=g_m)  # now the gradient of z2
        g_w2, g_b2 = g_m.T @ a1, torch.mv(g_m.T, ones)
        g_p = g_m @ w2
        silu_grad(g_p, p, grad_input=g_p)
        edge_shape = (*ctx.pre_shape[:-1], -1)
        g_r2 = (g_p @ ws[:, :1]).view(edge_shape) if ctx.needs_input_grad[2] else None
        g_a = (g_p @ ws[:, 1:]).view(edge_shape) if ctx.needs_input_grad[3] else None  # a_ij: usually constant
        g_pre = g_p.view(ctx.pre_shape)
        return (g_pre.sum_to_size(ctx.pi_shape), g_pre.sum_to_size(ctx.pj_shape), g_r2, g_a, (s.T @ g_p).T,
                g_w2, g_b2, g_w3, g_b3, g_w4)


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
        ea = edge_attr if self.edge_dim else None
        # the per-edge MLPs run on blocks of about ``edge_block`` edges, so that their
        # intermediates stay in cache (and autograd's backward walks the blocks in turn)
        forces, aggs = [], []
        if graph.mode == "flat":  # one graph: blocks of edges, partial sums added per block
            force = torch.zeros_like(x)
            agg = torch.zeros_like(h)
            for lo in range(0, len(graph.row), self.edge_block):
                sl = slice(lo, lo + self.edge_block)
                row, col = graph.row[sl], graph.col[sl]
                m, phi = self._edge_mlp(r2[:, sl], None if ea is None else ea[:, sl], p_i.index_select(1, row),
                                        p_j.index_select(1, col), w)
                force = force.index_add(1, row, rel[:, sl] * phi)
                agg = agg.index_add(1, row, m)
            force = force * graph.inv_deg
        else:  # G graphs sharing one edge set: blocks of graphs
            per_graph = graph.n_nodes ** 2 if graph.mode == "dense" else len(graph.row)
            step = max(1, self.edge_block // max(per_graph, 1))
            for lo in range(0, h.shape[0], step):
                sl = slice(lo, lo + step)
                if graph.mode == "dense":
                    m, phi = self._edge_mlp(r2[sl], None if ea is None else ea[sl], p_i[sl, :, None], p_j[sl, None], w)
                    forces.append((rel[sl] * phi).mul_(graph.mask[..., None]).sum(2))
                    aggs.append(torch.matmul(graph.mask[:, None, :], m).squeeze(2))  # sum_j mask_ij m_ij
                else:
                    m, phi = self._edge_mlp(r2[sl], None if ea is None else ea[sl], p_i[sl].index_select(1, graph.row),
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

    def _edge_mlp(self, r2, ea, pi, pj, w):
        """m_ij and phi_x(m_ij) from the edge scalars and the (broadcast or gathered) node projections."""
        return EdgeMLP.apply(pi, pj, r2, ea, w[:, 2 * self.hidden:], self.edge2.weight, self.edge2.bias,
                             self.coord1.weight, self.coord1.bias, self.coord2.weight)

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
