"""Window splits (protocol A): a table of strategies, each drawing the samples of every part.

Every strategy is a function ``(dataset, spec, params, rng) -> parts``, ``parts`` being
``{part: {"traj": [...], "t0": [...], "offsets": [[...], ...]}}``; add one to
:data:`WINDOW_STRATEGIES` (and to the ``split.strategy`` enum of the suite schema).
"""

from __future__ import annotations

import numpy as np

from benchmark.data.format import DataError, Dataset
from benchmark.specs import PARTS, TaskError, WindowSpec
from benchmark.splits.common import (
    draw_offsets,
    draw_starts,
    frames_per_trajectory,
    require_time_series,
    trajectory_parts,
)
from benchmark.splits.published import published_ranges


def _needed(spec: WindowSpec) -> dict[str, int]:
    return {"train": spec.n_train, "val": spec.n_val, "test": spec.n_test}


def _draw_from_ranges(ranges: dict[str, list[tuple[int, int, int]]], spec: WindowSpec,
                      rng: np.random.Generator) -> dict:
    """Per part: ``n_<part>`` distinct starts from its ranges [(traj, lo, hi)], then their offsets."""
    parts = {}
    for p in PARTS:
        traj, t0 = draw_starts(ranges[p], _needed(spec)[p], rng, f"n_{p}")
        parts[p] = {"traj": traj.tolist(), "t0": t0.tolist(), "offsets": draw_offsets(spec, len(t0), rng).tolist()}
    return parts


def by_trajectory(dataset: Dataset, spec: WindowSpec, params: dict, rng: np.random.Generator) -> dict:
    """Whole trajectories go to train / val / test (DoMiNO style)."""
    frames = frames_per_trajectory(dataset)
    assign = trajectory_parts(len(frames), params, dataset.path)
    lo_pad = spec.observed - 1  # frames needed before t0
    return _draw_from_ranges({p: [(i, lo_pad, frames[i] - 1 - spec.delta_frame) for i in assign[p]]
                              for p in PARTS}, spec, rng)


def blocks(dataset: Dataset, spec: WindowSpec, params: dict, rng: np.random.Generator) -> dict:
    """Leak-free: each trajectory is cut into contiguous train / val / test blocks separated by a
    gap >= delta_frame, and every window lies inside its block."""
    fractions = [params.get("train_fraction", 0.6), params.get("val_fraction", 0.2),
                 params.get("test_fraction", 0.2)]
    gap = max(params.get("gap", spec.delta_frame), spec.delta_frame)
    lo_pad = spec.observed - 1
    ranges = {p: [] for p in PARTS}
    for i, f in enumerate(frames_per_trajectory(dataset)):
        usable = f - 2 * gap
        edges = np.concatenate([[0], np.cumsum(fractions) / sum(fractions) * usable]).astype(int)
        for j, p in enumerate(PARTS):
            start = edges[j] + j * gap
            end = edges[j + 1] + j * gap  # exclusive end of this block
            ranges[p].append((i, start + lo_pad, end - 1 - spec.delta_frame))
    return _draw_from_ranges(ranges, spec, rng)


def published(dataset: Dataset, spec: WindowSpec, params: dict, rng: np.random.Generator) -> dict:
    """The MD17 start frames of the EGNO/GF-NODE code (vendored), as one-frame ranges."""
    return _draw_from_ranges(published_ranges(dataset, spec, params), spec, rng)


def interleaved(dataset: Dataset, spec: WindowSpec, params: dict, rng: np.random.Generator) -> dict:
    """The public code's own split rule, which LEAKS (only for the leakage table): distinct start
    frames drawn over the same trajectories, then dealt out in random order, so train and test
    windows interleave and overlap in time."""
    lo_pad = spec.observed - 1
    every = [(i, lo_pad, f - 1 - spec.delta_frame) for i, f in enumerate(frames_per_trajectory(dataset))]
    need = _needed(spec)
    traj, t0 = draw_starts(every, sum(need.values()), rng, "n_train + n_val + n_test")
    order = rng.permutation(len(t0))
    bounds = np.cumsum([0] + [need[p] for p in PARTS])
    parts = {}
    for j, p in enumerate(PARTS):
        pick = np.sort(order[bounds[j]:bounds[j + 1]])
        parts[p] = {"traj": traj[pick].tolist(), "t0": t0[pick].tolist(),
                    "offsets": draw_offsets(spec, len(pick), rng).tolist()}
    return parts


WINDOW_STRATEGIES = {"by_trajectory": by_trajectory, "blocks": blocks, "published": published,
                     "interleaved": interleaved}


def build_window_split(dataset: Dataset, spec: WindowSpec, strategy: str, params: dict, seed: int) -> dict:
    """Draw the samples of every part with ``strategy``; returns the split file's content."""
    require_time_series(dataset, "window")  # rMD17: not a time series, no windows
    atoms = {t["n_atoms"] for t in dataset.manifest["trajectories"]}
    if len(atoms) != 1:
        raise DataError(f"{dataset.path}: trajectories have different atom counts {sorted(atoms)}; "
                        f"a window task needs one system per dataset")
    if strategy not in WINDOW_STRATEGIES:
        raise TaskError(f"unknown split strategy {strategy!r}; valid: {', '.join(WINDOW_STRATEGIES)}")
    parts = WINDOW_STRATEGIES[strategy](dataset, spec, params, np.random.default_rng(seed))
    return {"protocol": "window", "dataset": dataset.name, "dataset_checksum": dataset.checksum,
            "strategy": strategy, "strategy_params": params, "seed": seed, "spec": spec.__dict__, "parts": parts}
