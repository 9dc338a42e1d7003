"""Static baseline: the future equals the last observed frame, x(t) = x(t0).

Not from a paper: a trivial reference row for every table.  Any learned method
that does not beat it over a horizon has learned nothing about that horizon.
"""

from __future__ import annotations

from methods.base import Method


class Static(Method):
    name = "static"
    description = "trivial baseline: x(t) = x(t0)"
    paper = "reference baseline"
    seed_dependent = False

    def predict(self, context, query_times):
        k = query_times.shape[1]
        return context.positions[:, None].expand(-1, k, -1, -1).clone()
