"""Task specs: the parameters of a task's protocol, checked (``WindowSpec``, ``ExtrapolateSpec``).

A *sample* is (trajectory, t0, offsets): the method observes the frames
``t0-L+1 .. t0`` (``L = observed`` frames, 1 for protocol A) and must predict
the positions at frames ``t0 + offsets`` (``K`` offsets in ``1..delta_frame``).

Protocol A ("window", EGNO / GF-NODE): one observed frame (``observed=1``),
``K=8`` offsets, regular (``delta_frame*i//K``, i=1..K, as the published code)
or irregular (K distinct sorted offsets in 1..delta_frame per sample from a
seeded RNG, stored in the split file so they are fixed per sample).

Protocol B ("extrapolate", DoMiNO): one sample per trajectory; the method
observes the first ``observed`` frames (2000) with velocities and predicts every
following frame up to ``horizon`` (8000): contiguous offsets 1..horizon.  Opt-in
(``train_segments`` > 0): the training part also stores that many training
*segments*, each observing ``segment_observed`` frames and predicting the next
``segment_horizon``, at seeded random start frames inside the training
trajectories' frames (the sequence-trained methods train on them).

Split files are built by :mod:`benchmark.splits`; samples are read by
:mod:`benchmark.samples`.  Units: A, A/fs, fs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from benchmark.errors import UserError

PARTS = ("train", "val", "test")


class TaskError(UserError, ValueError):
    """Impossible task parameters for a dataset (the message names the key)."""

    label = "task error"


@dataclass
class WindowSpec:
    """Parameters of a window task (protocol A)."""

    delta_frame: int
    num_queries: int = 8
    sampling: str = "regular"  # or "irregular"
    observed: int = 1  # frames observed up to and including t0
    n_train: int = 500
    n_val: int = 2000
    n_test: int = 2000

    @classmethod
    def from_params(cls, params: dict) -> "WindowSpec":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known - {"split", "split_params"})
        if unknown:
            raise TaskError(f"unknown window task parameter(s) {unknown}; valid: {sorted(known)}")
        spec = cls(**{k: v for k, v in params.items() if k in known})
        spec.check()
        return spec

    def check(self) -> None:
        if self.delta_frame < 1:
            raise TaskError(f"delta_frame must be >= 1, got {self.delta_frame}")
        if not 1 <= self.num_queries <= self.delta_frame:
            raise TaskError(f"num_queries must be in 1..delta_frame={self.delta_frame}, got {self.num_queries}")
        if self.sampling not in ("regular", "irregular"):
            raise TaskError(f"sampling must be 'regular' or 'irregular', got {self.sampling!r}")
        if self.observed < 1:
            raise TaskError(f"observed must be >= 1, got {self.observed}")
        for key in ("n_train", "n_val", "n_test"):
            if getattr(self, key) < 1:
                raise TaskError(f"{key} must be >= 1, got {getattr(self, key)}")


DOMINO_WINDOWS = [[80, 100], [180, 200], [980, 1000], [1980, 2000], [2980, 3000], [4980, 5000], [7980, 8000]]


@dataclass
class ExtrapolateSpec:
    """Parameters of an extrapolation task (protocol B).

    ``windows``: terminal windows [a, b] of frames after the last observed one
    (offsets a+1..b) reported as separate MSEs (DoMiNO Table 3);
    ``n_full_domain``: size of the seeded random sample of future frames for
    the "full domain" MSE; ``failure_threshold``: per-frame MSE (A^2) above
    which a prediction counts as failed (time-to-failure); ``curve_bin``:
    frames per bin of the reported MSE-over-horizon curve.
    """

    observed: int = 2000
    horizon: int = 8000
    n_full_domain: int = 1000
    windows: list | None = None  # default: DoMiNO's windows that fit in the horizon
    failure_threshold: float = 10.0
    curve_bin: int = 100
    # opt-in training segments (0: the training part is one sample per trajectory, as the split
    # files built before them); left out of the split file's spec while 0 (see ``as_dict``)
    train_segments: int = 0
    segment_observed: int | None = None  # default: observed
    segment_horizon: int | None = None  # default: horizon

    SEGMENT_KEYS = ("train_segments", "segment_observed", "segment_horizon")

    @classmethod
    def from_params(cls, params: dict) -> "ExtrapolateSpec":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise TaskError(f"unknown extrapolate task parameter(s) {unknown}; valid: {sorted(known)}")
        spec = cls(**params)
        spec.check()
        return spec

    def __post_init__(self):
        if self.windows is None and isinstance(self.horizon, int):
            self.windows = [list(w) for w in DOMINO_WINDOWS if w[1] <= self.horizon]

    def check(self) -> None:
        for key in ("observed", "horizon", "n_full_domain", "curve_bin"):
            if not (isinstance(getattr(self, key), int) and getattr(self, key) >= 1):
                raise TaskError(f"{key} must be a positive integer, got {getattr(self, key)!r}")
        if self.failure_threshold <= 0:
            raise TaskError(f"failure_threshold must be > 0, got {self.failure_threshold}")
        for w in self.windows:
            if not (len(w) == 2 and 0 <= w[0] < w[1] <= self.horizon):
                raise TaskError(f"windows: {w} must be [a, b] with 0 <= a < b <= horizon={self.horizon}")
        if not (isinstance(self.train_segments, int) and self.train_segments >= 0):
            raise TaskError(f"train_segments must be an integer >= 0 (0: one training sample per trajectory), "
                            f"got {self.train_segments!r}")
        for key in ("segment_observed", "segment_horizon"):
            value = getattr(self, key)
            if value is not None and not (isinstance(value, int) and value >= 1):
                raise TaskError(f"{key} must be a positive integer (or left out), got {value!r}")
            if value is not None and not self.train_segments:
                raise TaskError(f"{key} needs train_segments > 0 (it sizes the training segments)")
        if self.train_segments and self.seg_observed + self.seg_horizon > self.observed + self.horizon:
            raise TaskError(f"segment_observed + segment_horizon = {self.seg_observed + self.seg_horizon} frames "
                            f"exceed observed + horizon = {self.observed + self.horizon}, the frames a training "
                            f"trajectory gives; lower segment_observed or segment_horizon")

    @property
    def seg_observed(self) -> int:
        """Frames observed by a training segment."""
        return self.segment_observed or self.observed

    @property
    def seg_horizon(self) -> int:
        """Frames predicted by a training segment."""
        return self.segment_horizon or self.horizon

    def as_dict(self) -> dict:
        """The spec for the split file: the segment keys only when segments are on, so that split
        files of tasks without them stay byte-identical to those built before the keys existed."""
        out = dict(self.__dict__)
        if not self.train_segments:
            for key in self.SEGMENT_KEYS:
                out.pop(key)
        return out

    @property
    def delta_frame(self) -> int:  # the longest offset, as for windows
        return self.horizon


def default_rungs(longest: int) -> tuple[int, ...]:
    """The predictability-horizon ladder of a task without a ``ladder`` key: 1, 3, 10, 30, 100, ...
    (two rungs per decade) up to ``longest`` frames, and ``longest`` itself, e.g. 40 -> (1, 3, 10, 30, 40),
    3000 -> (1, 3, 10, 30, 100, 300, 1000, 3000)."""
    rungs, decade = [], 1
    while decade <= longest:
        rungs += [r for r in (decade, 3 * decade) if r <= longest]
        decade *= 10
    return tuple(sorted(set(rungs) | {int(longest)}))


def check_rungs(rungs, longest: int, what: str) -> tuple[int, ...]:
    """A ladder's rungs: positive, strictly increasing frame offsets up to ``longest`` (``what``
    names it: delta_frame or horizon); raises :class:`TaskError` otherwise."""
    rungs = tuple(int(r) for r in rungs)
    if not rungs or any(r < 1 for r in rungs) or any(b <= a for a, b in zip(rungs, rungs[1:])):
        raise TaskError(f"rungs {list(rungs)} must be strictly increasing frame offsets >= 1")
    if rungs[-1] > longest:
        raise TaskError(f"rung {rungs[-1]} exceeds the task's longest horizon {what}={longest}; a model is "
                        f"trained and evaluated only up to it")
    return rungs


SPECS = {"window": WindowSpec, "extrapolate": ExtrapolateSpec}


def make_spec(protocol: str, params: dict):
    """The checked spec of ``protocol`` from a task's ``params`` (raises :class:`TaskError`)."""
    if protocol not in SPECS:
        raise TaskError(f"unknown protocol {protocol!r}; valid: {', '.join(SPECS)}")
    return SPECS[protocol].from_params(params)
