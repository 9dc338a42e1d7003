"""ODE helpers: solving with a count of function evaluations, fixed-grid integration, reading states at times.

* :class:`ODESolver` - torchdiffeq ``odeint`` with a count of function
  evaluations and a cap (above the cap the solve is redone with fixed-step
  rk4, and the event is counted); GF-NODE, NDCN;
* :func:`union_times` / :func:`gather_times` - one solve over the sorted union
  of a batch's query times, then each sample's states at its own times;
* :func:`integrate_grid` / :func:`interpolate_grid` - a solve on a uniform grid
  and linear interpolation between grid points (LG-ODE, DoMiNO).
"""

from __future__ import annotations

import math

import torch
from torchdiffeq import odeint


class NFECapExceeded(RuntimeError):
    pass


class ODESolver:
    """``torchdiffeq.odeint`` with a function-evaluation count and a cap.

    ``solve(func, y0, t)`` integrates ``func(t, y)`` (y a tensor or a tuple of
    tensors) and returns the states at ``t`` (t[0] = initial time).  If the
    adaptive solver needs more than ``max_nfe`` evaluations the solve is
    redone with fixed-step rk4 over ``fallback_steps`` steps and counted in
    ``capped``; ``last_nfe`` / ``total_nfe`` / ``solves`` record the cost.
    """

    def __init__(self, method="dopri5", rtol=1e-3, atol=1e-4, max_nfe=1000, fallback_steps=32):
        self.method, self.rtol, self.atol = method, rtol, atol
        self.max_nfe, self.fallback_steps = max_nfe, fallback_steps
        self.last_nfe = self.total_nfe = self.solves = self.capped = 0

    def solve(self, func, y0, t):
        count = [0]

        def counted(tt, y):
            count[0] += 1
            if count[0] > self.max_nfe:
                raise NFECapExceeded
            return func(tt, y)

        try:
            out = odeint(counted, y0, t, method=self.method, rtol=self.rtol, atol=self.atol)
        except NFECapExceeded:
            self.capped += 1
            count[0] = 0
            step = float(t[-1] - t[0]) / self.fallback_steps
            out = odeint(func, y0, t, method="rk4", options={"step_size": step})
            count[0] = 4 * self.fallback_steps
        self.last_nfe = count[0]
        self.total_nfe += count[0]
        self.solves += 1
        return out

    def stats(self) -> dict:
        return {"solves": self.solves, "mean_nfe": self.total_nfe / max(self.solves, 1),
                "last_nfe": self.last_nfe, "capped": self.capped}


def gather_times(sol: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """States [L, B, ...] at the times ``where`` [B, K] (indices into L) -> [B, K, ...].

    ``index_select`` (its backward is a deterministic ``index_add_`` on CPU),
    not advanced indexing, whose accumulating backward is not bit-reproducible.
    """
    L, B = sol.shape[:2]
    flat = sol.transpose(0, 1).reshape(B * L, *sol.shape[2:])
    idx = (torch.arange(B, device=where.device)[:, None] * L + where).reshape(-1)
    return flat.index_select(0, idx).view(*where.shape, *sol.shape[2:])


def union_times(tau: torch.Tensor):
    """Sorted unique times with 0 first, and the index of every entry of ``tau`` (>= 0) in it."""
    zero = torch.zeros(1, dtype=tau.dtype, device=tau.device)
    t_union, inverse = torch.unique(torch.cat([zero, tau.reshape(-1)]), sorted=True, return_inverse=True)
    if t_union[0] < 0:
        raise ValueError("query times must be >= 0 (after t0)")
    return t_union, inverse[1:].view(tau.shape)


def integrate_grid(func, state, t_end: float, step: float, solver: str = "rk4", rtol=1e-3, atol=1e-4):
    """Solve dz/dt = func(t, z) on the grid 0, step, 2 step, ... >= t_end; returns (grid, states [G, ...])."""
    n = max(1, int(math.ceil(t_end / step - 1e-9)))
    ref = state[0] if isinstance(state, tuple) else state
    grid = torch.arange(n + 1, device=ref.device, dtype=ref.dtype) * step
    if solver in ("rk4", "euler", "midpoint", "explicit_adams", "implicit_adams"):
        out = odeint(func, state, grid, method=solver, options={"step_size": step})
    else:
        out = odeint(func, state, grid, method=solver, rtol=rtol, atol=atol)
    return grid, out


def interpolate_grid(states: torch.Tensor, step: float, times: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of grid states [G, B, ...] at per-sample times [B, K] -> [B, K, ...]."""
    g = states.shape[0]
    u = (times / step).clamp(min=0.0)
    i0 = torch.floor(u).long().clamp(max=max(g - 2, 0))
    w = (u - i0.to(u.dtype)).clamp(0.0, 1.0)
    i1 = (i0 + 1).clamp(max=g - 1)
    b = torch.arange(times.shape[0], device=times.device)[:, None]
    shape = w.shape + (1,) * (states.dim() - 2)
    w = w.reshape(shape).to(states.dtype)
    return (1 - w) * states[i0, b] + w * states[i1, b]
