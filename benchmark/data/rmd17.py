"""rMD17 (Christensen & von Lilienfeld 2020): MD17 geometries recomputed at PBE/def2-SVP.

NOT a time series: 100,000 structures per molecule sub-sampled from the MD17
trajectories (``old_indices`` gives each structure's MD17 frame), so it may
serve single-structure tasks only, never windows.  The dataset manifest says
so (``info.time_series = false``) and the window split builder refuses it.

Source: one archive ``rmd17.tar.bz2`` (figshare article 12672038, file
23950376; mirrored by the Materials Cloud archive, DOI 10.24435/materialscloud:wy-kn),
tried in that order.  It holds ``rmd17/npz_data/rmd17_<mol>.npz`` with keys
``nuclear_charges``, ``coords`` (Angstrom), ``energies`` (kcal/mol), ``forces``
(kcal/mol/Angstrom), ``old_indices``, ``old_energies``, ``old_forces``; the
molecule's file is extracted once into the download cache.

Conversion: one trajectory directory ``traj_000`` holding the structures in
file order as ``positions.npy`` (all atoms by default), plus ``energies.npy``
(float64 [structures], kcal/mol), ``forces.npy`` (float32, kcal/mol/A) and
``md17_indices.npy`` (int64).  ``dt_fs`` is set to MD17's 0.5 fs only because
the format needs a positive value: consecutive structures are NOT 0.5 fs
apart.  See ``benchmark/data/cards/rmd17.md``.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import numpy as np

from benchmark.data.download import (
    RemoteFile,
    cache_dir_for,
    convert_once,
    expand_urls,
    fetch,
    file_hashes,
    make_readable,
)
from benchmark.data.format import DataError, write_trajectory
from benchmark.data.md17 import masses_of
from benchmark.io import atomic_path

KIND = "rmd17"
ARCHIVE = "rmd17.tar.bz2"
MIRRORS = [
    "https://figshare.com/ndownloader/files/23950376",
    "https://archive.materialscloud.org/records/pfffs-fff86/files/rmd17.tar.bz2",
    "https://archive.materialscloud.org/record/file?filename=rmd17.tar.bz2&record_id=466",
]
MOLECULES = ("aspirin", "azobenzene", "benzene", "ethanol", "malonaldehyde", "naphthalene", "paracetamol",
             "salicylic", "toluene", "uracil")

DEFAULTS = {
    "molecule": "aspirin",
    "mirrors": MIRRORS,  # full URLs of the archive, tried in order ("{name}" / trailing "/" as in md17)
    "heavy_atoms": False,
    "cache_dir": "",  # default: <work>/data/.downloads/rmd17
    "retries": 2,
}


def remote_files(params: dict, all_files: bool = False) -> list[RemoteFile]:
    return [RemoteFile(ARCHIVE, expand_urls(params["mirrors"], [ARCHIVE]), KIND)]


def extract_molecule(archive: Path, mol: str, cache: Path) -> Path:
    """Extract ``rmd17_<mol>.npz`` from the archive into the cache (once, atomically)."""
    target = cache / f"rmd17_{mol}.npz"
    if target.exists():
        return target
    member = f"rmd17/npz_data/rmd17_{mol}.npz"
    with tarfile.open(archive, "r:bz2") as tar:
        try:
            info = tar.getmember(member)
        except KeyError:
            raise DataError(f"{archive}: no member {member}; not the rMD17 archive?") from None
        with tar.extractfile(info) as src, atomic_path(target) as tmp:
            with open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            make_readable(tmp)
    return target


def convert(npz_path: Path, directory: Path, params: dict, source: dict) -> dict:
    with np.load(npz_path) as data:
        missing = {"nuclear_charges", "coords", "energies", "forces", "old_indices"} - set(data.files)
        if missing:
            raise DataError(f"{npz_path}: not an rMD17 file (missing keys {sorted(missing)})")
        z = np.asarray(data["nuclear_charges"]).astype(np.int64).reshape(-1)
        keep = z > 1 if params["heavy_atoms"] else np.ones(len(z), dtype=bool)
        positions = np.asarray(data["coords"], dtype=np.float32)[:, keep]
        forces = np.asarray(data["forces"], dtype=np.float32)[:, keep]
        energies = np.asarray(data["energies"], dtype=np.float64).reshape(-1)
        old = np.asarray(data["old_indices"]).astype(np.int64).reshape(-1)
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in (("energies", energies), ("forces", forces), ("md17_indices", old)):
        with atomic_path(directory / f"{name}.npy") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, array)
    write_trajectory(directory, positions, dt_fs=0.5, atomic_numbers=z[keep], masses=masses_of(z[keep]),
                     provenance={"source": source, "molecule": params["molecule"], "time_series": False,
                                 "note": "structures sub-sampled from MD17, not consecutive frames; dt_fs is "
                                         "a placeholder",
                                 "extra_files": {"energies.npy": "kcal/mol", "forces.npy": "kcal/mol/angstrom",
                                                 "md17_indices.npy": "frame index in the MD17 trajectory"}})
    return {"n_structures": int(positions.shape[0])}


def make(out, params: dict, seed: int, progress: bool = True) -> dict:
    mol = params["molecule"]
    if mol not in MOLECULES:
        raise KeyError(f"rmd17: unknown molecule {mol!r}; valid: {', '.join(MOLECULES)}")
    cache = cache_dir_for(out, KIND, params)
    got = fetch(remote_files(params)[0], cache, progress=progress, retries=params["retries"])
    npz = extract_molecule(got.path, mol, cache)
    sha, _ = file_hashes(npz)
    facts = {}
    convert_once(out, "traj_000", lambda d: facts.update(convert(npz, d, params, got.record())))
    return {"molecule": mol, "time_series": False,
            "not_time_series_reason": "rMD17 structures are sub-sampled from MD17 (see md17_indices.npy); "
                                      "use MD17 for trajectory tasks",
            "sources": [got.record(), {"file": npz.name, "extracted_from": ARCHIVE, "sha256": sha}],
            "units": {"positions": "angstrom", "energies": "kcal/mol", "forces": "kcal/mol/angstrom"},
            "card": "benchmark/data/cards/rmd17.md"}
