"""Observables of a stored dataset, computed from its files only (used by the data report).

Temperature from the stored velocities, closest pairs and per-frame moves, density, radial
distribution functions, dihedrals and Ramachandran basins, bond lengths, and the drift of a
stored conserved energy.  The physics checks with pass/fail thresholds (drift, structure
factor, diffusion, rotation, static MSE per horizon) are in :mod:`benchmark.data.checks`.
"""

from __future__ import annotations

import numpy as np

from benchmark.data.format import Trajectory

KB_KJ_PER_MOL_K = 0.0083144626
DA_A2_PER_FS2_TO_KJ_PER_MOL = 1e4  # 1 Da (A/fs)^2 = 1e-3 kg/mol * 1e10 m^2/s^2 = 1e4 kJ/mol
AVOGADRO = 6.02214076e23
SYMBOLS = {1: "H", 6: "C", 7: "N", 8: "O", 18: "Ar"}
ALA2_PHI, ALA2_PSI = (4, 6, 8, 14), (6, 8, 14, 16)


# ----------------------------------------------------------------------------- observables


def frame_indices(n_frames: int, max_frames: int) -> np.ndarray:
    return np.unique(np.linspace(0, n_frames - 1, min(n_frames, max_frames)).round().astype(int))


def degrees_of_freedom(traj: Trajectory) -> int:
    return int(traj.provenance.get("degrees_of_freedom", 3 * traj.n_atoms))


def kinetic_energy(velocities: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """[frames, atoms, 3] A/fs, Da -> [frames] kJ/mol."""
    v = np.asarray(velocities, dtype=np.float64)
    return 0.5 * np.einsum("fad,a->f", v * v, masses) * DA_A2_PER_FS2_TO_KJ_PER_MOL


def temperature_series(traj: Trajectory, chunk: int = 2048) -> np.ndarray:
    """Instantaneous temperature (K) of every frame, from the stored velocities."""
    if traj.velocities is None:
        raise ValueError(f"{traj.path}: no velocities stored")
    ke = np.concatenate([kinetic_energy(traj.velocities[s:s + chunk], traj.masses)
                         for s in range(0, traj.n_frames, chunk)])
    return 2.0 * ke / (degrees_of_freedom(traj) * KB_KJ_PER_MOL_K)


def pair_distances(positions: np.ndarray, box=None, a=None, b=None) -> np.ndarray:
    """Distances of all pairs i<j (or between index sets a and b) in one frame, minimum image."""
    x = np.asarray(positions, dtype=np.float64)
    xa = x if a is None else x[a]
    xb = x if b is None else x[b]
    d = xa[:, None, :] - xb[None, :, :]
    if box is not None:
        box = np.asarray(box, dtype=np.float64)
        d -= box * np.round(d / box)
    r = np.sqrt((d * d).sum(-1))
    if b is None or (a is not None and np.array_equal(a, b)):
        return r[np.triu_indices(len(xa), k=1)]
    return r.ravel()


def min_pair_distance(traj: Trajectory, max_frames: int = 50) -> float:
    return float(min(pair_distances(traj.positions[f], traj.box).min()
                     for f in frame_indices(traj.n_frames, max_frames)))


def max_frame_displacement(traj: Trajectory, chunk: int = 1024) -> float:
    """Largest move of one atom between consecutive stored frames (A)."""
    best = 0.0
    for s in range(0, traj.n_frames - 1, chunk):
        block = np.asarray(traj.positions[s:s + chunk + 1], dtype=np.float64)
        if len(block) > 1:
            best = max(best, float(np.sqrt((np.diff(block, axis=0) ** 2).sum(-1)).max()))
    return best


def density_g_cm3(traj: Trajectory) -> float:
    return float(traj.masses.sum() / AVOGADRO / np.prod(np.asarray(traj.box) * 1e-8))


def rdf(trajs: list[Trajectory], element: int, r_max: float, n_bins: int = 150, max_frames: int = 100):
    """g(r) between atoms of one element, periodic boxes, averaged over frames and trajectories."""
    edges = np.linspace(0.0, r_max, n_bins + 1)
    counts = np.zeros(n_bins)
    norm = 0.0
    for traj in trajs:
        sel = np.flatnonzero(traj.atomic_numbers == element)
        n = len(sel)
        volume = float(np.prod(traj.box))
        if r_max > 0.5 * float(np.min(traj.box)):
            raise ValueError(f"rdf: r_max {r_max} exceeds half the box {traj.box}")
        for f in frame_indices(traj.n_frames, max_frames):
            counts += np.histogram(pair_distances(traj.positions[f][sel], traj.box), bins=edges)[0]
            norm += n * (n - 1) / 2 / volume
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    centres = 0.5 * (edges[1:] + edges[:-1])
    return centres, counts / (shell * norm)


def dihedrals(positions: np.ndarray, idx) -> np.ndarray:
    """Dihedral angle (degrees) of atoms idx=(i, j, k, l) in every frame of [frames, atoms, 3]."""
    p = np.asarray(positions, dtype=np.float64)[:, list(idx)]
    b0, b1, b2 = p[:, 0] - p[:, 1], p[:, 2] - p[:, 1], p[:, 3] - p[:, 2]
    b1 = b1 / np.linalg.norm(b1, axis=-1, keepdims=True)
    v = b0 - (b0 * b1).sum(-1, keepdims=True) * b1
    w = b2 - (b2 * b1).sum(-1, keepdims=True) * b1
    x = (v * w).sum(-1)
    y = (np.cross(b1, v) * w).sum(-1)
    return np.degrees(np.arctan2(y, x))


def ramachandran_basins(phi: np.ndarray, psi: np.ndarray) -> dict[str, float]:
    """Populations of the usual alanine-dipeptide basins (degrees)."""
    left = phi < 0
    alpha_r = left & (psi > -120) & (psi <= 50)
    beta = left & ~alpha_r
    return {"beta/PII (phi<0, psi>50 or psi<=-120)": float(beta.mean()),
            "alpha_R (phi<0, -120<psi<=50)": float(alpha_r.mean()),
            "alpha_L/C7ax (phi>0)": float((~left).mean())}


def _bond_key(traj: Trajectory, i: int, j: int) -> str:
    zi, zj = sorted((int(traj.atomic_numbers[i]), int(traj.atomic_numbers[j])), reverse=True)
    return f"{SYMBOLS.get(zi, zi)}-{SYMBOLS.get(zj, zj)}"


def bond_lengths(traj: Trajectory, max_frames: int = 2000) -> dict[str, np.ndarray]:
    """Bond lengths (A) per element pair ("C-H", ...) over evenly spread frames."""
    if traj.bonds is None or not len(traj.bonds):
        return {}
    x = np.asarray(traj.positions[frame_indices(traj.n_frames, max_frames)], dtype=np.float64)
    out: dict[str, list] = {}
    for i, j in traj.bonds:
        out.setdefault(_bond_key(traj, i, j), []).append(np.linalg.norm(x[:, i] - x[:, j], axis=-1))
    return {k: np.concatenate(v) for k, v in sorted(out.items())}


def energy_drift(traj: Trajectory) -> dict | None:
    """Linear drift of the stored conserved energy, or None where none was stored."""
    path = traj.path / "energies.npy"
    if not path.exists():
        return None
    energies = np.load(path)
    conserved = energies[:, 2]
    if not np.isfinite(conserved).all() or len(conserved) < 3:
        return None
    t_ns = np.arange(len(conserved)) * traj.dt_fs * 1e-6
    slope = float(np.polyfit(t_ns, conserved, 1)[0])
    temperature = float(traj.provenance.get("params", {}).get("temperature_K", np.nan))
    dof = degrees_of_freedom(traj)
    return {"kj_per_mol_per_ns": slope,
            "kT_per_dof_per_ns": slope / (dof * KB_KJ_PER_MOL_K * temperature),
            "fluctuation_kj_per_mol": float(np.std(conserved - np.polyval(np.polyfit(t_ns, conserved, 1), t_ns)))}
