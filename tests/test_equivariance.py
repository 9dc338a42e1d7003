"""E(3) and permutation equivariance of the equivariant methods (float64, untrained, random weights).

For a rotation R, a translation t and an atom permutation P of the input
(positions, velocities, atomic numbers, masses, edges), the predicted
positions must become P(R x + t) to 1e-5 A.  Periodic boxes: translations
(positions are unwrapped, relative vectors use the minimum image), atom
permutations and the rotations that map the box onto itself.

A new equivariant method adds one line to ``EQUIVARIANT``.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import random_rotation

from methods import make_method

EQUIVARIANT = [
    ("egnn", {}),
    ("egno", {}),
    ("gfnode", {}),
    ("gfnode", {"no_fourier": True}),
    ("gfnode", {"no_ode": True}),
    ("gfnode", {"time_embedding": "slot"}),
    ("gfnode", {"time_embedding": "frames"}),
]


def _model(name, params, train):
    cls = make_method(name).__class__
    method = make_method(name, {**cls.test_params, **params})
    torch.manual_seed(0)
    model = method.build(**method.setup(train)).double()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # weights well away from the small initialisations, so a broken symmetry shows
        for p in model.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    model.eval()
    return model


def _context(test, n=3):
    ctx, qt, _ = next(test.batches(n))
    ctx = dataclasses.replace(ctx, observed_positions=ctx.observed_positions.double(),
                              observed_velocities=ctx.observed_velocities.double() * 20.0,
                              masses=ctx.masses.double(),
                              box=None if ctx.box is None else ctx.box.double())
    return ctx, qt.double()


def _transform(ctx, rot, shift, perm):
    inv = torch.argsort(perm)
    edges = None if ctx.edges is None else inv[ctx.edges]
    return dataclasses.replace(
        ctx, observed_positions=(ctx.observed_positions @ rot.T + shift)[:, :, perm],
        observed_velocities=(ctx.observed_velocities @ rot.T)[:, :, perm],
        atomic_numbers=ctx.atomic_numbers[perm], masses=ctx.masses[perm], edges=edges)


def _box_rotation(box):
    """A proper rotation mapping the orthorhombic box onto itself (axis swap + sign if cubic)."""
    if torch.allclose(box, box[0].expand(3)):
        return torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return torch.diag(torch.tensor([-1.0, -1.0, 1.0], dtype=torch.float64))


def _id(name, params):
    return name + "".join(f"-{k}" + ("" if v is True else f"={v}") for k, v in params.items())


@pytest.mark.parametrize("dataset", ["chain", "lj"])
@pytest.mark.parametrize("name,params", EQUIVARIANT, ids=[_id(n, p) for n, p in EQUIVARIANT])
def test_equivariance(tiny_tasks, dataset, name, params):
    train, _, test = tiny_tasks[dataset]
    model = _model(name, params, train)
    ctx, qt = _context(test)
    gen = torch.Generator().manual_seed(7)
    n = ctx.observed_positions.shape[2]
    perm = torch.randperm(n, generator=gen)
    shift = 5.0 * torch.randn(3, generator=gen, dtype=torch.float64)
    rot = random_rotation(gen) if ctx.box is None else _box_rotation(ctx.box)
    with torch.no_grad():
        out = model(ctx, qt)
        out_t = model(_transform(ctx, rot, shift, perm), qt)
    assert out.dtype == torch.float64 and out.shape == (qt.shape[0], qt.shape[1], n, 3)
    moved = (out - ctx.positions[:, None]).abs().max()
    assert moved > 1e-3, f"{name} barely moves the atoms ({moved:.2e}); the test would be vacuous"
    expected = (out @ rot.T + shift)[:, :, perm]
    err = (out_t - expected).abs().max()
    assert err < 1e-5, f"{name} {params} breaks equivariance on {dataset}: max error {err:.2e} A"


def test_transform_helper_is_a_symmetry():
    """The test's own transformation: distances are preserved, edges follow the atoms."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, 5, 3, dtype=torch.float64, generator=gen)
    edges = torch.tensor([[0, 1, 2], [1, 2, 4]])
    from benchmark.samples import Context

    ctx = Context(x, x.clone(), torch.zeros(1), torch.arange(5), torch.ones(5, dtype=torch.float64), edges, None, 1.0)
    perm = torch.randperm(5, generator=gen)
    t = _transform(ctx, random_rotation(gen), torch.ones(3, dtype=torch.float64), perm)
    def d(c, e):
        return (c.observed_positions[0, 0, e[0]] - c.observed_positions[0, 0, e[1]]).norm(dim=-1)

    torch.testing.assert_close(d(ctx, edges), d(t, t.edges))
    assert torch.equal(t.atomic_numbers[t.edges], ctx.atomic_numbers[edges])
