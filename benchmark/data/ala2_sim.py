"""Alanine dipeptide (ACE-ALA-NME, 22 atoms) in implicit solvent, simulated with OpenMM.

The public ALA2 data set used by GF-NODE and DoMiNO (mdshare, 3 x 250 ns,
1 ps per frame, 300 K, AMBER ff99SB-ILDN, TIP3P) may be unreachable; this kind
regenerates a data set of the same shape offline: OpenMM's ``amber14-all.xml``
(ff14SB) with the OBC2 generalised-Born implicit solvent
(``implicit/obc2.xml``), no cutoff, bonds to hydrogen constrained, a Langevin
(middle) integrator at 300 K with a 2 fs step, a frame every 500 steps (1 ps),
3 independent runs.  The friction is high (``friction_per_ps`` 91/ps) so that
the solvent's drag is felt as in water: with OpenMM's usual 1/ps the peptide
rotates almost ballistically in implicit solvent (atoms moved up to 7.8 A
between two 1 ps frames in a 2 ns test run), unlike the explicit-water data.

The peptide is the PDB text below (no network, no PDBFixer): its atom order
and names are those of mdshare's ``alanine-dipeptide-nowater.pdb``, so the
dihedral indices of the reference metrics hold (phi = atoms 4, 6, 8, 14;
psi = 6, 8, 14, 16, 0-based).  The coordinates were made once with RDKit
(ETKDG from ``CC(=O)N[C@@H](C)C(=O)NC``, MMFF) and relaxed with this force
field; they are frozen here so regeneration does not depend on RDKit.

Each run starts from a random rotation of that structure plus N(0,
``init_noise_A``) noise (as DoMiNO), is minimised, given Maxwell-Boltzmann
velocities and equilibrated for ``equilibration_ps`` before ``n_frames``
frames are recorded.  Stored: positions (A, the molecule is not recentred),
velocities (A/fs; LangevinMiddleIntegrator reports half-step velocities),
bonds in ``meta.json`` and ``energies.npy`` (float64 [frames, 3]: potential,
kinetic, NaN; a Langevin run has no conserved energy).

Deviations from the public data set, with reasons: implicit instead of
explicit solvent (a 22-atom system runs ~100x faster than a solvated box on
the 2-core CPU the default suite targets; issue 3), ff14SB instead of
ff99SB-ILDN (the force field OpenMM ships).  The kind's defaults are the
published sizes (3 x 250,000 frames); suites choose smaller ones.
"""

from __future__ import annotations

import io

import numpy as np

from benchmark.data.format import write_trajectory
from benchmark.data.lj import random_rotation
from benchmark.data.openmm_md import FrameCheckpoint, record_frames, trajectory_checkpoint
from benchmark.data.water import degrees_of_freedom, openmm_seed, save_energies

PDB = """\
ATOM      1 HH31 ACE A   1      -0.298  -3.987  -1.608  1.00  0.00           H
ATOM      2  CH3 ACE A   1      -0.357  -3.260  -0.799  1.00  0.00           C
ATOM      3 HH32 ACE A   1      -1.394  -3.414  -0.500  1.00  0.00           H
ATOM      4 HH33 ACE A   1       0.394  -3.389  -0.019  1.00  0.00           H
ATOM      5  C   ACE A   1      -0.266  -1.800  -1.309  1.00  0.00           C
ATOM      6  O   ACE A   1       0.645  -1.505  -2.094  1.00  0.00           O
ATOM      7  N   ALA A   2      -1.088  -0.816  -0.796  1.00  0.00           N
ATOM      8  H   ALA A   2      -1.965  -1.078  -0.369  1.00  0.00           H
ATOM      9  CA  ALA A   2      -0.746   0.580  -0.872  1.00  0.00           C
ATOM     10  HA  ALA A   2      -0.407   0.659  -1.905  1.00  0.00           H
ATOM     11  CB  ALA A   2      -2.049   1.490  -0.658  1.00  0.00           C
ATOM     12  HB1 ALA A   2      -2.415   1.383   0.363  1.00  0.00           H
ATOM     13  HB2 ALA A   2      -2.846   1.092  -1.287  1.00  0.00           H
ATOM     14  HB3 ALA A   2      -1.744   2.511  -0.888  1.00  0.00           H
ATOM     15  C   ALA A   2       0.353   1.044   0.065  1.00  0.00           C
ATOM     16  O   ALA A   2       0.771   2.232  -0.063  1.00  0.00           O
ATOM     17  N   NME A   3       0.920   0.221   0.945  1.00  0.00           N
ATOM     18  H   NME A   3       0.680  -0.757   0.870  1.00  0.00           H
ATOM     19  C   NME A   3       1.752   0.655   2.036  1.00  0.00           C
ATOM     20 HH31 NME A   3       2.026  -0.094   2.779  1.00  0.00           H
ATOM     21 HH32 NME A   3       2.751   0.947   1.711  1.00  0.00           H
ATOM     22 HH33 NME A   3       1.242   1.469   2.550  1.00  0.00           H
END
"""

PHI = (4, 6, 8, 14)
PSI = (6, 8, 14, 16)

DEFAULTS = {
    "temperature_K": 300.0,
    "timestep_fs": 2.0,
    "steps_per_frame": 500,
    "n_frames": 250000,
    "n_trajectories": 3,
    "equilibration_ps": 100.0,
    "friction_per_ps": 91.0,
    "init_noise_A": 0.005,
    "threads": 1,
}
RESUMABLE = True  # make_dataset keeps an interrupted trajectory's checkpoint (benchmark.data.openmm_md)


def build_system():
    """Topology, positions (A, numpy) and the amber14 + OBC2 system of the peptide."""
    import openmm.app as app
    from openmm import unit

    pdb = app.PDBFile(io.StringIO(PDB))
    forcefield = app.ForceField("amber14-all.xml", "implicit/obc2.xml")
    system = forcefield.createSystem(pdb.topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds)
    positions = np.array(pdb.getPositions().value_in_unit(unit.angstrom))
    return pdb.topology, positions, system


def simulate_trajectory(params: dict, seed: int, progress=None, checkpoint: FrameCheckpoint | None = None) -> dict:
    """Run one trajectory; with ``checkpoint``, save every ``checkpoint.every`` frames and resume a match."""
    import openmm
    from openmm import unit

    topology, base, system = build_system()
    temperature = params["temperature_K"] * unit.kelvin
    integrator = openmm.LangevinMiddleIntegrator(temperature, params["friction_per_ps"] / unit.picosecond,
                                                 params["timestep_fs"] * unit.femtosecond)
    integrator.setRandomNumberSeed(openmm_seed(seed, 1))
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"),
                             {"Threads": str(params["threads"]), "DeterministicForces": "true"})
    resume = checkpoint.load() if checkpoint is not None else None
    if resume is None:
        rng = np.random.default_rng(seed)
        centre = base.mean(0)
        start = (base - centre) @ random_rotation(rng).T + centre
        start = start + rng.normal(0.0, params["init_noise_A"], size=start.shape)
        context.setPositions(start / 10.0 * unit.nanometer)
        context.applyConstraints(1e-6)
        openmm.LocalEnergyMinimizer.minimize(context, 1.0, 1000)
        context.setVelocitiesToTemperature(temperature, openmm_seed(seed, 2))
        integrator.step(int(round(params["equilibration_ps"] * 1000 / params["timestep_fs"])))
    else:
        context.loadCheckpoint(resume["context"])

    n = system.getNumParticles()
    positions, velocities, energies = record_frames(context, integrator, params["n_frames"], params["steps_per_frame"],
                                                    progress=progress, checkpoint=checkpoint, resume=resume)
    atoms = list(topology.atoms())
    return {"positions": positions, "velocities": velocities, "energies": energies,
            "atomic_numbers": [a.element.atomic_number for a in atoms],
            "masses": [system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(n)],
            "bonds": [(b[0].index, b[1].index) for b in topology.bonds()],
            "dof": degrees_of_freedom(system), "engine": f"OpenMM {openmm.__version__} CPU"}


def generate_trajectory(directory, params: dict, index: int, seed: int, progress=None) -> None:
    """Simulate trajectory ``index`` into ``directory``, resuming its checkpoint when one matches."""
    checkpoint = trajectory_checkpoint(directory, params, seed)
    out = simulate_trajectory(params, seed, progress, checkpoint)
    checkpoint.clear()
    save_energies(directory, out["energies"])
    write_trajectory(
        directory, out["positions"], velocities=out["velocities"],
        dt_fs=params["timestep_fs"] * params["steps_per_frame"],
        atomic_numbers=out["atomic_numbers"], masses=out["masses"], bonds=out["bonds"],
        provenance={"engine": out["engine"], "system": "alanine dipeptide (ACE-ALA-NME)",
                    "force_field": "amber14-all.xml + implicit/obc2.xml", "seed": seed,
                    "trajectory_index": index, "integrator": "LangevinMiddleIntegrator",
                    "degrees_of_freedom": out["dof"], "phi_atoms": list(PHI), "psi_atoms": list(PSI),
                    "energies_file": "energies.npy: [frames, 3] potential, kinetic, NaN (kJ/mol)",
                    **checkpoint.provenance(),
                    "params": params},
    )
