"""MD17 (Chmiela et al. 2017): ab-initio MD trajectories of 8 small molecules, downloaded.

Source: ``http://www.quantum-machine.org/gdml/data/npz/md17_<mol>.npz`` (landing
page sgdml.org); before 2023 the server named them ``<mol>_dft.npz``, tried as
a fallback.  The molecule names follow the EGNO / GF-NODE code: ``benzene_old``
is the server's ``md17_benzene2017.npz`` (the 2018 benzene file is a different,
shorter data set).  Keys used: ``R`` (positions, Angstrom, [frames, atoms, 3])
and ``z`` (atomic numbers).  Frame spacing 0.5 fs, 500 K.

Conversion (the EGNO / GF-NODE MD17 protocol): heavy atoms only (``z > 1``),
positions in Angstrom, every frame kept in file order (frame ``t`` of the
converted trajectory is frame ``t`` of ``R``, so the published start-frame
indices apply unchanged), no stored velocities (the task layer uses the
forward difference ``(x[t+1] - x[t]) / dt``, the published one-frame
displacement), bonds = pairs closer than 1.6 Angstrom in frame 0 (the task's
molecular graph adds the 2-hop pairs).  One dataset per molecule, one
trajectory ``traj_000``.  See ``benchmark/data/cards/md17.md``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from benchmark.data.download import RemoteFile, cache_dir_for, convert_once, expand_urls, fetch
from benchmark.data.format import DataError, write_trajectory

KIND = "md17"
BASE_URL = "http://www.quantum-machine.org/gdml/data/npz/"
# molecule -> (server file name, pre-2023 name, published frame count, heavy atoms)
MOLECULES = {
    "aspirin": ("md17_aspirin.npz", "aspirin_dft.npz", 211762, 13),
    "benzene_old": ("md17_benzene2017.npz", "benzene_old_dft.npz", 627983, 6),
    "ethanol": ("md17_ethanol.npz", "ethanol_dft.npz", 555092, 3),
    "malonaldehyde": ("md17_malonaldehyde.npz", "malonaldehyde_dft.npz", 993237, 5),
    "naphthalene": ("md17_naphthalene.npz", "naphthalene_dft.npz", 326250, 10),
    "salicylic": ("md17_salicylic.npz", "salicylic_dft.npz", 320231, 10),
    "toluene": ("md17_toluene.npz", "toluene_dft.npz", 442790, 7),
    "uracil": ("md17_uracil.npz", "uracil_dft.npz", 133770, 8),
}
MASSES = {1: 1.008, 6: 12.011, 7: 14.007, 8: 15.999}  # Dalton (IUPAC standard atomic weights)

DEFAULTS = {
    "molecule": "aspirin",
    "mirrors": [BASE_URL],  # tried in order; "{name}" is replaced by the file name, "/" gets it appended
    "heavy_atoms": True,
    "bond_cutoff_A": 1.6,
    "dt_fs": 0.5,
    "cache_dir": "",  # default: <work>/data/.downloads/md17
    "retries": 2,  # restarts of a transfer cut mid-file, per URL
}


def masses_of(z: np.ndarray) -> np.ndarray:
    unknown = sorted(set(int(a) for a in z) - set(MASSES))
    if unknown:
        raise DataError(f"no mass known for atomic number(s) {unknown}")
    return np.array([MASSES[int(a)] for a in z], dtype=np.float64)


def bonds_from_frame(positions0: np.ndarray, cutoff: float) -> np.ndarray:
    """[E, 2] pairs i < j closer than ``cutoff`` Angstrom in one frame."""
    d = np.linalg.norm(positions0[:, None] - positions0[None], axis=-1)
    i, j = np.nonzero(np.triu(d < cutoff, k=1))
    return np.stack([i, j], axis=1).astype(np.int64)


def _molecule(params: dict) -> str:
    mol = params["molecule"]
    if mol not in MOLECULES:
        raise KeyError(f"md17: unknown molecule {mol!r}; valid: {', '.join(MOLECULES)}")
    return mol


def remote_files(params: dict, all_files: bool = False) -> list[RemoteFile]:
    mols = list(MOLECULES) if all_files else [_molecule(params)]
    out = []
    for mol in mols:
        name, old, _, _ = MOLECULES[mol]
        out.append(RemoteFile(name, expand_urls(params["mirrors"], [name, old]), KIND, aliases=(old,)))
    return out


def convert(npz_path: Path, directory: Path, params: dict, source: dict) -> dict:
    """Write one trajectory from an MD17 ``.npz``; returns facts for the manifest."""
    mol = _molecule(params)
    _, _, published_frames, published_heavy = MOLECULES[mol]
    with np.load(npz_path) as data:
        if "R" not in data or "z" not in data:
            raise DataError(f"{npz_path}: not an MD17 file (keys {sorted(data.files)}, need R and z)")
        z = np.asarray(data["z"]).astype(np.int64).reshape(-1)
        keep = z > 1 if params["heavy_atoms"] else np.ones(len(z), dtype=bool)
        positions = np.asarray(data["R"], dtype=np.float64)[:, keep]
        theory = str(data["theory"]) if "theory" in data.files else ""
    if params["heavy_atoms"] and keep.sum() != published_heavy:
        raise DataError(f"{npz_path}: {keep.sum()} heavy atoms, but MD17 {mol} has {published_heavy}; "
                        f"wrong file for this molecule?")
    if positions.shape[0] != published_frames:
        warnings.warn(f"{npz_path}: {positions.shape[0]} frames, the published {mol} file has "
                      f"{published_frames}; the published split may not fit", UserWarning, stacklevel=2)
    bonds = bonds_from_frame(positions[0], params["bond_cutoff_A"])
    write_trajectory(directory, positions.astype(np.float32), dt_fs=params["dt_fs"], atomic_numbers=z[keep],
                     masses=masses_of(z[keep]), bonds=bonds,
                     provenance={"source": source, "molecule": mol, "theory": theory,
                                 "atoms_kept": np.nonzero(keep)[0].tolist(),
                                 "heavy_atoms_only": bool(params["heavy_atoms"]),
                                 "bonds": f"pairs closer than {params['bond_cutoff_A']} A in frame 0"})
    return {"n_frames": int(positions.shape[0]), "n_atoms": int(keep.sum())}


def make(out, params: dict, seed: int, progress: bool = True) -> dict:
    """Download (or reuse) the molecule's file, verify it, convert it; returns manifest info."""
    remote = remote_files(params)[0]
    got = fetch(remote, cache_dir_for(out, KIND, params), progress=progress, retries=params["retries"])
    facts = {}
    convert_once(out, "traj_000", lambda d: facts.update(convert(got.path, d, params, got.record())))
    mol = params["molecule"]
    return {"molecule": mol, "time_series": True, "dt_fs": params["dt_fs"], "published_frames": MOLECULES[mol][2],
            "sources": [got.record()], "units": {"positions": "angstrom", "time": "fs"},
            "card": "benchmark/data/cards/md17.md", "published_split": "benchmark/splits/md17_egno_splits.json"}
