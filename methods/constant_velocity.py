"""Constant-velocity baseline: x(t) = x(t0) + v(t0) (t - t0).

Not from a paper: a trivial reference row.  ``v(t0)`` is the context's
velocity (stored MD velocity, or the dataset's finite difference) in A/fs and
query times are in fs, so the extrapolation is in physical units.  Over long
horizons it drifts linearly, so it is usually worse than ``static`` there: the
pair brackets what "no model" achieves.
"""

from __future__ import annotations

from methods.base import Method


class ConstantVelocity(Method):
    name = "constant_velocity"
    description = "trivial baseline: x(t) = x(t0) + v(t0)(t - t0)"
    paper = "reference baseline"
    seed_dependent = False

    def predict(self, context, query_times):
        dt = query_times[:, :, None, None].to(context.positions.dtype)  # [B, K, 1, 1] fs
        return context.positions[:, None] + context.velocities[:, None] * dt
