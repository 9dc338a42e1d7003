"""GraphModel: the base of the graph methods' models (EGNN, EGNO, GF-NODE, NDCN).

It turns a :class:`~benchmark.samples.Context` into node inputs (positions,
velocities in A per stored frame, features [|v|, Z/Zmax]), normalised query
times tau = offset / horizon, and the graph of a batch (the task's molecular
edges, or the radius graph with the minimum image for periodic liquids), and
splits many query times into strided chunks so memory stays bounded.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from methods.nn.graph import Graph
from methods.nn.neighbours import radius_pairs
from methods.nn.ode import ODESolver
from methods.nn.sequence import query_chunks


class GraphModel(nn.Module):
    """Base of the graph models: inputs, graphs and query chunking.

    Subclasses implement ``forward_chunk(context, query_times) -> [B, K, N, 3]``;
    ``forward`` splits K query times into strided chunks of at most
    ``max_graphs // B`` (or ``fixed_chunk``) times and calls it per chunk.
    """

    fixed_chunk: int | None = None
    solver: ODESolver | None = None  # the ODE models set theirs; ``fit`` reports its statistics

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
