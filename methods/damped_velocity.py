"""Damped-velocity baseline: x(t) = x(t0) + g(t) v(t0), with g learned.

Not from a paper: the simplest *learned* reference row.  ``g`` is a small MLP
of the normalised query time t / T (T = the task's longest offset) giving a
length in fs: the best single "effective time" over which the velocity at t0
keeps pointing the same way.  For ballistic motion g(t) = t
(constant velocity); for a liquid it saturates at roughly the velocity
autocorrelation time.  It is trivially E(3)-equivariant and permutation
equivariant (one scalar per query time), has a few hundred parameters, and
exercises the shared trainer (checkpoints, resume, selection on validation,
divergence detection) at a cost of seconds.
"""

from __future__ import annotations

import torch

from methods.base import TorchMethod


class DampedVelocityNet(torch.nn.Module):
    def __init__(self, horizon_fs: float, hidden: int):
        super().__init__()
        self.horizon_fs = horizon_fs
        self.g = torch.nn.Sequential(torch.nn.Linear(1, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, 1))

    def forward(self, context, query_times):
        tau = (query_times / self.horizon_fs)[..., None]               # [B, K, 1]
        g = self.horizon_fs * self.g(tau)[..., None]                   # [B, K, 1, 1] fs
        return context.positions[:, None] + g * context.velocities[:, None]


class DampedVelocity(TorchMethod):
    name = "damped_velocity"
    description = "learned baseline: x(t) = x(t0) + g(t) v(t0), g a small MLP of t"
    paper = "reference baseline (learned)"
    defaults = {**TorchMethod.defaults, "hidden": 16, "lr": 1e-2, "epochs": 50, "batch_size": 50}
    test_params = {"hidden": 4, "epochs": 2}

    def setup(self, train):
        horizon_fs = float(train.offsets.max()) * train.dt_fs
        return {"horizon_fs": horizon_fs}

    def build(self, horizon_fs):
        return DampedVelocityNet(horizon_fs, self.params["hidden"])
