"""Split files: which samples (trajectory, t0, query offsets) each part of a task holds.

The split file stores every sample explicitly, so a task's samples are fixed once built.
Strategies (``split.strategy`` of a task):

  ``by_trajectory``  whole trajectories go to train / val / test (DoMiNO style; the only
                     one for protocol B, :mod:`benchmark.splits.extrapolate`);
  ``blocks``         leak-free: each trajectory is cut into contiguous train / val / test
                     blocks separated by a gap >= delta_frame, and every window lies inside
                     its block;
  ``published``      the MD17 start frames of the EGNO/GF-NODE code (vendored,
                     :mod:`benchmark.splits.published`);
  ``interleaved``    distinct random start frames over the same trajectories for all parts -
                     the public code's rule, which LEAKS (train and test windows overlap in
                     time); only for the leakage table.

The window strategies are the table :data:`benchmark.splits.window.WINDOW_STRATEGIES`.
"""

from __future__ import annotations

from benchmark.data.format import DataError, Dataset
from benchmark.io import read_json
from benchmark.specs import ExtrapolateSpec, WindowSpec, make_spec
from benchmark.splits.common import draw_offsets, draw_starts, regular_offsets, require_time_series
from benchmark.splits.extrapolate import build_extrapolate_split
from benchmark.splits.published import MD17_SPLITS, MD17_SPLITS_SHA256, md17_published_starts, published_ranges
from benchmark.splits.window import WINDOW_STRATEGIES, build_window_split

__all__ = ["MD17_SPLITS", "MD17_SPLITS_SHA256", "WINDOW_STRATEGIES", "build_extrapolate_split", "build_split",
           "build_split_from_spec", "build_window_split", "draw_offsets", "draw_starts", "load_split",
           "md17_published_starts", "published_ranges", "regular_offsets", "require_time_series"]


def build_split(dataset: Dataset, protocol: str, params: dict, strategy: str, strategy_params: dict,
                seed: int) -> dict:
    """The split file's content for a task (``protocol``, its ``params``) on ``dataset``."""
    return build_split_from_spec(dataset, make_spec(protocol, params), strategy, strategy_params, seed)


def build_split_from_spec(dataset: Dataset, spec: WindowSpec | ExtrapolateSpec, strategy: str,
                          strategy_params: dict, seed: int) -> dict:
    """The split file's content for a task's checked spec on ``dataset``."""
    if isinstance(spec, WindowSpec):
        return build_window_split(dataset, spec, strategy, strategy_params, seed)
    return build_extrapolate_split(dataset, spec, strategy, strategy_params, seed)


def load_split(path) -> dict:
    """A split file, checked for the keys every reader needs."""
    split = read_json(path)
    for key in ("protocol", "parts", "spec", "dataset_checksum"):
        if key not in split:
            raise DataError(f"{path}: split file missing key {key!r}; rebuild it")
    return split
