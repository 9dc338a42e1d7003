"""Physical validation report of a dataset: ``results/data/<dataset>.md``, ``<dataset>.json`` and PNG plots.

The checks with pass/fail thresholds (centre-of-mass drift, internal temperature, structure
factor of a declared one-phase liquid; plus diffusion, rotation, static MSE per horizon,
decorrelation, bond changes, literature values and the MD17 calibration) come from
:func:`benchmark.data.checks.run_checks`: they open the markdown ("PASSED"/"FAILED") and make
up the JSON; ``mdhorizon data report`` exits non-zero when one fails.  Below them, per dataset
(each where it applies):
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

from benchmark.data.checks import run_checks
from benchmark.data.format import Dataset, open_dataset
from benchmark.data.observables import (
    ALA2_PHI,
    ALA2_PSI,
    SYMBOLS,
    _bond_key,
    bond_lengths,
    degrees_of_freedom,
    density_g_cm3,
    dihedrals,
    energy_drift,
    max_frame_displacement,
    min_pair_distance,
    ramachandran_basins,
    rdf,
    temperature_series,
)
from benchmark.io import read_json, write_json, write_text
from benchmark.report.markdown import md_table

# ----------------------------------------------------------------------------- the report


def _plt():
    from benchmark.report.figures import pyplot

    return pyplot()


def _fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}g}" if np.isfinite(x) else "-"


def _value(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, (tuple, list)):
        return "-".join(_value(v) for v in x)
    return _fmt(float(x), 4) if isinstance(x, (int, float)) else str(x)


def _box_text(box) -> str:
    return "periodic box " + " x ".join(f"{b:.3f}" for b in box) + " A" if box is not None else "no box"


def checks_markdown(checks: dict, json_name: str) -> list[str]:
    """The "Physics checks" section: status, failures, notes, the measured values and the references."""
    lines = ["## Physics checks", "", f"**{checks['status']}**" + (
        ": " + "; ".join(checks["failures"]) if checks["failures"] else
        " (centre-of-mass drift, internal temperature, declared phase)") + f". Machine-readable: `{json_name}`.", ""]
    lines += [f"- {n}" for n in checks["notes"]] + ([""] if checks["notes"] else [])
    keys = ["com_speed_A_per_ps", "temperature_K", "temperature_standard_error_K", "degrees_of_freedom",
            "declared_phase", "density_g_cm3",
            "structure_factor_kmin", "diffusion_A2_per_ps", "rotation_deg_per_ps", "plateau_A2", "decorrelation_frames"]
    lines += ["| quantity | value |", "|---|---|"] + [f"| {k} | {_value(checks[k])} |" for k in keys if k in checks]
    lines += ["", "Static MSE (A^2 per coordinate) of predicting frame t + h with frame t:", ""]
    if not checks["static_mse_A2"]:
        lines.append(f"None: the trajectories ({checks['n_frames']} frames) are shorter than the first horizon.")
    else:
        lines += ["| horizon h (frames) | " + " | ".join(checks["static_mse_A2"]) + " |",
                  "|---|" + "---|" * len(checks["static_mse_A2"]),
                  "| raw | " + " | ".join(_value(v) for v in checks["static_mse_A2"].values()) + " |"]
    if checks.get("static_mse_aligned_A2"):
        aligned = checks["static_mse_aligned_A2"].values()
        lines.append("| aligned (Kabsch) | " + " | ".join(_value(v) for v in aligned) + " |")
    if checks["literature"]:
        lines += ["", "| compared with | reference | measured | ratio | source |", "|---|---|---|---|---|"]
        lines += [f"| {e['quantity']} | {_value(e['reference'])} | {_value(e['measured'])} | "
                  f"{_value(e.get('ratio_to_reference'))} | {e['source']} |" for e in checks["literature"]]
    if "calibration" in checks:
        c = checks["calibration"]
        lines += ["", f"Calibration (goal: raw static MSE at 3000 frames {c['goal_ratio'][0]:g}x-"
                      f"{c['goal_ratio'][1]:g}x the best published error on the real MD17):", "",
                  "| molecule | motion | raw (A^2) | aligned (A^2) | best published (A^2) | raw / published |",
                  "|---|---|---|---|---|---|",
                  f"| {c['molecule']} | {c['motion']} | {_value(c['static_raw_A2'])} | "
                  f"{_value(c['static_aligned_A2'])} | {c['best_published_A2']} | {_value(c['raw_ratio'])} |"]
        if c.get("why"):
            lines.append(f"\n{c['why']}.")
    if checks.get("bond_changes"):
        lines += ["", "Bond changes (a hydrogen nearer another heavy atom than its stored partner):", ""]
        lines += md_table(["trajectory", "hydrogen", "stored partner", "nearer to", "fraction of frames"],
                          [[str(b[k]) for k in ("trajectory", "hydrogen", "stored_partner", "nearer_to",
                                                "fraction_of_frames")] for b in checks["bond_changes"]])
    if checks.get("proton_transfers"):
        lines += ["", "Labile hydrogens (in an intramolecular hydrogen bond; their bond is not stored):", ""]
        lines += md_table(["trajectory", "hydrogen", "donor", "acceptor", "fraction of frames nearer the acceptor"],
                          [[str(b[k]) for k in ("trajectory", "hydrogen", "donor", "acceptor",
                                                "fraction_nearer_acceptor")] for b in checks["proton_transfers"]])
    return lines + [""]


def failed_checks(out_md: str | Path) -> list[str]:
    """The failed checks recorded beside a written report (its ``.json``); empty when it passed."""
    return list(read_json(Path(out_md).with_suffix(".json"))["failures"])


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
             f"{first.dt_fs:g} fs between frames, {_box_text(first.box)}.",
             f"Engine: {first.provenance.get('engine', '?')}. Dataset checksum `{ds.checksum[:16]}`.",
             f"Generated by `mdhorizon data report {name}` from the stored files only.",
             ""]
    checks = run_checks(ds, max_frames=max(max_frames, 100))
    checks["dataset"] = name
    write_json(out_md.with_suffix(".json"), checks)
    lines += checks_markdown(checks, out_md.with_suffix(".json").name)

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
                  "| trajectory | mean T (K) | std T (K) | mean T first half | mean T second half "
                  "| deviation from target |",
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
            basins = ramachandran_basins(phi, psi).values()
            lines.append(f"| {t.name} | " + " | ".join(f"{v:.3f}" for v in basins) + " |")
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
        lines += ["Nose-Hoover conserved energy (potential + kinetic + heat bath), linear fit over the production "
                  "run.", "",
                  "| trajectory | drift (kJ/mol/ns) | drift (k_B T per degree of freedom per ns) "
                  "| residual std (kJ/mol) |",
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
