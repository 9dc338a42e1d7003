"""Tasks: turn a dataset + split into samples (observed context + query times).

A *sample* is (trajectory, t0, offsets): the method observes the frames
``t0-L+1 .. t0`` (``L = observed`` frames, 1 for protocol A) and must predict
the positions at frames ``t0 + offsets`` (``K`` offsets in ``1..delta_frame``).
Targets stay inside :class:`SampleSet` and reach only the evaluator and the
trainer's loss; :meth:`Method.predict` receives a :class:`Context` and the
query times, never the targets.

Protocol A ("window", EGNO / GF-NODE): one observed frame (``observed=1``),
``K=8`` offsets, regular (``delta_frame*i//K``, i=1..K, as the published code)
or irregular (K distinct sorted offsets in 1..delta_frame per sample from a
seeded RNG, stored in the split file so they are fixed per sample).

Protocol B ("extrapolate", DoMiNO): one sample per trajectory; the method
observes the first ``observed`` frames (2000) with velocities and predicts every
following frame up to ``horizon`` (8000): contiguous offsets 1..horizon.

Split strategies (the split file stores every sample explicitly):
  ``by_trajectory``  whole trajectories go to train / val / test (DoMiNO style);
  ``blocks``         leak-free: each trajectory is cut into contiguous train /
                     val / test blocks separated by a gap >= delta_frame, and
                     every window lies inside its block;
  ``published``      the MD17 start frames of the EGNO/GF-NODE code (vendored);
  ``interleaved``    distinct random start frames over the same trajectories for
                     all parts - the public code's rule, which LEAKS (train and
                     test windows overlap in time); only for the leakage table.

Velocities given to methods (task key ``velocities``): ``stored`` (default) -
the stored velocities when the dataset has them, else the finite difference;
``difference`` - always the finite difference of stored frames, forward
``(x[t+1]-x[t])/dt`` in protocol A (the published MD17/ALA2 convention, which
peeks one frame ahead; see the dataset cards) and backward/central in protocol
B.  On coarse frames the two differ by far: ALA2-sim's instantaneous velocity
times its 1 ps frame is a ~7 A ballistic step, its one-frame displacement ~1 A.
Units: A, A/fs, fs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Iterator

import numpy as np
import torch

from benchmark.data.format import DataError, Dataset
from benchmark.graph import molecular_graph
from benchmark.io import read_json

PARTS = ("train", "val", "test")


class TaskError(ValueError):
    """Impossible task parameters for a dataset (the message names the key)."""


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

    @property
    def delta_frame(self) -> int:  # the longest offset, as for windows
        return self.horizon


SPECS = {"window": WindowSpec, "extrapolate": ExtrapolateSpec}


def make_spec(protocol: str, params: dict):
    if protocol not in SPECS:
        raise TaskError(f"unknown protocol {protocol!r}; valid: {', '.join(SPECS)}")
    return SPECS[protocol].from_params(params)


def build_split(dataset: Dataset, protocol: str, params: dict, strategy: str, strategy_params: dict,
                seed: int) -> dict:
    spec = make_spec(protocol, params)
    if protocol == "window":
        return build_window_split(dataset, spec, strategy, strategy_params, seed)
    return build_extrapolate_split(dataset, spec, strategy, strategy_params, seed)


def _trajectory_parts(n: int, params: dict, path) -> dict[str, list[int]]:
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


def build_extrapolate_split(dataset: Dataset, spec: ExtrapolateSpec, strategy: str, params: dict,
                            seed: int) -> dict:
    """Protocol B: every trajectory of a part is one sample (observe, then predict the rest).

    Also records the min-max scale for DoMiNO's [-1, 1]-normalised MSE: the
    global range of the TRAINING positions (observed and future frames), or the
    box edge for periodic systems (the range of the wrapped coordinates the
    authors normalised; unwrapped ranges grow with diffusion).
    """
    from benchmark.splits import require_time_series

    require_time_series(dataset, "extrapolate")  # rMD17: not a time series
    if strategy != "by_trajectory":
        raise TaskError(f"protocol extrapolate uses whole trajectories: split strategy must be "
                        f"by_trajectory, got {strategy!r}")
    frames = _frames(dataset)
    need = spec.observed + spec.horizon
    short = [i for i, f in enumerate(frames) if f < need]
    if short:
        raise TaskError(f"observed + horizon = {need} frames, but trajectories {short} of {dataset.path} "
                        f"have fewer ({min(frames)}); lower horizon/observed or make longer trajectories")
    assign = _trajectory_parts(len(frames), params, dataset.path)
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
    return {"protocol": "extrapolate", "dataset": dataset.name, "dataset_checksum": dataset.checksum,
            "strategy": strategy, "strategy_params": params, "seed": seed, "spec": spec.__dict__,
            "normalisation": {"min": lo, "max": hi, "source": source},
            "full_domain_offsets": full_domain.tolist(),
            "parts": {p: {"traj": assign[p], "t0": [spec.observed - 1] * len(assign[p]),
                          "offsets": [offsets] * len(assign[p])} for p in PARTS}}


def regular_offsets(delta_frame: int, k: int) -> np.ndarray:
    return np.array([delta_frame * i // k for i in range(1, k + 1)], dtype=np.int64)


def draw_offsets(spec: WindowSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    if spec.sampling == "regular":
        return np.tile(regular_offsets(spec.delta_frame, spec.num_queries), (n, 1))
    out = np.empty((n, spec.num_queries), dtype=np.int64)
    for s in range(n):
        out[s] = np.sort(rng.choice(spec.delta_frame, spec.num_queries, replace=False) + 1)
    return out


def _draw_starts(candidates: list[tuple[int, int, int]], n: int, rng: np.random.Generator,
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


def _frames(dataset: Dataset) -> list[int]:
    return [t["n_frames"] for t in dataset.manifest["trajectories"]]


def build_window_split(dataset: Dataset, spec: WindowSpec, strategy: str, params: dict,
                       seed: int) -> dict:
    """Draw the samples of every part; returns the split file's content."""
    from benchmark.splits import published_ranges, require_time_series

    require_time_series(dataset, "window")  # rMD17: not a time series, no windows
    atoms = {t["n_atoms"] for t in dataset.manifest["trajectories"]}
    if len(atoms) != 1:
        raise DataError(f"{dataset.path}: trajectories have different atom counts {sorted(atoms)}; "
                        f"a window task needs one system per dataset")
    rng = np.random.default_rng(seed)
    frames = _frames(dataset)
    lo_pad = spec.observed - 1  # frames needed before t0
    need = {"train": spec.n_train, "val": spec.n_val, "test": spec.n_test}
    ranges: dict[str, list[tuple[int, int, int]]] = {}
    if strategy == "by_trajectory":
        assign = _trajectory_parts(len(frames), params, dataset.path)
        for p in PARTS:
            ranges[p] = [(i, lo_pad, frames[i] - 1 - spec.delta_frame) for i in assign[p]]
    elif strategy == "blocks":
        fractions = [params.get("train_fraction", 0.6), params.get("val_fraction", 0.2),
                     params.get("test_fraction", 0.2)]
        gap = max(params.get("gap", spec.delta_frame), spec.delta_frame)
        ranges = {p: [] for p in PARTS}
        for i, f in enumerate(frames):
            usable = f - 2 * gap
            edges = np.concatenate([[0], np.cumsum(fractions) / sum(fractions) * usable]).astype(int)
            for j, p in enumerate(PARTS):
                start = edges[j] + j * gap
                end = edges[j + 1] + j * gap  # exclusive end of this block
                ranges[p].append((i, start + lo_pad, end - 1 - spec.delta_frame))
    elif strategy == "published":  # MD17 start frames of the EGNO/GF-NODE code, one-frame ranges
        ranges = published_ranges(dataset, spec, params)
    elif strategy == "interleaved":  # the public code's own split rule: LEAKS (for the leakage table)
        every = [(i, lo_pad, f - 1 - spec.delta_frame) for i, f in enumerate(frames)]
    else:
        raise TaskError(f"unknown split strategy {strategy!r}; valid: by_trajectory, blocks, published, "
                        f"interleaved")
    split = {"protocol": "window", "dataset": dataset.name, "dataset_checksum": dataset.checksum,
             "strategy": strategy, "strategy_params": params, "seed": seed,
             "spec": spec.__dict__, "parts": {}}
    if strategy == "interleaved":
        # distinct start frames drawn over the same trajectories, then dealt out in random
        # order: train and test windows interleave and overlap in time (the known flaw).
        traj, t0 = _draw_starts(every, sum(need.values()), rng, "n_train + n_val + n_test")
        order = rng.permutation(len(t0))
        bounds = np.cumsum([0] + [need[p] for p in PARTS])
        for j, p in enumerate(PARTS):
            pick = np.sort(order[bounds[j]:bounds[j + 1]])
            split["parts"][p] = {"traj": traj[pick].tolist(), "t0": t0[pick].tolist(),
                                 "offsets": draw_offsets(spec, len(pick), rng).tolist()}
        return split
    for p in PARTS:
        traj, t0 = _draw_starts(ranges[p], need[p], rng, f"n_{p}")
        split["parts"][p] = {"traj": traj.tolist(), "t0": t0.tolist(),
                             "offsets": draw_offsets(spec, len(t0), rng).tolist()}
    return split


@dataclass
class Context:
    """What a method observes: never the future.

    observed_positions   [B, L, N, 3] A, frames t0-L+1..t0 (last = t0)
    observed_velocities  [B, L, N, 3] A/fs
    observed_times       [L] fs relative to t0 (<= 0, last = 0)
    atomic_numbers       [N] long;  masses [N] Dalton
    edges                [2, E] long, static molecular graph, or None (liquids)
    box                  [3] A orthorhombic box, or None
    dt_fs                time between stored frames
    """

    observed_positions: torch.Tensor
    observed_velocities: torch.Tensor
    observed_times: torch.Tensor
    atomic_numbers: torch.Tensor
    masses: torch.Tensor
    edges: torch.Tensor | None
    box: torch.Tensor | None
    dt_fs: float

    @property
    def positions(self) -> torch.Tensor:
        return self.observed_positions[:, -1]

    @property
    def velocities(self) -> torch.Tensor:
        return self.observed_velocities[:, -1]

    @property
    def batch_size(self) -> int:
        return self.observed_positions.shape[0]

    def to(self, device) -> "Context":
        def move(v):
            return v.to(device) if isinstance(v, torch.Tensor) else v
        return replace(self, **{f.name: move(getattr(self, f.name)) for f in fields(self)})


VELOCITIES = ("stored", "difference")


class SampleSet:
    """The samples of one split part, gathered from memory-mapped trajectories.

    Only the frames the windows touch are read (``observed`` frames before t0,
    t0+1 for a finite-difference velocity, and the K targets), then held as
    tensors for fast batching.
    """

    def __init__(self, dataset: Dataset, part: dict, spec, graph: dict | None = None, atoms: str = "all",
                 velocities: str = "stored"):
        if velocities not in VELOCITIES:
            raise TaskError(f"task key 'velocities' must be one of {', '.join(VELOCITIES)}, got {velocities!r}")
        self.dataset, self.spec, self.graph, self.atoms = dataset, spec, graph, atoms
        self.velocity_source = velocities
        self.traj_idx = np.asarray(part["traj"], dtype=np.int64)
        self.t0 = np.asarray(part["t0"], dtype=np.int64)
        self.offsets = np.asarray(part["offsets"], dtype=np.int64).reshape(len(self.t0), -1)
        trajs = {i: dataset.trajectory(i) for i in sorted(set(self.traj_idx.tolist()))}
        first = trajs[min(trajs)] if trajs else dataset.trajectory(0)
        self.dt_fs = first.dt_fs
        # the atoms the task uses (``atoms: heavy`` keeps Z > 1, as GF-NODE/EGNO on MD17 and ALA2);
        # indices into the stored atoms, for frame readers and metric configs
        self.atom_index = select_atoms(first.atomic_numbers, atoms)
        sel = self.atom_index
        L, K = spec.observed, self.offsets.shape[1]
        n, N = len(self.t0), len(sel)
        obs_x = np.empty((n, L, N, 3), np.float32)
        obs_v = np.empty((n, L, N, 3), np.float32)
        target = np.empty((n, K, N, 3), np.float32)
        for s, (i, t0) in enumerate(zip(self.traj_idx, self.t0)):
            traj = trajs[int(i)]
            lo = t0 - L + 1
            if lo < 0 or t0 + self.offsets[s].max() >= traj.n_frames:
                raise TaskError(f"sample {s} (trajectory {traj.name}, t0={t0}) leaves the trajectory "
                                f"of {traj.n_frames} frames; the split file is stale - rebuild it")
            obs_x[s] = traj.positions[lo:t0 + 1][:, sel]
            if traj.velocities is not None and velocities == "stored":
                obs_v[s] = traj.velocities[lo:t0 + 1][:, sel]
            elif isinstance(spec, WindowSpec):  # forward difference, the published MD17 convention
                obs_v[s] = (traj.positions[lo + 1:t0 + 2] - traj.positions[lo:t0 + 1])[:, sel] / traj.dt_fs
            else:  # protocol B must not peek: backward difference (central inside the history)
                x = np.asarray(traj.positions[max(lo - 1, 0):t0 + 1])[:, sel]
                obs_v[s] = np.gradient(x, axis=0)[-L:] / traj.dt_fs
            target[s] = traj.positions[t0 + self.offsets[s]][:, sel]
        self.observed_positions = torch.from_numpy(obs_x)
        self.observed_velocities = torch.from_numpy(obs_v)
        self._targets = torch.from_numpy(target)
        self.atomic_numbers = torch.as_tensor(np.asarray(first.atomic_numbers)[sel], dtype=torch.long)
        self.masses = torch.as_tensor(np.asarray(first.masses)[sel], dtype=torch.float32)
        self.bonds = remap_bonds(first.bonds, sel)
        self.box = None if first.box is None else torch.as_tensor(first.box, dtype=torch.float32)
        graph = graph or {}
        if graph.get("kind", "none") == "molecular":
            self.edges = molecular_graph(np.asarray(first.positions[0])[sel], bonds=self.bonds,
                                         cutoff=graph.get("cutoff", 1.6), two_hop=graph.get("two_hop", True))
        else:
            self.edges = None
        self.observed_times = torch.arange(-L + 1, 1, dtype=torch.float32) * self.dt_fs

    def __len__(self) -> int:
        return len(self.t0)

    @property
    def n_atoms(self) -> int:
        return self.observed_positions.shape[2]

    @property
    def periodic(self) -> bool:
        return self.box is not None

    def context(self, idx) -> Context:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return Context(self.observed_positions[idx], self.observed_velocities[idx], self.observed_times,
                       self.atomic_numbers, self.masses, self.edges, self.box, self.dt_fs)

    def query_times(self, idx) -> torch.Tensor:
        """[B, K] query times in fs after t0."""
        idx = np.asarray(idx, dtype=np.int64)
        return torch.from_numpy(self.offsets[idx].astype(np.float32)) * self.dt_fs

    def targets(self, idx) -> torch.Tensor:
        """[B, K, N, 3] true positions; for losses and the evaluator only."""
        return self._targets[torch.as_tensor(idx, dtype=torch.long)]

    def sequence(self, idx) -> torch.Tensor:
        """[B, L+K, N, 3] observed then future positions; for ``fit`` on TRAINING parts only.

        Needs contiguous offsets 1..K (protocol B, or a window task with K = delta_frame).
        """
        if not (self.offsets == np.arange(1, self.offsets.shape[1] + 1)).all():
            raise TaskError("sequence() needs contiguous query offsets 1..K (protocol extrapolate)")
        idx = torch.as_tensor(idx, dtype=torch.long)
        return torch.cat([self.observed_positions[idx], self._targets[idx]], dim=1)

    def windows(self, delta_frame: int, num_queries: int, n: int, seed: int, observed: int = 1,
                sampling: str = "regular") -> "SampleSet":
        """Protocol-A windows re-drawn inside the frames this part covers (for training).

        E.g. a single-frame model trained for protocol B draws windows from the
        training trajectories' observed and future frames, never from val/test.
        """
        spec = WindowSpec(delta_frame=delta_frame, num_queries=num_queries, sampling=sampling,
                          observed=observed, n_train=n, n_val=1, n_test=1)
        spec.check()
        first = self.t0 - self.spec.observed + 1
        last = self.t0 + self.offsets.max(axis=1)
        ranges = [(int(i), int(a) + observed - 1, int(b) - delta_frame)
                  for i, a, b in zip(self.traj_idx, first, last)]
        rng = np.random.default_rng(seed)
        traj, t0 = _draw_starts(ranges, n, rng, "windows(n)")
        part = {"traj": traj.tolist(), "t0": t0.tolist(), "offsets": draw_offsets(spec, n, rng).tolist()}
        return SampleSet(self.dataset, part, spec, self.graph, self.atoms, self.velocity_source)

    def batches(self, batch_size: int, shuffle: bool = False,
                generator: torch.Generator | None = None) -> Iterator[tuple[Context, torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for start in range(0, len(self), batch_size):
            idx = order[start:start + batch_size]
            yield self.context(idx), self.query_times(idx), self.targets(idx)


def load_split(path) -> dict:
    split = read_json(path)
    for key in ("protocol", "parts", "spec", "dataset_checksum"):
        if key not in split:
            raise DataError(f"{path}: split file missing key {key!r}; rebuild it")
    return split


def select_atoms(atomic_numbers, atoms: str = "all") -> np.ndarray:
    """Indices of the atoms a task uses: ``all`` or ``heavy`` (atomic number > 1)."""
    z = np.asarray(atomic_numbers)
    if atoms == "all":
        return np.arange(len(z))
    if atoms == "heavy":
        return np.flatnonzero(z > 1)
    raise TaskError(f"task key 'atoms' must be 'all' or 'heavy', got {atoms!r}")


def remap_bonds(bonds, atom_index: np.ndarray):
    """Bonds between kept atoms, renumbered to the kept atoms' order (None stays None)."""
    if bonds is None:
        return None
    bonds = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
    new = np.full(int(max(bonds.max(initial=-1), atom_index.max(initial=-1))) + 1, -1, dtype=np.int64)
    new[atom_index] = np.arange(len(atom_index))
    mapped = new[bonds]
    return mapped[(mapped >= 0).all(axis=1)]


def open_parts(dataset: Dataset, split: dict, graph: dict | None = None,
               parts=PARTS, atoms: str = "all", velocities: str = "stored") -> dict[str, SampleSet]:
    if split["dataset_checksum"] != dataset.checksum:
        raise DataError(f"split for {dataset.name} was built on dataset checksum "
                        f"{split['dataset_checksum'][:12]}, but {dataset.path} has {dataset.checksum[:12]}; "
                        f"rebuild the split (rerun its rule)")
    spec = SPECS[split["protocol"]](**split["spec"])
    return {p: SampleSet(dataset, split["parts"][p], spec, graph, atoms, velocities) for p in parts}
