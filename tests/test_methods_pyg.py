"""A method built from a PyTorch Geometric ``MessagePassing`` layer, through the ``methods.base`` contract.

:class:`methods.base.PyGMethod` hands the network a ``torch_geometric.data.Batch``
(one graph per sample and query time); the toy method here is an EGNN-style
layer written as a PyG ``MessagePassing`` module.  It must fit and predict on
the tiny fixture data of the generic method test, persist, and learn.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric.nn import MessagePassing

from benchmark.graph import minimum_image
from methods.base import Budget, PyGMethod
from methods.nn.graph import Graph
from methods.nn.pyg import graph_batch, relative_vectors


class EquivariantConv(MessagePassing):
    """m_ij = phi(h_i, h_j, |r_ij|^2);  dx_i = mean_j r_ij w(m_ij);  h_i <- h_i + psi([h_i, mean_j m_ij])."""

    def __init__(self, hidden: int):
        super().__init__(aggr="mean")  # edge_index[0] = source j, edge_index[1] = target i
        self.edge = nn.Sequential(nn.Linear(2 * hidden + 1, hidden), nn.SiLU())
        self.coord = nn.Linear(hidden, 1)
        self.node = nn.Linear(2 * hidden, hidden)

    def forward(self, h, rel, edge_index):
        out = self.propagate(edge_index, h=h, rel=rel)
        dx, m = out[:, :3], out[:, 3:]
        return h + self.node(torch.cat([h, m], -1)), dx

    def message(self, h_i, h_j, rel):
        m = self.edge(torch.cat([h_i, h_j, (rel ** 2).sum(-1, keepdim=True)], -1))
        return torch.cat([rel * self.coord(m), m], -1)


class Net(nn.Module):
    """x(t) = x0 + tau * (horizon * a(h) v0 + sum over layers of dx), h from [Z / Zmax, tau]."""

    def __init__(self, z_max: int, horizon: int, hidden: int, n_layers: int):
        super().__init__()
        self.z_max, self.horizon = z_max, horizon
        self.embed = nn.Linear(2, hidden)
        self.convs = nn.ModuleList(EquivariantConv(hidden) for _ in range(n_layers))
        self.speed = nn.Linear(hidden, 1)

    def forward(self, batch):
        tau = batch.t[batch.batch][:, None]
        h = self.embed(torch.cat([batch.z[:, None].to(tau.dtype) / self.z_max, tau], -1))
        rel = relative_vectors(batch)
        dx = torch.zeros_like(batch.pos)
        for conv in self.convs:
            h, d = conv(h, rel, batch.edge_index)
            dx = dx + d
        return batch.pos + tau * (self.horizon * self.speed(h) * batch.vel + dx)


class PyGToy(PyGMethod):
    name = ""  # not registered: a test method
    defaults = {**PyGMethod.defaults, "hidden": 8, "n_layers": 2, "batch_size": 4, "lr": 1e-2, "eval_every": 1}

    def network(self, n_atoms, z_max, horizon, train_queries):
        return Net(z_max, horizon, self.params["hidden"], self.params["n_layers"])


@pytest.mark.parametrize("dataset", ["chain", "lj"])
def test_pyg_method_fits_predicts_and_learns(tiny_tasks, dataset):
    train, val, test = tiny_tasks[dataset]
    method = PyGToy()
    facts = method.fit(train, val, Budget(epochs=6), seed=0, device="cpu")
    losses = [r["train_loss"] for r in facts["history"]]
    assert losses[-1] < 0.5 * losses[0], losses
    ctx, qt, _ = next(test.batches(3))
    pred = method.predict(ctx, qt)
    assert pred.shape == (3, qt.shape[1], test.n_atoms, 3) and torch.isfinite(pred).all()
    again = PyGToy()
    again.load_state_dict(method.state_dict())
    assert torch.equal(again.predict(ctx, qt), pred)
    assert method.n_params() > 0


def test_graph_batch_layout_and_edge_convention():
    """Graph g = b * K + k; edge_index[0] = sender j, [1] = receiver i; r_ij = x_i - x_j with the minimum image."""
    gen = torch.Generator().manual_seed(0)
    box = torch.tensor([4.0, 5.0, 6.0], dtype=torch.float64)
    x = torch.rand(2, 5, 3, generator=gen, dtype=torch.float64) * box * 3  # unwrapped
    v = torch.randn(2, 5, 3, generator=gen, dtype=torch.float64)
    b = torch.tensor([0, 0, 1])
    i = torch.tensor([0, 3, 4])
    j = torch.tensor([1, 2, 0])
    tau = torch.tensor([[0.25, 0.5, 1.0], [0.1, 0.2, 0.3]], dtype=torch.float64)
    batch = graph_batch(x, v, torch.arange(5), (b, i, j), tau, box)
    assert batch.num_graphs == 6 and batch.pos.shape == (30, 3) and batch.box.shape == (6, 3)
    assert torch.equal(batch.t, tau.reshape(-1)) and torch.equal(batch.batch, torch.arange(6).repeat_interleave(5))
    # sample 1, copy 2 is graph 5: its edge 0 -> 4 has receiver node 5 * 5 + 4
    assert [25, 29] in batch.edge_index.T.tolist()
    rel = relative_vectors(batch)
    src, dst = batch.edge_index
    expected = minimum_image(batch.pos[dst] - batch.pos[src], box)
    assert torch.equal(rel, expected)
    # the same vectors as the EGNN layers' Graph.relative for these pairs
    flat = Graph.flat(b, i, j, 2, 3, 5, torch.float64, box)
    assert torch.equal(flat.relative(batch.pos[None])[0], rel)
