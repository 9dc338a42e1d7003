"""Helpers every split strategy uses: whole-trajectory parts, seeded draws of start frames and
query offsets, and the check that a dataset is a time series."""

from __future__ import annotations

import numpy as np

from benchmark.data.format import Dataset
from benchmark.specs import PARTS, TaskError, WindowSpec


def frames_per_trajectory(dataset: Dataset) -> list[int]:
    return [t["n_frames"] for t in dataset.manifest["trajectories"]]


def require_time_series(dataset: Dataset, protocol: str) -> None:
    """Refuse trajectory tasks on datasets whose manifest says they are not time series (rMD17)."""
    if dataset.info.get("time_series", True) is False:
        reason = dataset.info.get("not_time_series_reason", "its frames are not consecutive in time")
        raise TaskError(f"dataset {dataset.name} ({dataset.info.get('kind', '?')}) is not a time series: "
                        f"{reason}. Protocol {protocol!r} needs trajectories, so it cannot use this dataset; "
                        f"remove it from the task (use MD17 for windows)")


def trajectory_parts(n: int, params: dict, path) -> dict[str, list[int]]:
    """Whole trajectories per part: explicit lists, or the last ones for val/test by fraction."""
    assign = {p: params.get(f"{p}_trajectories") for p in PARTS}
    if any(v is None for v in assign.values()):
        n_test = max(1, round(n * params.get("test_fraction", 0.25)))
        n_val = max(1, round(n * params.get("val_fraction", 0.25)))
        if n - n_test - n_val < 1:
            raise TaskError(f"split by_trajectory needs >= 3 trajectories, {path} has {n}")
        assign = {"train": list(range(n - n_val - n_test)),
                  "val": list(range(n - n_val - n_test, n - n_test)),
                  "test": list(range(n - n_test, n))}
    used = sum(assign.values(), [])
    if len(set(used)) != len(used) or not all(0 <= i < n for i in used):
        raise TaskError(f"split by_trajectory: trajectory lists {assign} overlap or leave 0..{n - 1}")
    return assign


def regular_offsets(delta_frame: int, k: int) -> np.ndarray:
    return np.array([delta_frame * i // k for i in range(1, k + 1)], dtype=np.int64)


def draw_offsets(spec: WindowSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """[n, K] query offsets: the regular ones for every sample, or K distinct sorted ones each."""
    if spec.sampling == "regular":
        return np.tile(regular_offsets(spec.delta_frame, spec.num_queries), (n, 1))
    out = np.empty((n, spec.num_queries), dtype=np.int64)
    for s in range(n):
        out[s] = np.sort(rng.choice(spec.delta_frame, spec.num_queries, replace=False) + 1)
    return out


def draw_starts(candidates: list[tuple[int, int, int]], n: int, rng: np.random.Generator,
                key: str) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` distinct (trajectory, t0) from ranges [(traj, lo, hi)] (hi inclusive)."""
    sizes = np.array([max(0, hi - lo + 1) for _, lo, hi in candidates], dtype=np.int64)
    total = int(sizes.sum())
    if total < n:
        raise TaskError(f"{key}={n} windows requested but only {total} start frames fit "
                        f"(trajectories too short for delta_frame/observed, or too few frames); "
                        f"lower {key} or delta_frame, or make longer trajectories")
    flat = np.sort(rng.choice(total, size=n, replace=False))
    bounds = np.cumsum(sizes)
    which = np.searchsorted(bounds, flat, side="right")
    before = np.concatenate([[0], bounds[:-1]])
    traj = np.array([candidates[w][0] for w in which], dtype=np.int64)
    t0 = np.array([candidates[w][1] for w in which], dtype=np.int64) + flat - before[which]
    return traj, t0
