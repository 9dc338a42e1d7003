"""The eight MD17 molecules re-simulated offline with GFN2-xTB (tblite through ASE).

MD17 (Chmiela et al. 2017) holds ab-initio (DFT) MD trajectories at 500 K
with a 0.5 fs step, one frame per step.  The files may be unreachable, so this
kind regenerates trajectories of the same shape with a semi-empirical method:

1. The molecule is built from SMILES (``SMILES`` below) with RDKit: explicit
   hydrogens, an ETKDG embedding (seeded) and an MMFF94 pre-optimisation.
   Atom order: RDKit's (heavy atoms in SMILES order, then the hydrogens).
2. Each trajectory rotates that structure at random, adds N(0,
   ``init_noise_A``) noise, draws Maxwell-Boltzmann velocities at
   ``temperature_K`` and equilibrates for ``equilibration_ps`` with ASE's
   Langevin integrator (friction ``equilibration_friction_per_fs``,
   ``fixcm=False``: with ``fixcm=True`` ASE removes the centre-of-mass motion
   but still thermostats 3N degrees of freedom, which over-heats a small
   molecule's internal modes).
3. The centre-of-mass motion and the overall rotation are then removed
   (ASE ``Stationary`` and ``ZeroRotation``) and the velocities rescaled to
   ``temperature_K`` over the 3N - 6 internal degrees of freedom.
4. Production: ``n_frames`` frames, one every ``steps_per_frame`` steps of
   ``timestep_fs``, with the Bussi-Donadio-Parrinello stochastic velocity
   rescaling thermostat (ASE ``Bussi``, time constant ``bussi_taut_fs``; its
   degrees of freedom set to 3N - 6).  A global thermostat scales every
   velocity by one factor, so the zero linear and angular momentum are kept
   (up to the SCF's force noise) and the molecule does not tumble: as in the
   MD17 files, where the molecules hardly rotate (the first version of this
   generator used Langevin dynamics, whose random kicks made benzene turn by
   tens of degrees within a 3000-frame window and put the static baseline's MSE
   at 4.2 A^2, ten times the published errors).
   Forces: tblite's GFN2-xTB (``method``), default accuracy, 300 K electronic
   temperature, one OpenMP thread (two one-thread processes beat one
   two-thread process, and one thread keeps the SCF sums deterministic).

Whole-molecule motion (``motion``):

- ``none`` (the default; every build before 2026-12-06): steps 3-4 above, zero linear and
  angular momentum, 3N - 6 degrees of freedom.  The molecule does not turn (<= 6 degrees per
  1.5 ps), so a static prediction sits at the vibrational floor, 8-100x below the best
  published errors on the real MD17 (the card's calibration table).
- ``thermal``: as a free gas-phase molecule turns.  After step 3 an angular momentum is drawn
  at ``temperature_K`` (each principal component L_i ~ N(0, I_i k_B T), rotational kinetic
  energy 3/2 k_B T on average) and added as a rigid rotation omega x r (omega = I^-1 L; it
  adds exactly 1/2 omega.L to the kinetic energy, since the internal velocities carry no
  angular momentum).  The centre of mass stays at rest; the Bussi thermostat counts the
  3N - 3 degrees of freedom that leaves.  A global thermostat scales every velocity by one
  factor, so the direction of the angular momentum is kept and its size follows the
  canonical temperature.

Bonds: the RDKit bonds of the molecule, less the bond of every *labile* hydrogen: a hydrogen on
O or N that sits in an intramolecular hydrogen bond in the MMFF geometry (H...O/N closer than
``HBOND_MAX_A``: malonaldehyde's enol hydrogen, 1.85 A from the other oxygen; salicylic acid's
phenol hydrogen, 1.70 A).  Such a proton transfers between its two heavy atoms at 500 K, so no fixed
bond to either is true in every frame; the stored list holds only bonds that are.  The labile
hydrogens are named in the provenance (``labile_hydrogens``: hydrogen, donor, acceptor) and the data
report measures how often each sits nearer its acceptor (``proton_transfers``).

Stored: positions (A), velocities (A/fs), the bonds above in ``meta.json`` and
``energies.npy`` (float64 [frames, 3]: potential, kinetic, NaN in kJ/mol;
the thermostat exchanges energy, so there is no conserved energy to store).

Deviations from MD17, with reasons: GFN2-xTB instead of PBE+vdW-TS DFT
(offline, ~100 steps/s for aspirin on one core); several independent
trajectories per molecule instead of one long one (protocol B needs whole
trajectories for train/val/test); malonaldehyde is built in its enol form
(the intramolecular H-bonded tautomer MD17 samples).  ``MD17_FRAMES`` holds
the published frame counts (the ``paper`` suite uses them).
"""

from __future__ import annotations

import os

import numpy as np

from benchmark.data.format import write_trajectory
from benchmark.data.lj import random_rotation
from benchmark.data.water import save_energies

SMILES = {
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
    "benzene": "c1ccccc1",
    "ethanol": "CCO",
    "malonaldehyde": "O=C/C=C\\O",
    "naphthalene": "c1ccc2ccccc2c1",
    "salicylic": "OC(=O)c1ccccc1O",
    "toluene": "Cc1ccccc1",
    "uracil": "O=C1C=CNC(=O)N1",
}
# Frames of the published MD17 files (benzene = the 2017 "benzene_old" file).
MD17_FRAMES = {"aspirin": 211762, "benzene": 627983, "ethanol": 555092, "malonaldehyde": 993237,
               "naphthalene": 326250, "salicylic": 320231, "toluene": 442790, "uracil": 133770}
EV_TO_KJ_PER_MOL = 96.48533212
KB_EV = 8.617333262e-5

DEFAULTS = {
    "molecule": "aspirin",
    "method": "GFN2-xTB",
    "temperature_K": 500.0,
    "timestep_fs": 0.5,
    "steps_per_frame": 1,
    "n_frames": 10000,
    "n_trajectories": 1,
    "equilibration_ps": 5.0,
    "equilibration_friction_per_fs": 0.01,
    "bussi_taut_fs": 100.0,
    "init_noise_A": 0.005,
    "embed_seed": 42,
    "threads": 1,
    "motion": "none",  # "none": no rotation, 3N - 6 degrees of freedom; "thermal": turns freely (docstring)
}
MOTIONS = ("none", "thermal")
# H...acceptor distance (A) in the MMFF geometry below which a hydrogen on O/N is in an intramolecular
# hydrogen bond (malonaldehyde 1.85, salicylic acid 1.70); the geminal H...O contacts of a carboxyl group
# or an amide (2.2-2.5 A) stay above it.
HBOND_MAX_A = 2.0


def check_params(params: dict) -> None:
    """Refuse, before any simulation, a parameter set this generator cannot simulate (the key named)."""
    if params["motion"] not in MOTIONS:
        raise ValueError(f"md17_xtb: params.motion {params['motion']!r} is not one of {MOTIONS}")
    if params["molecule"] not in SMILES:
        raise ValueError(f"md17_xtb: params.molecule {params['molecule']!r} is unknown; valid: {', '.join(SMILES)}")
    if not float(params["temperature_K"]) > 0:
        raise ValueError(f"md17_xtb: params.temperature_K must be positive, got {params['temperature_K']!r}")


def degrees_of_freedom(n_atoms: int, motion: str) -> int:
    """Internal degrees of freedom: 3N less the removed translation (and rotation for ``none``)."""
    return 3 * n_atoms - (6 if motion == "none" else 3)


def add_thermal_rotation(atoms, temperature_K: float, rng: np.random.Generator) -> None:
    """Add a rigid rotation with angular momentum drawn at ``temperature_K`` (module docstring)."""
    from ase import units

    x = atoms.get_positions() - atoms.get_center_of_mass()
    masses = atoms.get_masses()
    inertia = (masses * (x * x).sum(1)).sum() * np.eye(3) - np.einsum("a,ai,aj->ij", masses, x, x)
    moments, axes = np.linalg.eigh(inertia)  # amu A^2
    angular = axes @ (rng.normal(size=3) * np.sqrt(moments * units.kB * temperature_K))  # ASE units
    omega = np.linalg.solve(inertia, angular)
    atoms.set_momenta(atoms.get_momenta() + masses[:, None] * np.cross(omega, x))


def labile_hydrogens(numbers, positions, bonds) -> list[dict]:
    """Hydrogens on O/N in an intramolecular hydrogen bond (module docstring): each as
    ``{"hydrogen", "donor", "acceptor"}`` (atom indices; the acceptor is the nearest other O/N)."""
    numbers, positions = np.asarray(numbers), np.asarray(positions, dtype=np.float64)
    polar = np.flatnonzero(np.isin(numbers, (7, 8)))
    out = []
    for i, j in bonds:
        h, donor = (i, j) if numbers[i] == 1 else (j, i) if numbers[j] == 1 else (None, None)
        if h is None or numbers[donor] not in (7, 8):
            continue
        others = polar[polar != donor]
        if not len(others):
            continue
        dist = np.linalg.norm(positions[others] - positions[h], axis=1)
        if dist.min() < HBOND_MAX_A:
            out.append({"hydrogen": int(h), "donor": int(donor), "acceptor": int(others[np.argmin(dist)])})
    return out


def stored_bonds(bonds, labile: list[dict]) -> list[tuple[int, int]]:
    """The bonds true in every frame: ``bonds`` less those of the labile hydrogens."""
    gone = {frozenset((d["hydrogen"], d["donor"])) for d in labile}
    return [(int(i), int(j)) for i, j in bonds if frozenset((int(i), int(j))) not in gone]


def build_molecule(params: dict):
    """Atomic numbers, positions (A), masses (Da) and bonds of the MMFF-optimised molecule."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    if params["molecule"] not in SMILES:
        raise ValueError(f"md17_xtb: unknown molecule {params['molecule']!r}; valid: {', '.join(SMILES)}")
    mol = Chem.AddHs(Chem.MolFromSmiles(SMILES[params["molecule"]]))
    options = AllChem.ETKDGv3()
    options.randomSeed = int(params["embed_seed"])
    if AllChem.EmbedMolecule(mol, options) != 0:
        raise RuntimeError(f"md17_xtb: RDKit could not embed {params['molecule']}")
    AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
    positions = mol.GetConformer().GetPositions()
    numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
    masses = np.array([a.GetMass() for a in mol.GetAtoms()])
    bonds = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()]
    return numbers, positions, masses, bonds


def _calculator(params: dict):
    from tblite.ase import TBLite

    return TBLite(method=params["method"], verbosity=0)


def simulate_trajectory(params: dict, seed: int, progress=None) -> dict:
    os.environ.setdefault("OMP_NUM_THREADS", str(params["threads"]))
    from ase import Atoms, units
    from ase.md.bussi import Bussi
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
    from threadpoolctl import threadpool_limits

    numbers, base, masses, bonds = build_molecule(params)
    labile = labile_hydrogens(numbers, base, bonds)
    rng = np.random.default_rng(seed)
    centre = base.mean(0)
    start = (base - centre) @ random_rotation(rng).T + centre
    start = start + rng.normal(0.0, params["init_noise_A"], size=start.shape)
    atoms = Atoms(numbers=numbers, positions=start, masses=masses)
    atoms.calc = _calculator(params)
    temperature = params["temperature_K"]
    dt = params["timestep_fs"] * units.fs
    frames, every = int(params["n_frames"]), int(params["steps_per_frame"])
    positions = np.empty((frames, len(atoms), 3), dtype=np.float32)
    velocities = np.empty((frames, len(atoms), 3), dtype=np.float32)
    energies = np.full((frames, 3), np.nan)
    with threadpool_limits(limits=int(params["threads"]), user_api="openmp"):
        thermalize_momenta(atoms, temperature, rng=rng)  # (ase < 3.29: MaxwellBoltzmannDistribution)
        equil = Langevin(atoms, dt, temperature_K=temperature, fixcm=False, rng=rng,
                         friction=params["equilibration_friction_per_fs"] / units.fs)
        equil.run(int(round(params["equilibration_ps"] * 1000 / params["timestep_fs"])))
        Stationary(atoms)
        ZeroRotation(atoms)
        vibration_dof = 3 * len(atoms) - 6
        target_ke = 0.5 * vibration_dof * units.kB * temperature
        atoms.set_momenta(atoms.get_momenta() * np.sqrt(target_ke / atoms.get_kinetic_energy()))
        if params["motion"] == "thermal":
            add_thermal_rotation(atoms, temperature, rng)
        internal_dof = degrees_of_freedom(len(atoms), params["motion"])
        dyn = Bussi(atoms, dt, temperature_K=temperature, taut=params["bussi_taut_fs"] * units.fs, rng=rng)
        dyn.ndof = internal_dof  # ASE counts 3N; the momentum (and rotation) removed leave 3N - 3 (3N - 6)
        dyn.target_kinetic_energy = 0.5 * units.kB * temperature * internal_dof
        for frame in range(frames):
            if frame:
                dyn.run(every)
            positions[frame] = atoms.get_positions()
            velocities[frame] = atoms.get_velocities() * units.fs  # A per ASE time unit -> A/fs
            energies[frame, 0] = atoms.get_potential_energy() * EV_TO_KJ_PER_MOL
            energies[frame, 1] = atoms.get_kinetic_energy() * EV_TO_KJ_PER_MOL
            if progress is not None:
                progress.update(1)
    from importlib.metadata import version

    import ase
    import rdkit

    engine = (f"tblite {version('tblite')} {params['method']} via ASE {ase.__version__}; "
              f"RDKit {rdkit.__version__} ETKDGv3 + MMFF94")
    return {"positions": positions, "velocities": velocities, "energies": energies,
            "atomic_numbers": numbers, "masses": masses, "bonds": stored_bonds(bonds, labile),
            "labile_hydrogens": labile, "engine": engine}


def generate_trajectory(directory, params: dict, index: int, seed: int, progress=None) -> None:
    out = simulate_trajectory(params, seed, progress)
    save_energies(directory, out["energies"])
    write_trajectory(
        directory, out["positions"], velocities=out["velocities"],
        dt_fs=params["timestep_fs"] * params["steps_per_frame"],
        atomic_numbers=out["atomic_numbers"], masses=out["masses"], bonds=out["bonds"],
        provenance={"engine": out["engine"], "system": f"MD17 {params['molecule']} (GFN2-xTB re-simulation)",
                    "smiles": SMILES[params["molecule"]], "seed": seed, "trajectory_index": index,
                    "integrator": ("ASE Langevin (equilibration, fixcm=False), then Bussi (production, "
                                   + ("no rotation)" if params["motion"] == "none" else "thermal rotation)")),
                    "labile_hydrogens": out["labile_hydrogens"],
                    "degrees_of_freedom": degrees_of_freedom(len(out["atomic_numbers"]), params["motion"]),
                    "energies_file": "energies.npy: [frames, 3] potential, kinetic, NaN (kJ/mol)",
                    "params": params},
    )
