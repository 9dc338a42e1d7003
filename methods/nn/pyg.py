"""PyTorch Geometric as the graph container of a graph method, so that a researcher can bring a PyG model.

:func:`graph_batch` turns a batch of contexts and K query times into one
``torch_geometric.data.Batch`` of B * K graphs (graph g = b * K + k: sample b
at query time k), and :class:`PyGModel` hands it to a PyG network inside the
:class:`~methods.nn.model.GraphModel` plumbing (inputs, graphs, chunking of
query times), for :class:`methods.base.PyGMethod`.

Attributes of the batch (nodes of graph g are ``g * N .. g * N + N - 1``):

* ``pos`` [G*N, 3] positions at t0 (A), ``vel`` [G*N, 3] velocities in A per
  stored frame, ``z`` [G*N] atomic numbers;
* ``edge_index`` [2, E] in PyG's order: row 0 = sender j (source), row 1 =
  receiver i (target); the task's molecular edges or the radius graph with
  the minimum image (the graphs of :class:`~methods.nn.model.GraphModel`);
* ``batch`` [G*N] the graph of every node, ``ptr`` [G+1] its node offsets;
* ``t`` [G] the query time as a fraction of the horizon (tau);
* ``box`` [G, 3] the orthorhombic box (A), absent without periodicity.

:func:`relative_vectors` gives ``r_ij = x_i - x_j`` of every edge with the
minimum image (the convention of :mod:`methods.nn.graph`).  The batch is
built from flat tensors, not from a list of ``Data`` objects (that would be
a Python loop over B * K graphs per forward pass), so ``to_data_list`` is not
available on it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.data import Batch

from benchmark.graph import minimum_image
from methods.nn.graph import Graph
from methods.nn.model import GraphModel


def graph_batch(x: torch.Tensor, v: torch.Tensor, z: torch.Tensor, pairs, tau: torch.Tensor,
                box: torch.Tensor | None) -> Batch:
    """x, v [B, N, 3], z [N], pairs (b, i receiver, j sender) per sample, tau [B, K] -> Batch of B*K graphs."""
    B, N = x.shape[:2]
    K = tau.shape[1]
    b, i, j = pairs
    graph = Graph.flat(b, i, j, B, K, N, x.dtype)  # row = receiver, col = sender over all B*K*N nodes
    G = B * K
    attrs = {
        "pos": x[:, None].expand(-1, K, -1, -1).reshape(G * N, 3),
        "vel": v[:, None].expand(-1, K, -1, -1).reshape(G * N, 3),
        "z": z.to(x.device).repeat(G),
        "edge_index": torch.stack([graph.col, graph.row]),
        "batch": torch.arange(G, device=x.device).repeat_interleave(N),
        "ptr": torch.arange(G + 1, device=x.device) * N,
        "t": tau.reshape(G),
    }
    if box is not None:
        attrs["box"] = box.to(x.dtype).expand(G, 3)
    return Batch(**attrs)


def relative_vectors(batch: Batch, pos: torch.Tensor | None = None) -> torch.Tensor:
    """r_ij = x_i - x_j [E, 3] of every edge (j -> i) of ``batch``, minimum image; ``pos`` defaults to batch.pos."""
    pos = batch.pos if pos is None else pos
    j, i = batch.edge_index
    box = batch.box[batch.batch[i]] if "box" in batch else None
    return minimum_image(pos[i] - pos[j], box)


class PyGModel(GraphModel):
    """A GraphModel whose ``forward_chunk`` builds the :func:`graph_batch` and calls a PyG ``network`` on it.

    ``network(batch)`` returns the positions [B*K*N, 3] of every node at its graph's query time.
    """

    def __init__(self, network: nn.Module, **kw):
        super().__init__(**kw)
        self.network = network

    def forward_chunk(self, context, query_times):
        x, v, _ = self.node_inputs(context)
        B, N = x.shape[:2]
        K = query_times.shape[1]
        batch = graph_batch(x, v, context.atomic_numbers, self.pair_lists(context, x),
                            self.tau(context, query_times), self.box(context))
        return self.network(batch).view(B, K, N, 3)
