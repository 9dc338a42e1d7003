"""Extrapolation splits (protocol B): whole trajectories per part, one sample each.

With ``train_segments`` > 0 the training part also stores that many training segments
(``parts.train.segments``: trajectory, t0, observed, horizon), each observing
``segment_observed`` frames and predicting the next ``segment_horizon``, at distinct start
frames drawn from the split seed over the training trajectories' first observed + horizon
frames (the frames the task uses): a segment never touches a validation or test trajectory.
"""

from __future__ import annotations

import numpy as np

from benchmark.data.format import Dataset
from benchmark.specs import PARTS, ExtrapolateSpec, TaskError
from benchmark.splits.common import draw_starts, frames_per_trajectory, require_time_series, trajectory_parts


def build_extrapolate_split(dataset: Dataset, spec: ExtrapolateSpec, strategy: str, params: dict,
                            seed: int) -> dict:
    """Protocol B: every trajectory of a part is one sample (observe, then predict the rest).

    Also records the min-max scale for DoMiNO's [-1, 1]-normalised MSE: the
    global range of the TRAINING positions (observed and future frames), or the
    box edge for periodic systems (the range of the wrapped coordinates the
    authors normalised; unwrapped ranges grow with diffusion).
    """
    require_time_series(dataset, "extrapolate")  # rMD17: not a time series
    if strategy != "by_trajectory":
        raise TaskError(f"protocol extrapolate uses whole trajectories: split strategy must be "
                        f"by_trajectory, got {strategy!r}")
    frames = frames_per_trajectory(dataset)
    need = spec.observed + spec.horizon
    short = [i for i, f in enumerate(frames) if f < need]
    if short:
        raise TaskError(f"observed + horizon = {need} frames, but trajectories {short} of {dataset.path} "
                        f"have fewer ({min(frames)}); lower horizon/observed or make longer trajectories")
    assign = trajectory_parts(len(frames), params, dataset.path)
    offsets = list(range(1, spec.horizon + 1))
    box = dataset.trajectory(assign["train"][0]).box
    if box is not None:
        # The authors min-max normalised WRAPPED coordinates, whose range is the box: the
        # faithful scale for a periodic system (unwrapped ranges grow with diffusion).
        lo, hi, source = 0.0, float(np.max(box)), "periodic box edge (range of wrapped coordinates)"
    else:
        lo, hi, source = np.inf, -np.inf, "train positions, global min/max"
        for i in assign["train"]:
            pos = dataset.trajectory(i).positions
            for start in range(0, need, 2048):
                block = np.asarray(pos[start:min(start + 2048, need)])
                lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
    rng = np.random.default_rng(seed)
    full_domain = np.sort(rng.choice(spec.horizon, size=min(spec.n_full_domain, spec.horizon),
                                     replace=False) + 1)
    parts = {p: {"traj": assign[p], "t0": [spec.observed - 1] * len(assign[p]),
                 "offsets": [offsets] * len(assign[p])} for p in PARTS}
    if spec.train_segments:
        # drawn after the full-domain frames, from the same generator: those stay as without segments
        parts["train"]["segments"] = draw_segments(spec, assign["train"], need, rng)
    return {"protocol": "extrapolate", "dataset": dataset.name, "dataset_checksum": dataset.checksum,
            "strategy": strategy, "strategy_params": params, "seed": seed, "spec": spec.as_dict(),
            "normalisation": {"min": lo, "max": hi, "source": source},
            "full_domain_offsets": full_domain.tolist(), "parts": parts}


def draw_segments(spec: ExtrapolateSpec, train_trajectories: list[int], frames: int,
                  rng: np.random.Generator) -> dict:
    """``spec.train_segments`` distinct (trajectory, t0) training segments, sorted, inside frames
    0..frames-1 of the training trajectories: frames t0-L+1..t0 observed, t0+1..t0+H predicted."""
    L, H = spec.seg_observed, spec.seg_horizon
    ranges = [(i, L - 1, frames - 1 - H) for i in train_trajectories]
    traj, t0 = draw_starts(ranges, spec.train_segments, rng, "train_segments")
    return {"traj": traj.tolist(), "t0": t0.tolist(), "observed": L, "horizon": H}
