"""Physical validation report of a dataset: ``results/data/<dataset>.md`` plus PNG plots.

What is checked, per dataset (each where it applies):
- temperature over time, from the stored velocities: T = 2 KE / (f k_B) with
  f the degrees of freedom the generator recorded in ``provenance`` (3N less
  constraints less 3 for a removed centre-of-mass motion), else 3N;
- the closest atom pair (minimum image in periodic boxes) and the largest
  displacement of an atom between consecutive frames (unwrapped coordinates
  move continuously: a jump of about a box edge would mean wrapped data);
- periodic liquids: radial distribution functions (all pairs for one element,
  O-O for water) with the first-peak position, and the mass density;
- alanine dipeptide: the Ramachandran histogram of (phi, psi) and the
  populations of the alpha_R, beta/PII and alpha_L/C7ax basins;
- molecules with bonds: the bond-length distribution per element pair;
- energy drift where a conserved energy was stored (``energies.npy`` column
  2: the Nose-Hoover conserved energy of the OpenMM water runs): slope of a
  linear fit, in kJ/mol/ns and in k_B T per degree of freedom per ns.

The numbers are computed from frames spread evenly over each trajectory
(``max_frames``) so that a report of a large data set stays quick.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.data.format import Dataset, Trajectory, open_dataset
from benchmark.io import write_text

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


# ----------------------------------------------------------------------------- the report


def _plt():
    from benchmark.report.figures import pyplot

    return pyplot()


def _fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}g}" if np.isfinite(x) else "-"


def write_report(dataset: str | Path | Dataset, out_md: str | Path, name: str | None = None,
                 max_frames: int = 200) -> Path:
    """Compute every applicable check of a dataset, write the markdown and its PNG plots."""
    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
    name = name or ds.name
    out_md = Path(out_md)
    plot_dir = out_md.parent / name
    plot_dir.mkdir(parents=True, exist_ok=True)
    plt = _plt()
    trajs = ds.trajectories()
    info, params = ds.info, ds.manifest.get("params", {})
    kind = ds.manifest.get("kind", info.get("kind", "?"))
    first = trajs[0]
    lines = [f"# Dataset `{name}`: physical validation",
             "",
             f"Kind `{kind}`: {info.get('description', '')}.",
             f"{len(trajs)} trajectories x {first.n_frames} frames, {first.n_atoms} atoms, "
             f"{first.dt_fs:g} fs between frames, {'periodic box ' + ' x '.join(f'{b:.3f}' for b in first.box) + ' A' if first.box is not None else 'no box'}.",
             f"Engine: {first.provenance.get('engine', '?')}. Dataset checksum `{ds.checksum[:16]}`.",
             f"Generated by `mdhorizon data report {name}` from the stored files only.",
             ""]

    # Integrity: closest pair and largest per-frame move.
    lines += ["## Structure sanity", "",
              "| trajectory | closest pair (A) | largest move between frames (A) |", "|---|---|---|"]
    for t in trajs:
        lines.append(f"| {t.name} | {min_pair_distance(t, max_frames=min(max_frames, 50)):.3f} | "
                     f"{max_frame_displacement(t):.3f} |")
    lines.append("")

    # Temperature.
    target = params.get("temperature_K")
    if first.velocities is not None:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        lines += ["## Temperature", "",
                  f"From the stored velocities with the generator's degrees of freedom "
                  f"({degrees_of_freedom(first)} per trajectory); target {target} K.", "",
                  "| trajectory | mean T (K) | std T (K) | mean T first half | mean T second half | deviation from target |",
                  "|---|---|---|---|---|---|"]
        for t in trajs:
            temps = temperature_series(t)
            half = len(temps) // 2
            dev = (temps.mean() / target - 1) * 100 if target else np.nan
            lines.append(f"| {t.name} | {temps.mean():.1f} | {temps.std():.1f} | {temps[:max(half, 1)].mean():.1f} | "
                         f"{temps[half:].mean():.1f} | {_fmt(dev)} % |")
            time_ps = np.arange(len(temps)) * t.dt_fs / 1000
            window = max(1, len(temps) // 100)
            smooth = np.convolve(temps, np.ones(window) / window, mode="valid")
            ax.plot(time_ps[:len(smooth)], smooth, lw=0.8, label=t.name)
        if target:
            ax.axhline(target, color="k", ls="--", lw=1, label=f"target {target} K")
        ax.set_xlabel("time (ps)")
        ax.set_ylabel(f"T (K), running mean of {max(1, first.n_frames // 100)} frames")
        ax.set_title(f"{name}: temperature")
        if len(trajs) <= 10:
            ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(plot_dir / "temperature.png", dpi=110)
        plt.close(fig)
        lines += ["", f"![temperature]({name}/temperature.png)", ""]

    # Liquids: density and RDF.
    if first.box is not None:
        elements = sorted(set(int(z) for z in first.atomic_numbers))
        element = 8 if 8 in elements else elements[0]
        # each trajectory equilibrates its own box (NPT): the smallest one bounds r_max
        r_max = min(0.5 * min(float(np.min(t.box)) for t in trajs) - 1e-6, 12.0)
        r, g = rdf(trajs, element, r_max, max_frames=max(10, max_frames // 2))
        peak = float(r[np.argmax(g)])
        sym = SYMBOLS.get(element, str(element))
        lines += ["## Structure of the liquid", "",
                  f"Density {np.mean([density_g_cm3(t) for t in trajs]):.4f} g/cm^3 "
                  f"(per trajectory: {', '.join(f'{density_g_cm3(t):.4f}' for t in trajs)}).", "",
                  f"{sym}-{sym} radial distribution function: first peak at **{peak:.2f} A** "
                  f"(g = {g.max():.2f}).", ""]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(r, g, lw=1.2)
        ax.axvline(peak, color="r", ls=":", lw=1, label=f"first peak {peak:.2f} A")
        ax.axhline(1.0, color="k", lw=0.5)
        ax.set_xlabel("r (A)")
        ax.set_ylabel(f"g(r), {sym}-{sym}")
        ax.set_title(f"{name}: radial distribution function")
        ax.legend()
        fig.tight_layout()
        fig.savefig(plot_dir / "rdf.png", dpi=110)
        plt.close(fig)
        lines += [f"![rdf]({name}/rdf.png)", ""]

    # Alanine dipeptide: Ramachandran.
    if first.n_atoms == 22 and kind in ("ala2", "ala2_sim"):
        phis, psis = [], []
        lines += ["## Ramachandran (phi = atoms 4,6,8,14; psi = 6,8,14,16)", "",
                  "| trajectory | " + " | ".join(ramachandran_basins(np.zeros(1), np.zeros(1))) + " |",
                  "|---|---|---|---|"]
        for t in trajs:
            phi = dihedrals(t.positions, ALA2_PHI)
            psi = dihedrals(t.positions, ALA2_PSI)
            phis.append(phi)
            psis.append(psi)
            lines.append(f"| {t.name} | " + " | ".join(f"{v:.3f}" for v in ramachandran_basins(phi, psi).values()) + " |")
        phi, psi = np.concatenate(phis), np.concatenate(psis)
        lines.append("| all | " + " | ".join(f"{v:.3f}" for v in ramachandran_basins(phi, psi).values()) + " |")
        fig, ax = plt.subplots(figsize=(4.8, 4.2))
        from matplotlib.colors import LogNorm

        h = ax.hist2d(phi, psi, bins=72, range=[[-180, 180], [-180, 180]], cmap="viridis", cmin=1, norm=LogNorm())
        fig.colorbar(h[3], ax=ax, label="frames")
        ax.set_xlabel("phi (deg)")
        ax.set_ylabel("psi (deg)")
        ax.set_title(f"{name}: Ramachandran ({len(phi)} frames)")
        fig.tight_layout()
        fig.savefig(plot_dir / "ramachandran.png", dpi=110)
        plt.close(fig)
        lines += ["", f"![ramachandran]({name}/ramachandran.png)", ""]

    # Molecules: bond lengths.
    if first.box is None and first.bonds is not None and len(first.bonds):
        merged: dict[str, list] = {}
        for t in trajs:
            for k, v in bond_lengths(t, max_frames=max_frames * 10).items():
                merged.setdefault(k, []).append(v)
        merged = {k: np.concatenate(v) for k, v in merged.items()}
        lines += ["## Bond lengths", "", "| bond | bonds of this type | mean (A) | std (A) | min (A) | max (A) |",
                  "|---|---|---|---|---|---|"]
        for k, v in merged.items():
            n_bonds = sum(1 for i, j in first.bonds if _bond_key(first, i, j) == k)
            lines.append(f"| {k} | {n_bonds} | {v.mean():.4f} | {v.std():.4f} | {v.min():.3f} | {v.max():.3f} |")
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for k, v in merged.items():
            if v.std() < 1e-4:  # a constrained bond: a line, not a spike that flattens the rest
                ax.axvline(float(v.mean()), ls="--", lw=1, color="gray")
                ax.text(float(v.mean()), 0.98, f" {k} (constrained)", rotation=90, va="top", fontsize=7,
                        transform=ax.get_xaxis_transform())
                continue
            ax.hist(v, bins=120, range=(0.8, 1.8), histtype="step", density=True, label=k)
        ax.set_xlabel("bond length (A)")
        ax.set_ylabel("density")
        ax.set_title(f"{name}: bond-length distributions")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(plot_dir / "bond_lengths.png", dpi=110)
        plt.close(fig)
        lines += ["", f"![bond lengths]({name}/bond_lengths.png)", ""]

    # Energy drift.
    drifts = [(t.name, energy_drift(t)) for t in trajs]
    drifts = [(n, d) for n, d in drifts if d is not None]
    lines += ["## Energy drift", ""]
    if drifts:
        lines += ["Nose-Hoover conserved energy (potential + kinetic + heat bath), linear fit over the production run.", "",
                  "| trajectory | drift (kJ/mol/ns) | drift (k_B T per degree of freedom per ns) | residual std (kJ/mol) |",
                  "|---|---|---|---|"]
        for n, d in drifts:
            lines.append(f"| {n} | {d['kj_per_mol_per_ns']:.3g} | {d['kT_per_dof_per_ns']:.3g} | "
                         f"{d['fluctuation_kj_per_mol']:.3g} |")
    else:
        lines.append("Not applicable: no conserved energy was stored for this dataset (stochastic "
                     "thermostat, downloaded data, or a generator that does not record energies).")
    lines.append("")
    write_text(out_md, "\n".join(lines))
    return out_md
