"""The one on-disk format for every trajectory of every dataset.

A dataset is a directory::

    <dataset>/
      manifest.json              # written last: its presence means "complete"
      <traj>/positions.npy       # float32 [frames, atoms, 3], Angstrom, UNWRAPPED
      <traj>/velocities.npy      # float32 [frames, atoms, 3], Angstrom/fs (optional)
      <traj>/meta.json           # atoms, time step, box, bonds, provenance

``.npy`` files are memory-mapped on load (``np.load(mmap_mode="r")``), so a
window of a large water trajectory never reads the whole file.

``meta.json`` keys:
  format_version, n_frames, n_atoms,
  dt_fs            time between two stored frames, in fs,
  atomic_numbers   [atoms] ints,
  masses           [atoms] floats, Dalton,
  box              [a, b, c] orthorhombic edge lengths in Angstrom, or null,
  bonds            [[i, j], ...] when known, or null,
  units            {"positions": "angstrom", "velocities": "angstrom/fs", "time": "fs"},
  provenance       free-form dict (engine, seed, source URL, ...).

``manifest.json`` lists every file with its sha256 and size, the generator's
name and parameters, and ``checksum``: one sha256 over all file hashes, used
as the dataset's provenance stamp in every result row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.errors import UserError
from benchmark.io import atomic_path, read_json, sha256_file, stable_hash, write_json

FORMAT_VERSION = 1
UNITS = {"positions": "angstrom", "velocities": "angstrom/fs", "time": "fs", "masses": "dalton"}
REQUIRED_META = ("format_version", "n_frames", "n_atoms", "dt_fs", "atomic_numbers", "masses")


class DataError(UserError, ValueError):
    """A dataset file is missing, malformed or inconsistent (message names the file)."""

    label = "data error"


@dataclass
class Trajectory:
    """One trajectory; ``positions``/``velocities`` are read-only memory maps."""

    path: Path
    positions: np.ndarray
    velocities: np.ndarray | None
    atomic_numbers: np.ndarray
    masses: np.ndarray
    dt_fs: float
    box: np.ndarray | None
    bonds: np.ndarray | None
    provenance: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def n_frames(self) -> int:
        return int(self.positions.shape[0])

    @property
    def n_atoms(self) -> int:
        return int(self.positions.shape[1])


def write_trajectory(directory: str | Path, positions: np.ndarray, *, dt_fs: float,
                     atomic_numbers, masses, velocities: np.ndarray | None = None,
                     box=None, bonds=None, provenance: dict | None = None) -> Path:
    """Write one trajectory directory (each file atomically; ``meta.json`` last)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    positions = np.ascontiguousarray(positions, dtype=np.float32)
    if positions.ndim != 3 or positions.shape[2] != 3:
        raise DataError(f"{directory}: positions must be [frames, atoms, 3], got {positions.shape}")
    n_frames, n_atoms, _ = positions.shape
    atomic_numbers = np.asarray(atomic_numbers, dtype=np.int64)
    masses = np.asarray(masses, dtype=np.float64)
    if atomic_numbers.shape != (n_atoms,) or masses.shape != (n_atoms,):
        raise DataError(f"{directory}: atomic_numbers/masses must have {n_atoms} entries")
    _save_npy(directory / "positions.npy", positions)
    if velocities is not None:
        velocities = np.ascontiguousarray(velocities, dtype=np.float32)
        if velocities.shape != positions.shape:
            raise DataError(f"{directory}: velocities shape {velocities.shape} != positions {positions.shape}")
        _save_npy(directory / "velocities.npy", velocities)
    meta = {
        "format_version": FORMAT_VERSION,
        "n_frames": int(n_frames),
        "n_atoms": int(n_atoms),
        "dt_fs": float(dt_fs),
        "atomic_numbers": atomic_numbers.tolist(),
        "masses": masses.tolist(),
        "box": None if box is None else [float(b) for b in np.asarray(box).reshape(3)],
        "bonds": None if bonds is None else np.asarray(bonds, dtype=np.int64).reshape(-1, 2).tolist(),
        "units": UNITS,
        "provenance": provenance or {},
    }
    write_json(directory / "meta.json", meta)
    return directory


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


def load_trajectory(directory: str | Path, check_finite: bool = False) -> Trajectory:
    """Open one trajectory directory, memory-mapped, with its consistency checked."""
    directory = Path(directory)
    meta_path = directory / "meta.json"
    if not meta_path.exists():
        raise DataError(f"{meta_path}: missing; the trajectory is incomplete - rerun its data rule")
    try:
        meta = read_json(meta_path)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise DataError(f"{meta_path}: missing keys {missing}")
    pos_path = directory / "positions.npy"
    positions = _load_npy(pos_path)
    if positions.ndim != 3 or positions.shape[2] != 3:
        raise DataError(f"{pos_path}: positions must be [frames, atoms, 3], got shape {positions.shape}")
    if positions.shape[:2] != (meta["n_frames"], meta["n_atoms"]):
        raise DataError(f"{pos_path}: shape {positions.shape} disagrees with meta.json "
                        f"(n_frames={meta['n_frames']}, n_atoms={meta['n_atoms']})")
    n_atoms = positions.shape[1]
    z = np.asarray(meta["atomic_numbers"], dtype=np.int64)
    m = np.asarray(meta["masses"], dtype=np.float64)
    if z.shape != (n_atoms,) or m.shape != (n_atoms,):
        raise DataError(f"{meta_path}: atomic_numbers/masses have {z.shape[0]}/{m.shape[0]} entries "
                        f"but positions have {n_atoms} atoms")
    velocities = None
    vel_path = directory / "velocities.npy"
    if vel_path.exists():
        velocities = _load_npy(vel_path)
        if velocities.shape != positions.shape:
            raise DataError(f"{vel_path}: shape {velocities.shape} != positions {positions.shape}")
    if not (meta["dt_fs"] > 0):
        raise DataError(f"{meta_path}: dt_fs must be > 0, got {meta['dt_fs']}")
    box = None if meta.get("box") is None else np.asarray(meta["box"], dtype=np.float64)
    bonds = None if meta.get("bonds") is None else np.asarray(meta["bonds"], dtype=np.int64).reshape(-1, 2)
    if bonds is not None and bonds.size and (bonds.min() < 0 or bonds.max() >= n_atoms):
        raise DataError(f"{meta_path}: bond indices outside 0..{n_atoms - 1}")
    traj = Trajectory(directory, positions, velocities, z, m, float(meta["dt_fs"]), box, bonds,
                      meta.get("provenance", {}))
    if check_finite:
        check_trajectory_finite(traj)
    return traj


def _load_npy(path: Path) -> np.ndarray:
    if not path.exists():
        raise DataError(f"{path}: missing; the trajectory is incomplete - rerun its data rule")
    try:
        array = np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: unreadable or truncated .npy ({exc}); delete the dataset "
                        f"directory and rerun its data rule") from None
    if array.dtype != np.float32:
        raise DataError(f"{path}: dtype {array.dtype}, expected float32")
    return array


def check_trajectory_finite(traj: Trajectory, chunk_frames: int = 4096) -> None:
    """Scan a trajectory chunk by chunk for NaN/inf (never loads it whole)."""
    for name, array in (("positions", traj.positions), ("velocities", traj.velocities)):
        if array is None:
            continue
        for start in range(0, array.shape[0], chunk_frames):
            block = np.asarray(array[start:start + chunk_frames])
            if not np.isfinite(block).all():
                bad = start + int(np.argwhere(~np.isfinite(block))[0][0])
                raise DataError(f"{traj.path / (name + '.npy')}: non-finite value at frame {bad}")


@dataclass
class Dataset:
    """A complete dataset directory: its manifest and lazily opened trajectories."""

    path: Path
    manifest: dict

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def checksum(self) -> str:
        return self.manifest["checksum"]

    @property
    def trajectory_names(self) -> list[str]:
        return [t["name"] for t in self.manifest["trajectories"]]

    def __len__(self) -> int:
        return len(self.manifest["trajectories"])

    def trajectory(self, index: int) -> Trajectory:
        return load_trajectory(self.path / self.trajectory_names[index])

    def trajectories(self) -> list[Trajectory]:
        return [self.trajectory(i) for i in range(len(self))]

    @property
    def info(self) -> dict:
        """Dataset-level facts (the card's header): kind, params, atoms, periodicity."""
        return self.manifest.get("info", {})


def files_checksum(files: dict) -> str:
    """A dataset's checksum: one sha256 over its manifest's per-file hashes."""
    return stable_hash({k: v["sha256"] for k, v in files.items()}, length=64)


def open_dataset(path: str | Path, verify: bool = False) -> Dataset:
    """Open a dataset directory. ``verify=True`` re-hashes every file against the manifest and the
    manifest's checksum against those hashes."""
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.exists():
        raise DataError(f"{manifest_path}: missing; the dataset was never completed - run "
                        f"`snakemake <its manifest path>` or `mdhorizon data make`")
    try:
        manifest = read_json(manifest_path)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    for key in ("name", "trajectories", "files", "checksum"):
        if key not in manifest:
            raise DataError(f"{manifest_path}: missing key {key!r}")
    for rel, entry in manifest["files"].items():
        file = path / rel
        if not file.exists():
            raise DataError(f"{file}: listed in {manifest_path} but missing")
        if file.stat().st_size != entry["bytes"]:
            raise DataError(f"{file}: {file.stat().st_size} bytes, manifest says {entry['bytes']} "
                            f"(truncated or modified); delete {path} and regenerate it")
        if verify and sha256_file(file) != entry["sha256"]:
            raise DataError(f"{file}: sha256 differs from {manifest_path}; delete {path} and regenerate it")
    if verify and files_checksum(manifest["files"]) != manifest["checksum"]:
        raise DataError(f"{manifest_path}: its checksum does not match its file hashes (edited?); "
                        f"delete {path} and regenerate it")
    return Dataset(path, manifest)


def write_manifest(path: str | Path, name: str, kind: str, params: dict, info: dict | None = None) -> dict:
    """Hash every trajectory file under ``path`` and write ``manifest.json`` (atomically, last)."""
    path = Path(path)
    trajectories, files = [], {}
    for traj_dir in sorted(p for p in path.iterdir() if p.is_dir() and (p / "meta.json").exists()):
        traj = load_trajectory(traj_dir, check_finite=True)
        trajectories.append({"name": traj_dir.name, "n_frames": traj.n_frames, "n_atoms": traj.n_atoms})
        for file in sorted(traj_dir.iterdir()):
            if file.is_file() and not file.name.startswith("."):
                rel = file.relative_to(path).as_posix()
                files[rel] = {"sha256": sha256_file(file), "bytes": file.stat().st_size}
    if not trajectories:
        raise DataError(f"{path}: no trajectories to put in a manifest")
    manifest = {
        "name": name,
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "params": params,
        "info": info or {},
        "trajectories": trajectories,
        "files": files,
        "checksum": files_checksum(files),
    }
    write_json(path / "manifest.json", manifest)
    return manifest
