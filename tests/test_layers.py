"""The shared graph layers: fast EGNN layer == sparse reference, neighbour lists, ODE helper."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.graph import minimum_image
from methods.nn.egnn import EGNN, EGNNLayer, initial_sq_dist
from methods.nn.embeddings import sinusoidal_embedding
from methods.nn.graph import Graph
from methods.nn.laplacian import adjacency, laplacian_modes, normalized_laplacian
from methods.nn.neighbours import radius_pairs
from methods.nn.ode import ODESolver, union_times
from methods.nn.sequence import query_chunks


def _inputs(G, N, F, dtype, seed=0, scale=2.0):
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(G, N, F, generator=gen, dtype=dtype)
    x = scale * torch.randn(G, N, 3, generator=gen, dtype=dtype)
    v = 0.3 * torch.randn(G, N, 3, generator=gen, dtype=dtype)
    return h, x, v


def _random_edges(N, p, seed=0):
    gen = torch.Generator().manual_seed(seed)
    adj = torch.rand(N, N, generator=gen) < p
    adj = (adj | adj.T) & ~torch.eye(N, dtype=torch.bool)
    return torch.stack(torch.nonzero(adj, as_tuple=True))


def _layer(F, edge_dim, dtype, seed=0):
    torch.manual_seed(seed)
    layer = EGNNLayer(F, edge_dim).to(dtype)
    with torch.no_grad():  # larger coordinate weights than the 1e-3 init, so the force term matters
        layer.coord2.weight.normal_(0, 0.3)
    return layer


def _run(stack, h, x, v, graph):
    h.requires_grad_(True)
    x.requires_grad_(True)
    ho, xo, _ = stack(h, x, v, graph, initial_sq_dist(x, graph))
    loss = (ho ** 2).mean() + (xo ** 2).mean()
    names, params = zip(*stack.named_parameters())
    gh, gx, *gp = torch.autograd.grad(loss, (h, x, *params))
    return ho.detach(), xo.detach(), gh, gx, dict(zip(names, gp))


@pytest.mark.parametrize("block", [16384, 40])  # one block of edges, or many
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("mode", ["dense", "edges", "flat"])
def test_fast_layer_equals_reference(mode, dtype, tol, block, monkeypatch):
    monkeypatch.setattr(EGNNLayer, "edge_block", block)
    G, N, F = 6, 9, 16
    torch.manual_seed(0)
    stack = EGNN(F, 2, edge_dim=1).to(dtype)
    with torch.no_grad():
        for layer in stack.layers:
            layer.coord2.weight.normal_(0, 0.3)
    if mode == "flat":  # a periodic box: per-sample neighbour lists flattened over all graphs
        box = torch.tensor([6.0, 7.0, 8.0], dtype=dtype)
        h, x, v = _inputs(1, G * N, F, dtype)
        x = x.remainder(1.0) * box  # inside the box, so pairs cross its faces
        b, i, j = radius_pairs(x.view(G, N, 3), box, 2.9)
        graph = Graph.flat(b, i, j, G, 1, N, dtype, box)
    else:
        edges = _random_edges(N, 0.9 if mode == "dense" else 0.3)
        graph = Graph.from_edges(edges, N, 0.0 if mode == "dense" else 2.0, dtype)  # force the mode
        assert graph.mode == mode
        h, x, v = _inputs(G, N, F, dtype)
    stack.impl = "fast"
    fast = _run(stack, h.clone(), x.clone(), v, graph)
    stack.impl = "reference"
    ref = _run(stack, h.clone(), x.clone(), v, graph)
    for a, b_ in zip(fast[:4], ref[:4]):
        torch.testing.assert_close(a, b_, atol=tol, rtol=tol)
    for name in fast[4]:
        # A weight's gradient sums over every edge and spans 1e-3..1e3: element-wise tolerances
        # fail on the elements that cancel to near zero wherever the CPU's kernels sum in another
        # order (float32 on an AMD EPYC: 6e-4 relative on such an element, 7e-7 of the tensor's
        # largest entry). Compare against the tensor's scale; a wrong gradient is off by O(1) of it.
        scale = ref[4][name].abs().max().item()
        torch.testing.assert_close(fast[4][name], ref[4][name], atol=tol * max(scale, 1.0), rtol=tol, msg=name)
    assert (fast[1] - x).abs().max() > 1e-2  # the layers moved the atoms: not a vacuous comparison


def test_dense_mode_ignores_non_edges():
    """A missing edge must not contribute, whatever the positions of the unconnected pair."""
    N, F = 5, 8
    edges = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4, 0, 2], [1, 0, 2, 1, 3, 2, 4, 3, 2, 0]])
    graph = Graph.from_edges(edges, N, 0.0, torch.float64)
    assert graph.mode == "dense"
    layer = _layer(F, 0, torch.float64)
    h, x, v = _inputs(1, N, F, torch.float64)
    h1, x1, _ = layer(h, x, v, graph)
    # atom 4 is connected only to 3: moving 0 (not a neighbour of 4) must leave 4's update unchanged
    x_moved = x.clone()
    x_moved[0, 0] += 3.0
    _, x2, _ = layer(h, x_moved, v, graph)
    torch.testing.assert_close(x1[0, 4], x2[0, 4])
    assert not torch.allclose(x1[0, 1], x2[0, 1])


def test_minimum_image_and_neighbour_lists():
    box = torch.tensor([10.0, 10.0, 10.0], dtype=torch.float64)
    a = torch.tensor([[0.5, 5.0, 5.0], [9.7, 5.0, 5.0], [5.0, 5.0, 5.0]], dtype=torch.float64)
    rel = minimum_image(a[0] - a[1], box)
    torch.testing.assert_close(rel, torch.tensor([0.8, 0.0, 0.0], dtype=torch.float64))
    b, i, j = radius_pairs(a[None], box, 1.0, backend="dense")
    assert sorted(zip(i.tolist(), j.tolist())) == [(0, 1), (1, 0)]
    # dense all-pairs == vesin cell lists == brute force over the 27 images
    gen = torch.Generator().manual_seed(3)
    box = torch.tensor([9.0, 10.0, 11.0], dtype=torch.float64)
    x = (torch.rand(2, 60, 3, generator=gen, dtype=torch.float64) * box
         + 20.0 * torch.randn(2, 60, 3, generator=gen, dtype=torch.float64))
    dense = radius_pairs(x, box, 3.5, backend="dense")
    vesin = radius_pairs(x, box, 3.5, backend="vesin")
    for d, w in zip(dense, vesin):
        assert torch.equal(d, w)
    shifts = torch.stack(torch.meshgrid(*[torch.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(-1, 3) * box
    wrapped = x.remainder(box)
    d = (wrapped[:, :, None, None] - wrapped[:, None, :, None] - shifts).norm(dim=-1).min(-1).values
    brute = torch.nonzero((d < 3.5) & ~torch.eye(60, dtype=torch.bool), as_tuple=True)
    for d_, w in zip(dense, brute):
        assert torch.equal(d_, w)


def test_flat_graph_replicates_pairs_per_copy():
    b = torch.tensor([0, 0, 1])
    i = torch.tensor([0, 1, 2])
    j = torch.tensor([1, 0, 0])
    g = Graph.flat(b, i, j, n_samples=2, copies=2, n_atoms=3)
    pairs = sorted(zip(g.row.tolist(), g.col.tolist()))
    # sample 0 -> graphs 0, 1 (nodes 0-2, 3-5); sample 1 -> graphs 2, 3 (nodes 6-8, 9-11)
    assert pairs == sorted([(0, 1), (1, 0), (3, 4), (4, 3), (8, 6), (11, 9)])
    assert g.inv_deg[0, 0] == 1.0 and g.inv_deg[2, 0] == 1.0  # atom 2 of sample 0 has no neighbour


def test_sinusoidal_embedding():
    t = torch.tensor([0.0, 1.0, 250.0])
    e = sinusoidal_embedding(t, 8)
    assert e.shape == (3, 8)
    torch.testing.assert_close(e[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    torch.testing.assert_close(e[1, 0], torch.sin(torch.tensor(1.0)))
    torch.testing.assert_close(e[2, 3], torch.sin(torch.tensor(250.0 * 10000 ** -1.0)))
    assert sinusoidal_embedding(t, 7).shape == (3, 7)


def test_ode_solver_counts_and_caps():
    rate = torch.tensor(-2.0, dtype=torch.float64)
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    solver = ODESolver("dopri5", 1e-8, 1e-10, max_nfe=10_000)
    y = solver.solve(lambda _, y: rate * y, torch.ones(2, dtype=torch.float64), t)
    torch.testing.assert_close(y[:, 0], torch.exp(rate * t), atol=1e-7, rtol=1e-7)
    assert solver.last_nfe > 6 and solver.capped == 0
    capped = ODESolver("dopri5", 1e-8, 1e-10, max_nfe=8, fallback_steps=64)
    y = capped.solve(lambda _, y: rate * y, torch.ones(2, dtype=torch.float64), t)
    assert capped.capped == 1 and capped.last_nfe == 4 * 64
    torch.testing.assert_close(y[:, 0], torch.exp(rate * t), atol=1e-6, rtol=1e-6)  # rk4 fallback


def test_union_times_and_query_chunks():
    tau = torch.tensor([[0.5, 0.25], [0.25, 1.0]])
    t, where = union_times(tau)
    assert t.tolist() == [0.0, 0.25, 0.5, 1.0]
    assert torch.equal(t[where], tau)
    chunks = query_chunks(10, 4)
    assert all(len(c) <= 4 for c in chunks)
    assert sorted(torch.cat(chunks).tolist()) == list(range(10))
    assert chunks[0].tolist() == [0, 3, 6, 9]  # strided: each chunk spans the horizon


def test_laplacians():
    edges = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])  # a path of 4 atoms
    adj = adjacency(edges, 4)
    u = laplacian_modes(adj, 2)
    torch.testing.assert_close(u[:, 0].abs(), torch.full((4,), 0.5, dtype=torch.float64))
    fiedler = u[:, 1] * torch.sign(u[0, 1])
    expected = torch.tensor([math.cos(math.pi * (k + 0.5) / 4) for k in range(4)], dtype=torch.float64)
    torch.testing.assert_close(fiedler, expected / expected.norm())
    lap = normalized_laplacian(adj)
    torch.testing.assert_close(torch.diagonal(lap), torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(lap[0, 1], torch.tensor(-1 / math.sqrt(2), dtype=torch.float64))


def test_query_chunking_matches_direct_calls():
    """Protocol B: K query times in strided chunks (several per pass) == each chunk on its own."""
    from benchmark.samples import Context
    from methods.egnn import EGNNModel
    from methods.egno import EGNOModel

    N, B, K = 5, 2, 14
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(B, 1, N, 3, generator=gen, dtype=torch.float64)
    edges = torch.stack(torch.nonzero(~torch.eye(N, dtype=torch.bool), as_tuple=True))
    ctx = Context(x, 0.1 * x, torch.zeros(1), torch.tensor([6, 1, 8, 6, 1]), torch.ones(N), edges, None, 1.0)
    q = torch.sort(torch.randperm(100, generator=gen)[:K] + 1).values.double().expand(B, K)
    common = dict(n_atoms=N, z_max=8, horizon=100, hidden=8, cutoff=5.0, dense_fraction=0.5,
                  neighbor_backend="auto", n_layers=2, time_emb_dim=4)
    torch.manual_seed(0)
    egno = EGNOModel(train_queries=4, max_graphs=16, **common).double()
    out = egno(ctx, q)
    groups = query_chunks(K, 4)
    assert len({len(g) for g in groups}) == 2  # chunks of unequal length are covered too
    for idx in groups:
        torch.testing.assert_close(out[:, idx], egno.forward_chunk(ctx, q[:, idx]))
    torch.manual_seed(0)
    egnn = EGNNModel(train_queries=4, max_graphs=6, **common).double()  # 3 query times per pass
    chunked = egnn(ctx, q)
    egnn.max_graphs = 1000
    torch.testing.assert_close(chunked, egnn(ctx, q))


@pytest.mark.parametrize("with_attr", [False, True])
def test_edge_mlp_backward_matches_autograd(with_attr):
    """The hand-written backward of the fused edge MLP against numerical derivatives (float64),
    including a gradient into the edge attributes and the case where only phi is used."""
    from methods.nn.egnn import EdgeMLP

    gen = torch.Generator().manual_seed(3)
    F, E = 5, 7

    def t(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)

    pi, pj, r2 = t(2, E, 1, F), t(2, 1, E, F), t(2, E, E, 1)  # broadcast, as in the dense mode
    ea = t(2, E, E, 2) if with_attr else None
    ws = t(F, 3 if with_attr else 1)
    args = (pi, pj, r2, ea, ws, t(F, F), t(F), t(F, F), t(F), t(1, F))
    assert torch.autograd.gradcheck(lambda *a: EdgeMLP.apply(*a), args)
    assert torch.autograd.gradcheck(lambda *a: EdgeMLP.apply(*a)[1], args)
