"""Registered dataset kinds and the generic, resumable ``make_dataset`` driver.

A dataset kind is a generator of trajectories plus its default parameters.  A
suite names dataset *instances* (e.g. ``lj_tiny``) that pick a kind and
override its parameters; the instance is built under ``<work>/data/<name>``.
To add a kind: write a module with ``DEFAULTS`` and
``generate_trajectory(directory, params, index, seed, progress)`` and register
it in ``KINDS`` below.
"""

from __future__ import annotations

import importlib
import multiprocessing
import shutil
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from queue import Empty

from tqdm import tqdm

from benchmark.data.format import DataError, Dataset, open_dataset, write_manifest
from benchmark.io import stable_hash


@dataclass(frozen=True)
class DatasetKind:
    name: str
    module: str
    description: str
    periodic: bool
    graph: str  # "radius" (liquids: methods build neighbour lists) or "bonds" (molecules)

    @property
    def defaults(self) -> dict:
        return dict(importlib.import_module(self.module).DEFAULTS)

    @property
    def simulated(self) -> bool:
        """Generated here (OpenMM, tblite), not downloaded: its bytes depend on the processor."""
        return not hasattr(importlib.import_module(self.module), "make")

    def vendor_independent(self, params: dict | None = None) -> bool:
        """Whether a build with ``params`` (suite overrides of the defaults) regenerates byte for byte
        on any x86-64 processor: downloads, and generators whose module says so
        (``vendor_independent(params)``, e.g. LJ argon on OpenMM's Reference platform)."""
        module = importlib.import_module(self.module)
        if not self.simulated:
            return True
        check = getattr(module, "vendor_independent", None)
        return bool(check and check(resolve_params(self.name, params)))


KINDS: dict[str, DatasetKind] = {
    k.name: k
    for k in [
        DatasetKind("lj_argon", "benchmark.data.lj",
                    "Lennard-Jones argon, 258 atoms, 100 K, 100 fs/frame (OpenMM; DoMiNO's LJ)",
                    periodic=True, graph="radius"),
        DatasetKind("tip3p_water", "benchmark.data.tip3p_water",
                    "TIP3P water, 258 rigid molecules (774 atoms), PME, NPT-equilibrated, NVT 300 K, "
                    "100 fs/frame (OpenMM)",
                    periodic=True, graph="radius"),
        DatasetKind("tip4pew_water", "benchmark.data.tip4pew_water",
                    "TIP4P-Ew water, 258 rigid molecules (774 real atoms), PME, NPT-equilibrated, NVT 300 K, "
                    "100 fs/frame (OpenMM)",
                    periodic=True, graph="radius"),
        DatasetKind("ala2_sim", "benchmark.data.ala2_sim",
                    "alanine dipeptide, amber14 + OBC2 implicit solvent, 22 atoms, 300 K, 1 ps/frame (OpenMM)",
                    periodic=False, graph="bonds"),
        DatasetKind("md17_xtb", "benchmark.data.md17_xtb",
                    "an MD17 molecule (param molecule) from SMILES, GFN2-xTB MD (Bussi thermostat, no rotation), "
                    "500 K, 0.5 fs/frame (tblite)",
                    periodic=False, graph="bonds"),
        DatasetKind("md17", "benchmark.data.md17",
                    "MD17 ab-initio MD, one of 8 molecules, heavy atoms, 0.5 fs/frame (download; EGNO/GF-NODE)",
                    periodic=False, graph="bonds"),
        DatasetKind("rmd17", "benchmark.data.rmd17",
                    "revised MD17, 100k structures per molecule; NOT a time series, no window tasks (download)",
                    periodic=False, graph="bonds"),
        DatasetKind("ala2", "benchmark.data.ala2",
                    "alanine dipeptide, mdshare 3 x 250 ns, 22 atoms, 1 ps/frame, one trajectory per run (download)",
                    periodic=False, graph="bonds"),
    ]
}


def get_kind(name: str) -> DatasetKind:
    if name not in KINDS:
        raise KeyError(f"unknown dataset kind {name!r}; valid kinds: {', '.join(sorted(KINDS))}")
    return KINDS[name]


def resolve_params(kind: str, params: dict | None) -> dict:
    """Defaults of ``kind`` overridden by ``params``; unknown keys are an error, and so are values the
    generator cannot simulate (its ``check_params``, a ValueError naming the key), before any simulation."""
    defaults = get_kind(kind).defaults
    params = dict(params or {})
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise KeyError(f"dataset kind {kind!r} has no parameter(s) {unknown}; "
                       f"valid: {', '.join(sorted(defaults))}")
    resolved = {**defaults, **params}
    check = getattr(importlib.import_module(get_kind(kind).module), "check_params", None)
    if check is not None:
        check(resolved)
    return resolved


def trajectory_seed(dataset_seed: int, index: int) -> int:
    """Seed of trajectory ``index``: independent of how many trajectories exist."""
    return int(stable_hash({"dataset_seed": dataset_seed, "trajectory": index}, length=8), 16)


def _simulate(module: str, out: Path, params: dict, index: int, seed: int, progress) -> None:
    """Trajectory ``index`` into ``out/.partial_traj_NNN``, renamed ``traj_NNN`` when complete."""
    generator = importlib.import_module(module)
    final = out / f"traj_{index:03d}"
    partial = out / f".partial_traj_{index:03d}"
    if not getattr(generator, "RESUMABLE", False):
        shutil.rmtree(partial, ignore_errors=True)
    generator.generate_trajectory(partial, params, index, seed, progress)
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)


class _QueueProgress:
    """A worker's progress bar: frame counts go to the parent process, which owns the tqdm bar."""

    queue = None  # set in each worker by _init_worker

    def update(self, n: int = 1) -> None:
        self.queue.put(n)


def _init_worker(queue) -> None:
    _QueueProgress.queue = queue


def _simulate_in_worker(module, out, params, index, seed) -> None:
    _simulate(module, out, params, index, seed, _QueueProgress())


def _simulate_parallel(module: str, out: Path, params: dict, todo: list[int], seed: int, jobs: int, bar) -> None:
    """One process per trajectory, ``jobs`` at a time. Each trajectory has its own seed and its own
    single-threaded engine, so the files are the same bytes as a sequential build's."""
    ctx = multiprocessing.get_context("spawn")  # no forked OpenMM/torch state in the workers
    queue = ctx.Queue()
    with ProcessPoolExecutor(min(jobs, len(todo)), mp_context=ctx, initializer=_init_worker,
                             initargs=(queue,)) as pool:
        futures = [pool.submit(_simulate_in_worker, module, out, params, i, trajectory_seed(seed, i))
                   for i in todo]
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
                _drain(queue, bar)
                for f in done:
                    f.result()  # a worker's error, raised here
            _drain(queue, bar)
        except BaseException:  # an error or Ctrl-C: finished trajectories and checkpoints stay
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _drain(queue, bar) -> None:
    while True:
        try:
            bar.update(queue.get_nowait())
        except Empty:
            return


def make_dataset(out: str | Path, name: str, kind: str, params: dict | None, seed: int,
                 progress: bool = True, jobs: int = 1) -> Dataset:
    """Generate (or finish generating) a dataset; finished trajectories are kept.

    Each trajectory is written to a temporary directory and renamed when
    complete, so an interrupted run resumes at the first missing trajectory.
    A generator module with ``RESUMABLE = True`` keeps checkpoints inside that
    directory and continues an interrupted trajectory from its last checkpoint.
    ``jobs`` > 1 simulates that many trajectories at once, each in its own process
    (the same bytes as ``jobs=1``: trajectories are independent).
    """
    out = Path(out)
    spec = get_kind(kind)
    params = resolve_params(kind, params)
    params.setdefault("structure_seed", seed)
    generator = importlib.import_module(spec.module)
    out.mkdir(parents=True, exist_ok=True)
    if hasattr(generator, "make"):  # downloaded kinds: fetch, verify and convert every trajectory
        extra = generator.make(out, params, seed, progress)
        info = {"kind": kind, "description": spec.description, "periodic": spec.periodic,
                "graph": spec.graph, "seed": seed, **extra}
        write_manifest(out, name=name, kind=kind, params=params, info=info)
        return open_dataset(out)
    n_traj = params["n_trajectories"]
    todo = [i for i in range(n_traj) if not (out / f"traj_{i:03d}" / "meta.json").exists()]
    frames = params.get("n_frames", 1)
    bar = tqdm(total=len(todo) * frames, desc=f"{name}: {len(todo)}/{n_traj} trajectories to simulate",
               unit="frame", disable=not progress, mininterval=2.0)
    if jobs > 1 and len(todo) > 1:
        _simulate_parallel(spec.module, out, params, todo, seed, jobs, bar)
    else:
        for i in todo:
            _simulate(spec.module, out, params, i, trajectory_seed(seed, i), bar)
    bar.close()
    info = {"kind": kind, "description": spec.description, "periodic": spec.periodic,
            "graph": spec.graph, "seed": seed}
    write_manifest(out, name=name, kind=kind, params=params, info=info)
    return open_dataset(out)


def import_build(out: str | Path, source: str | Path, name: str, kind: str, params: dict | None,
                 seed: int) -> Dataset:
    """Copy a built dataset directory (``manifest.json`` + trajectories, e.g. another machine's
    ``work/data/<name>``) to ``out`` after checking it is this suite entry's dataset.

    The simulated datasets are bit-identical only on the same kind of processor, so adding seeds
    to a leaderboard made elsewhere needs that machine's build, not a regenerated one. Checked:
    every file's sha256 and the checksum against the manifest (``open_dataset(verify=True)``), and
    its name, kind, params and seed against the entry (what ``make_dataset`` would write).
    """
    source, out = Path(source), Path(out)
    try:
        ds = open_dataset(source, verify=True)
    except DataError as exc:
        raise DataError(f"{source}: not a complete dataset build ({exc})") from None
    m = ds.manifest
    expected = resolve_params(kind, params)
    expected.setdefault("structure_seed", seed)
    found = {"name": m.get("name"), "kind": m.get("kind"), "seed": m.get("info", {}).get("seed")}
    wanted = {"name": name, "kind": kind, "seed": seed}
    problems = [f"{k}: {found[k]!r}, the suite wants {wanted[k]!r}" for k in wanted if found[k] != wanted[k]]
    got = m.get("params") or {}
    differ = sorted(k for k in set(expected) | set(got) if expected.get(k) != got.get(k))
    if differ:
        problems.append("params (" + ", ".join(f"{k}: {got.get(k)!r}, the suite wants {expected.get(k)!r}"
                                               for k in differ) + ")")
    if problems:
        raise DataError(f"{source}: another dataset than the suite's {name!r}: " + "; ".join(problems))
    if (out / "manifest.json").exists():
        have = open_dataset(out)
        if have.checksum == m["checksum"]:
            return have
        raise DataError(f"{out} already holds build {have.checksum[:12]} of {name}; delete it to import "
                        f"{m['checksum'][:12]}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".import_{out.name}"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial, ignore=shutil.ignore_patterns(".*"))
    shutil.rmtree(out, ignore_errors=True)  # an unfinished generation (no manifest) is replaced
    partial.rename(out)
    return open_dataset(out)
