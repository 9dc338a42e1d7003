"""Alanine dipeptide in explicit water (mdshare), 3 x 250 ns, downloaded.

Source: mdshare (Wehmeyer, Noe et al., FU Berlin), base URL
``http://ftp.imp.fu-berlin.de/pub/cmb-data/`` (reported unreachable in 2025:
add mirrors to ``mirrors`` or import local copies with
``mdhorizon data import ala2 DIR``).  Files, md5 pinned from mdshare's
catalogue: ``alanine-dipeptide-nowater.pdb`` and
``alanine-dipeptide-{0,1,2}-250ns-nowater.xtc`` (AMBER ff99SB-ILDN, TIP3P
water stripped, 300 K, one frame per ps).

Conversion: every run is its own trajectory (``traj_000`` .. ``traj_002``), so
no window ever crosses a run boundary (the public GF-NODE code concatenates
the runs and lets some windows straddle two runs: we do not).  All 22 atoms
(hydrogens kept), positions converted from nm to Angstrom (x 10), time step
1000 fs (checked against the xtc time stamps), bonds from the pdb topology.
When the xtc carries a box, each frame is made whole along the bonds and
jumps of the molecule across the box are removed (identity for an already
whole, unwrapped trajectory), so the stored coordinates are unwrapped.
Coordinates are NOT centred (the GF-NODE code centres them; a method may do
so itself).  See ``benchmark/data/cards/ala2.md``.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np

from benchmark.data.download import RemoteFile, cache_dir_for, convert_once, expand_urls, fetch
from benchmark.data.format import DataError, write_trajectory

KIND = "ala2"
BASE_URL = "http://ftp.imp.fu-berlin.de/pub/cmb-data/"
PDB = "alanine-dipeptide-nowater.pdb"
XTC = "alanine-dipeptide-{run}-250ns-nowater.xtc"
NM_TO_A = 10.0

DEFAULTS = {
    "runs": [0, 1, 2],
    "mirrors": [BASE_URL],  # tried in order; "{name}" is replaced by the file name, "/" gets it appended
    "dt_fs": 1000.0,
    "cache_dir": "",  # default: <work>/data/.downloads/ala2
    "retries": 2,
}


def remote_files(params: dict, all_files: bool = False) -> list[RemoteFile]:
    runs = [0, 1, 2] if all_files else list(params["runs"])
    names = [PDB] + [XTC.format(run=r) for r in runs]
    return [RemoteFile(n, expand_urls(params["mirrors"], [n]), KIND) for n in names]


def _bfs_order(n_atoms: int, bonds: np.ndarray) -> list[tuple[int, int]]:
    """(parent, child) pairs of a spanning forest of the bond graph, parents first."""
    neighbours = [[] for _ in range(n_atoms)]
    for i, j in bonds:
        neighbours[i].append(j)
        neighbours[j].append(i)
    seen, order = [False] * n_atoms, []
    for root in range(n_atoms):
        if seen[root]:
            continue
        seen[root] = True
        queue = deque([root])
        while queue:
            i = queue.popleft()
            for j in neighbours[i]:
                if not seen[j]:
                    seen[j] = True
                    order.append((i, j))
                    queue.append(j)
    return order


def unwrap_molecule(xyz: np.ndarray, bonds: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Make each frame whole along the bonds, then remove jumps of the centroid across the box.

    ``xyz`` [frames, atoms, 3], ``box`` [frames, 3] orthorhombic edge lengths (same unit).
    """
    xyz = np.array(xyz, dtype=np.float64)
    for i, j in _bfs_order(xyz.shape[1], bonds):
        d = xyz[:, j] - xyz[:, i]
        xyz[:, j] = xyz[:, i] + d - box * np.round(d / box)
    centre = xyz.mean(axis=1)
    step = np.diff(centre, axis=0)
    jump = box[1:] * np.round(step / box[1:])
    shift = np.concatenate([np.zeros((1, 3)), np.cumsum(jump, axis=0)])
    return xyz - shift[:, None, :]


def convert_run(xtc: Path, pdb: Path, directory: Path, params: dict, run: int, sources: list) -> None:
    import mdtraj

    traj = mdtraj.load(str(xtc), top=str(pdb))
    top = traj.topology
    if traj.n_atoms != 22:
        raise DataError(f"{xtc}: {traj.n_atoms} atoms, alanine dipeptide without water has 22")
    z = np.array([a.element.atomic_number for a in top.atoms], dtype=np.int64)
    masses = np.array([a.element.mass for a in top.atoms], dtype=np.float64)
    bonds = np.array([[b[0].index, b[1].index] for b in top.bonds], dtype=np.int64).reshape(-1, 2)
    if len(traj) > 1 and traj.time is not None:
        dt_ps = np.diff(traj.time)
        if not np.allclose(dt_ps * 1000.0, params["dt_fs"], rtol=1e-4):
            raise DataError(f"{xtc}: frames are {np.unique(np.round(dt_ps, 6))[:5]} ps apart, "
                            f"expected dt_fs={params['dt_fs']}")
    xyz = traj.xyz.astype(np.float64)  # nm
    box = traj.unitcell_lengths
    if box is not None and len(bonds) and np.all(box > 0):  # xtc files without a box store zeros
        xyz = unwrap_molecule(xyz, bonds, box.astype(np.float64))
    write_trajectory(directory, (xyz * NM_TO_A).astype(np.float32), dt_fs=params["dt_fs"], atomic_numbers=z,
                     masses=masses, bonds=bonds if len(bonds) else None,
                     provenance={"sources": sources, "run": int(run), "atom_names": [str(a) for a in top.atoms],
                                 "units_in_source": "nm, ps", "converted": "nm x 10 -> angstrom; not centred",
                                 "reader": f"mdtraj {mdtraj.__version__}"})


def make(out, params: dict, seed: int, progress: bool = True) -> dict:
    cache = cache_dir_for(out, KIND, params)
    got = {r.name: fetch(r, cache, progress=progress, retries=params["retries"]) for r in remote_files(params)}
    pdb = got[PDB]
    for k, run in enumerate(params["runs"]):
        xtc = got[XTC.format(run=run)]
        convert_once(out, f"traj_{k:03d}",
                     lambda d, xtc=xtc, run=run: convert_run(xtc.path, pdb.path, d, params, run,
                                                             [pdb.record(), xtc.record()]))
    return {"time_series": True, "runs": list(params["runs"]), "dt_fs": params["dt_fs"],
            "sources": [g.record() for g in got.values()],
            "units": {"positions": "angstrom (converted from nm)", "time": "fs"},
            "card": "benchmark/data/cards/ala2.md"}
