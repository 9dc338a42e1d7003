"""Samples: the observed context and query times of a split's samples, read from a dataset.

:class:`SampleSet` gathers the samples of one split part (see :mod:`benchmark.specs` for
what a sample is and :mod:`benchmark.splits` for how they are drawn).  Targets stay inside
it and reach only the evaluator and the trainer's loss; :meth:`Method.predict` receives a
:class:`Context` and the query times, never the targets.

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
from benchmark.specs import PARTS, SPECS, ExtrapolateSpec, TaskError, WindowSpec
from benchmark.splits.common import draw_offsets, draw_starts


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
        self.segment_part = part.get("segments")  # protocol B training segments (opt-in), see segments()
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
        traj, t0 = draw_starts(ranges, n, rng, "windows(n)")
        part = {"traj": traj.tolist(), "t0": t0.tolist(), "offsets": draw_offsets(spec, n, rng).tolist()}
        return SampleSet(self.dataset, part, spec, self.graph, self.atoms, self.velocity_source)

    def at_offsets(self, offsets) -> "SampleSet":
        """The same windows (trajectory, t0, observed frames) queried at the fixed frame ``offsets``
        instead of their own: the predictability-horizon ladder of protocol A (a trained model answers
        any query time up to the task's delta_frame)."""
        offsets = np.asarray(offsets, dtype=np.int64)
        part = {"traj": self.traj_idx.tolist(), "t0": self.t0.tolist(),
                "offsets": np.tile(offsets, (len(self.t0), 1)).tolist()}
        return SampleSet(self.dataset, part, self.spec, self.graph, self.atoms, self.velocity_source)

    def batches(self, batch_size: int, shuffle: bool = False,
                generator: torch.Generator | None = None) -> Iterator[tuple[Context, torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for start in range(0, len(self), batch_size):
            idx = order[start:start + batch_size]
            yield self.context(idx), self.query_times(idx), self.targets(idx)

    def segments(self) -> "SegmentSet | None":
        """The protocol B training segments the split stores for this part (task key
        ``train_segments``), or None when it stores none (then the part's samples are the data)."""
        if self.segment_part is None:
            return None
        return SegmentSet(self, self.segment_part)


class SegmentSet:
    """Protocol B training segments: (trajectory, t0) pairs, each observing L frames and predicting
    the next H, gathered per batch from the training trajectories held once in memory (hundreds
    of 8000-frame segments would not fit as tensors).

    Offers what the sequence-trained methods read from a :class:`SampleSet` (``context``,
    ``query_times``, ``targets``, ``batches``, the atoms and box); ``query_times`` and
    ``targets`` take an optional ``cols`` (0-based offset slots, [K] or [B, K]) so that a
    method subsampling the horizon gathers only those frames.  ``spec`` is an
    :class:`ExtrapolateSpec` of the segment (``observed`` = L, ``horizon`` = H).
    Velocities follow the part's rule (stored, else the backward/central difference that
    never peeks past t0).
    """

    def __init__(self, base: SampleSet, segments: dict):
        self.traj_idx = np.asarray(segments["traj"], dtype=np.int64)
        self.t0 = np.asarray(segments["t0"], dtype=np.int64)
        L, H = int(segments["observed"]), int(segments["horizon"])
        self.spec = ExtrapolateSpec(observed=L, horizon=H, n_full_domain=1, windows=[])
        self.horizon = H
        self.dt_fs, self.atom_index, self.velocity_source = base.dt_fs, base.atom_index, base.velocity_source
        self.atomic_numbers, self.masses, self.bonds = base.atomic_numbers, base.masses, base.bonds
        self.box, self.edges = base.box, base.edges
        self.observed_times = torch.arange(-L + 1, 1, dtype=torch.float32) * self.dt_fs
        self._positions, self._velocities = {}, {}
        for i in sorted(set(self.traj_idx.tolist())):
            traj = base.dataset.trajectory(i)
            last = int(self.t0[self.traj_idx == i].max()) + H
            if self.t0[self.traj_idx == i].min() - L + 1 < 0 or last >= traj.n_frames:
                raise TaskError(f"a training segment of trajectory {traj.name} leaves its {traj.n_frames} frames; "
                                f"the split file is stale - rebuild it")
            self._positions[i] = np.asarray(traj.positions[:last + 1])[:, self.atom_index].astype(np.float32)
            if traj.velocities is not None and self.velocity_source == "stored":
                self._velocities[i] = np.asarray(traj.velocities[:last + 1])[:, self.atom_index].astype(np.float32)

    def __len__(self) -> int:
        return len(self.t0)

    @property
    def n_atoms(self) -> int:
        return len(self.atom_index)

    @property
    def periodic(self) -> bool:
        return self.box is not None

    def context(self, idx) -> Context:
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        L = self.spec.observed
        obs_x = np.empty((len(idx), L, self.n_atoms, 3), np.float32)
        obs_v = np.empty_like(obs_x)
        for row, s in enumerate(idx):
            i, t0 = int(self.traj_idx[s]), int(self.t0[s])
            pos, lo = self._positions[i], t0 - L + 1
            obs_x[row] = pos[lo:t0 + 1]
            if i in self._velocities:
                obs_v[row] = self._velocities[i][lo:t0 + 1]
            else:  # as SampleSet under protocol B: backward difference at t0, central inside
                obs_v[row] = np.gradient(pos[max(lo - 1, 0):t0 + 1], axis=0)[-L:] / self.dt_fs
        return Context(torch.from_numpy(obs_x), torch.from_numpy(obs_v), self.observed_times,
                       self.atomic_numbers, self.masses, self.edges, self.box, self.dt_fs)

    def _cols(self, n: int, cols) -> np.ndarray:
        """[n, K] 0-based offset slots: all H, or ``cols`` ([K] for every sample, or [n, K])."""
        if cols is None:
            return np.tile(np.arange(self.horizon), (n, 1))
        cols = np.asarray(cols, dtype=np.int64)
        return np.tile(cols, (n, 1)) if cols.ndim == 1 else cols

    def query_times(self, idx, cols=None) -> torch.Tensor:
        """[B, K] query times in fs after t0 (all H frames, or the slots ``cols``)."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        return torch.from_numpy((self._cols(len(idx), cols) + 1).astype(np.float32)) * self.dt_fs

    def targets(self, idx, cols=None) -> torch.Tensor:
        """[B, K, N, 3] true positions at the slots ``cols`` (default: all H frames after t0)."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        cols = self._cols(len(idx), cols)
        out = np.empty((len(idx), cols.shape[1], self.n_atoms, 3), np.float32)
        for row, s in enumerate(idx):
            out[row] = self._positions[int(self.traj_idx[s])][int(self.t0[s]) + 1 + cols[row]]
        return torch.from_numpy(out)

    def batches(self, batch_size: int, shuffle: bool = False,
                generator: torch.Generator | None = None) -> Iterator[tuple[Context, torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for start in range(0, len(self), batch_size):
            idx = order[start:start + batch_size].numpy()
            yield self.context(idx), self.query_times(idx), self.targets(idx)


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
    """The :class:`SampleSet` of each of ``parts`` of a split file built on ``dataset``."""
    if split["dataset_checksum"] != dataset.checksum:
        raise DataError(f"split for {dataset.name} was built on dataset checksum "
                        f"{split['dataset_checksum'][:12]}, but {dataset.path} has {dataset.checksum[:12]}; "
                        f"rebuild the split (rerun its rule)")
    spec = SPECS[split["protocol"]](**split["spec"])
    return {p: SampleSet(dataset, split["parts"][p], spec, graph, atoms, velocities) for p in parts}
