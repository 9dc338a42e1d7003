"""The synthetic inputs of the cost measurements (deterministic). Cases (8 target times within
3000 frames):

  mol21   a synthetic 21-atom molecule, fully connected (420 directed edges), batch 50
  box250  250 atoms in a periodic box at liquid-argon density, radius graph, batch 5

Each variant is given a synthetic history of its task's observed frames.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import torch

from benchmark.samples import Context

CASES = {
    "mol21": {"n_atoms": 21, "batch": 50, "periodic": False},
    "box250": {"n_atoms": 250, "batch": 5, "periodic": True},
}
EPOCH_SAMPLES = 500
K = 8
WINDOW_FRAMES = 3000  # the query times lie within 3000 frames (protocol A's delta_frame)
WAVELET_ATOMS = 2  # wavelet-ARIMA is timed on this many atoms (3 series each) and scaled to N


def context_for(positions, velocities, atomic_numbers, masses, edges, box, dt_fs: float, observed: int,
                seed: int = 0):
    """A :class:`Context` of B samples: the frame t0 ``positions`` [B, N, 3] (A) plus, when ``observed``
    > 1, a synthetic history (a random walk of ~0.02 A per frame ending at t0)."""
    x0 = torch.as_tensor(positions, dtype=torch.float32)
    v0 = torch.as_tensor(velocities, dtype=torch.float32)
    b, n, _ = x0.shape
    if observed > 1:
        gen = torch.Generator().manual_seed(seed + 1)
        walk = torch.cumsum(0.02 * torch.randn(b, observed, n, 3, generator=gen), dim=1)
        x = x0[:, None] + walk - walk[:, -1:]
        v = v0[:, None] + 0.1 * v0.std() * torch.randn(b, observed, n, 3, generator=gen)
        v[:, -1] = v0
    else:
        x, v = x0[:, None], v0[:, None]
    times = torch.arange(-(observed - 1), 1, dtype=torch.float32) * dt_fs
    return Context(x, v, times, torch.as_tensor(atomic_numbers, dtype=torch.long),
                   torch.as_tensor(masses, dtype=torch.float32), edges,
                   None if box is None else torch.as_tensor(box, dtype=torch.float32), float(dt_fs))


def subset_atoms(context, m: int, samples: int | None = None):
    """The context restricted to its first ``m`` atoms (edges among them kept) and ``samples`` samples."""
    edges = context.edges
    if edges is not None:
        edges = edges[:, (edges[0] < m) & (edges[1] < m)]
    b = slice(None) if samples is None else slice(0, samples)
    return replace(context, observed_positions=context.observed_positions[b, :, :m],
                   observed_velocities=context.observed_velocities[b, :, :m],
                   atomic_numbers=context.atomic_numbers[:m], masses=context.masses[:m], edges=edges)


def synthetic(case: str, observed: int = 1, seed: int = 0):
    """(context, query_times, targets) of one batch of the case; deterministic."""
    c = CASES[case]
    n, b = c["n_atoms"], c["batch"]
    gen = torch.Generator().manual_seed(seed)
    if c["periodic"]:
        edge = (n / 0.0127) ** (1 / 3)  # number density of LJ argon at reduced density 0.5 (sigma 3.4 A)
        box = torch.full((3,), edge)
        x = torch.rand(b, n, 3, generator=gen) * box
        v = 0.005 * torch.randn(b, n, 3, generator=gen)
        z, edges, dt = torch.full((n,), 18), None, 100.0
    else:
        box = None
        x = 1.5 * torch.randn(b, n, 3, generator=gen)
        v = 0.01 * torch.randn(b, n, 3, generator=gen)
        z = torch.tensor([6, 1, 8, 7] * 6)[:n]
        edges = torch.stack(torch.nonzero(~torch.eye(n, dtype=torch.bool), as_tuple=True))
        dt = 0.5
    ctx = context_for(x, v, z, torch.ones(n), edges, box, dt, observed, seed)
    offsets = torch.sort(torch.randperm(WINDOW_FRAMES, generator=gen)[:K] + 1).values.float()
    query = offsets.expand(b, K) * dt
    target = x[:, None] + 0.1 * torch.randn(b, K, n, 3, generator=gen)
    return ctx, query, target


def training_stub(spec, protocol: str, context) -> SimpleNamespace:
    """What ``Method.setup(train)`` reads from a training :class:`SampleSet`, for a synthetic system."""
    if protocol == "window":
        offsets = np.array([[spec.delta_frame * i // spec.num_queries for i in range(1, spec.num_queries + 1)]])
    else:
        offsets = np.arange(1, spec.horizon + 1)[None]
    return SimpleNamespace(spec=spec, n_atoms=context.positions.shape[1], atomic_numbers=context.atomic_numbers,
                           offsets=offsets, dt_fs=context.dt_fs, observed_positions=context.observed_positions)
