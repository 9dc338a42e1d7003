"""Rigid-water boxes (TIP3P, TIP4P-Ew) simulated with OpenMM (DoMiNO's water systems).

DoMiNO (Sun et al. 2025) simulates openmmtools ``WaterBox(box_edge=2 nm)`` at
300 K with a Nose-Hoover chain integrator, 2 fs, a frame every 50 steps
(100 fs).  This module builds the same physics with ``openmm.app`` directly:

1. ``Modeller.addSolvent(numAdded=n_molecules)`` tiles OpenMM's bundled
   pre-equilibrated water box (no network) into a cube holding exactly
   ``n_molecules`` waters (258 -> ~2.0 nm edge); the force field is OpenMM's
   ``tip3p.xml`` or ``tip4pew.xml``, PME electrostatics, rigid water
   (SETTLE), a ``cutoff_nm`` real-space cutoff.
2. Each trajectory applies one of the 24 proper rotations of the cube (a
   signed axis permutation, seeded) and N(0, ``init_noise_A``) noise to the
   real atoms, re-imposes the rigid geometry and minimises.
3. NPT equilibration to density: Langevin (middle) integrator and a Monte
   Carlo barostat at ``pressure_bar`` for ``npt_ps``; the box edge is then
   set to its mean over the second half of that run, scaling the molecules'
   centres of mass (rigid molecules stay rigid).
4. NVT: a Nose-Hoover chain integrator (OpenMM ``NoseHooverIntegrator``, as
   DoMiNO) equilibrates ``nvt_equilibration_ps`` and then records
   ``n_frames`` frames every ``steps_per_frame`` steps.

Stored per trajectory (``benchmark.data.format``): real atoms only (O, H, H
per molecule; TIP4P-Ew's massless virtual site M is dropped), UNWRAPPED
positions (OpenMM never wraps the integrated coordinates; ``enforcePeriodicBox
=False``) plus the fixed NVT box, velocities in A/fs, the O-H bonds in
``meta.json``, and ``energies.npy`` (float64 [frames, 3]: potential, kinetic
and the Nose-Hoover conserved energy in kJ/mol) for the validation report.

Deviations from DoMiNO, with reasons:
- TIP4P-Ew uses 258 molecules like TIP3P (issue 3: "same size"); DoMiNO's
  2 nm WaterBox happened to give 251.  ``n_molecules`` changes it.
- The random rotation is restricted to the cube's 24 symmetries: an arbitrary
  rotation of a periodic box breaks the periodic images at the faces.
- An explicit NPT stage fixes the density (DoMiNO ran NVT at the tiled
  box's density, ~0.87 g/cm^3 here).
- Coordinates are stored unwrapped with the box (the authors wrapped them).
"""

from __future__ import annotations

import itertools

import numpy as np

from benchmark.data.format import write_trajectory
from benchmark.data.openmm_md import FrameCheckpoint, record_frames, trajectory_checkpoint
from benchmark.io import atomic_path

AVOGADRO = 6.02214076e23
MODELS = {"tip3p": "tip3p.xml", "tip4pew": "tip4pew.xml"}

BASE_DEFAULTS = {
    "model": "tip3p",
    "n_molecules": 258,
    "temperature_K": 300.0,
    "pressure_bar": 1.0,
    "timestep_fs": 2.0,
    "steps_per_frame": 50,
    "n_frames": 10000,
    "n_trajectories": 8,
    "cutoff_nm": 0.9,
    "ewald_error_tolerance": 5e-4,
    "npt_ps": 20.0,
    "barostat_interval": 25,
    "nvt_equilibration_ps": 5.0,
    "collision_frequency_per_ps": 1.0,
    "init_noise_A": 0.005,
    "threads": 1,
}
RESUMABLE = True  # make_dataset keeps an interrupted trajectory's checkpoint (benchmark.data.openmm_md)


def openmm_seed(seed: int, salt: int = 0) -> int:
    """A positive 31-bit seed for OpenMM (0 would mean 'pick one at random')."""
    return int((seed * 2654435761 + salt * 97 + 12345) % (2**31 - 2)) + 1


def cube_rotation(rng: np.random.Generator) -> np.ndarray:
    """One of the 24 proper rotations mapping a cube onto itself (seeded)."""
    perms = list(itertools.permutations(range(3)))
    while True:
        m = np.zeros((3, 3))
        m[np.arange(3), perms[rng.integers(len(perms))]] = rng.choice([-1.0, 1.0], size=3)
        if np.linalg.det(m) > 0:
            return m


def degrees_of_freedom(system) -> int:
    """3 per massive particle, minus constraints, minus 3 if the centre of mass is fixed."""
    import openmm

    n = sum(1 for i in range(system.getNumParticles())
            if system.getParticleMass(i).value_in_unit(system.getParticleMass(i).unit) > 0)
    dof = 3 * n - system.getNumConstraints()
    if any(isinstance(f, openmm.CMMotionRemover) for f in system.getForces()):
        dof -= 3
    return int(dof)


def save_energies(directory, energies: np.ndarray) -> None:
    """``energies.npy``: float64 [frames, 3] = potential, kinetic, conserved (kJ/mol)."""
    from pathlib import Path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / "energies.npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(energies, dtype=np.float64))


def build_box(params: dict):
    """Topology, positions (nm, numpy) and force field of the tiled water box."""
    import openmm.app as app

    if params["model"] not in MODELS:
        raise ValueError(f"water: unknown model {params['model']!r}; valid: {', '.join(MODELS)}")
    forcefield = app.ForceField(MODELS[params["model"]])
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(forcefield, model=params["model"], numAdded=int(params["n_molecules"]),
                        neutralize=False)
    from openmm import unit

    positions = np.array(modeller.getPositions().value_in_unit(unit.nanometer))
    return modeller.topology, positions, forcefield


def create_system(topology, forcefield, params: dict):
    import openmm.app as app
    from openmm import unit

    system = forcefield.createSystem(topology, nonbondedMethod=app.PME,
                                     nonbondedCutoff=params["cutoff_nm"] * unit.nanometer,
                                     rigidWater=True, constraints=None,
                                     ewaldErrorTolerance=params["ewald_error_tolerance"])
    return system


def _set_box(context, edge_nm: float) -> None:
    import openmm

    context.setPeriodicBoxVectors(openmm.Vec3(edge_nm, 0, 0), openmm.Vec3(0, edge_nm, 0),
                                  openmm.Vec3(0, 0, edge_nm))


def simulate_trajectory(params: dict, seed: int, progress=None, checkpoint: FrameCheckpoint | None = None) -> dict:
    """Run one trajectory; returns real-atom arrays in A, A/fs, the box and energies.

    With ``checkpoint`` the production run is saved every ``checkpoint.every`` frames
    and a matching checkpoint is resumed (equilibration is not repeated).
    """
    import openmm
    from openmm import unit

    temperature = params["temperature_K"] * unit.kelvin
    dt = params["timestep_fs"] * unit.femtosecond
    topology, base, forcefield = build_box(params)
    edge0 = topology.getPeriodicBoxVectors()[0][0].value_in_unit(unit.nanometer)
    if params["cutoff_nm"] >= 0.45 * edge0:
        raise ValueError(f"water: a {params['cutoff_nm']} nm cutoff does not fit a {edge0:.2f} nm box "
                         f"({params['n_molecules']} molecules); lower cutoff_nm or add molecules")
    system = create_system(topology, forcefield, params)
    masses = np.array([system.getParticleMass(i).value_in_unit(unit.dalton)
                       for i in range(system.getNumParticles())])
    real = np.flatnonzero(masses > 0)
    platform = openmm.Platform.getPlatformByName("CPU")
    # DeterministicForces: fixed-order force sums, so the same seed gives the same bytes.
    props = {"Threads": str(params["threads"]), "DeterministicForces": "true"}

    resume = checkpoint.load() if checkpoint is not None else None
    if resume is None:
        positions, velocities, edge = _equilibrate_npt(params, seed, topology, base, forcefield, masses,
                                                       real, platform, props)
    else:
        edge = resume["extra"]["edge_nm"]

    # NVT (Nose-Hoover chain): equilibration, then production.
    system.setDefaultPeriodicBoxVectors(openmm.Vec3(edge, 0, 0), openmm.Vec3(0, edge, 0), openmm.Vec3(0, 0, edge))
    integrator = openmm.NoseHooverIntegrator(temperature, params["collision_frequency_per_ps"] / unit.picosecond, dt)
    context = openmm.Context(system, integrator, platform, props)
    if resume is None:
        _set_box(context, edge)
        context.setPositions(positions * unit.nanometer)
        context.setVelocities(velocities * unit.nanometer / unit.picosecond)
        context.applyConstraints(1e-6)
        context.applyVelocityConstraints(1e-6)
        integrator.step(int(round(params["nvt_equilibration_ps"] * 1000 / params["timestep_fs"])))
    else:
        context.loadCheckpoint(resume["context"])

    pos_out, vel_out, energies = record_frames(context, integrator, params["n_frames"], params["steps_per_frame"],
                                               atoms=real, progress=progress, heat_bath=True,
                                               checkpoint=checkpoint, resume=resume, extra={"edge_nm": edge})

    atomic_numbers = np.array([a.element.atomic_number for a in topology.atoms() if a.element is not None])
    new_index = {int(old): new for new, old in enumerate(real)}
    bonds = [(new_index[b[0].index], new_index[b[1].index]) for b in topology.bonds()
             if b[0].index in new_index and b[1].index in new_index]
    return {"positions": pos_out, "velocities": vel_out, "energies": energies,
            "box": [edge * 10.0] * 3, "atomic_numbers": atomic_numbers, "masses": masses[real],
            "bonds": bonds, "dof": degrees_of_freedom(system), "npt_mean_edge_A": edge * 10.0,
            "engine": f"OpenMM {openmm.__version__} CPU"}


def _equilibrate_npt(params, seed, topology, base, forcefield, masses, real, platform, props):
    """Rotate + perturb the tiled box, minimise, run NPT; positions and velocities (nm, nm/ps)
    rescaled onto the mean box edge of the run's second half, and that edge (nm)."""
    import openmm
    from openmm import unit

    temperature = params["temperature_K"] * unit.kelvin
    dt = params["timestep_fs"] * unit.femtosecond
    edge0 = topology.getPeriodicBoxVectors()[0][0].value_in_unit(unit.nanometer)
    molecules = [[a.index for a in res.atoms()] for res in topology.residues()]
    rng = np.random.default_rng(seed)
    centre = np.full(3, edge0 / 2)
    start = (base - centre) @ cube_rotation(rng).T + centre
    start[real] += rng.normal(0.0, params["init_noise_A"] / 10.0, size=(len(real), 3))

    npt_system = create_system(topology, forcefield, params)
    barostat = openmm.MonteCarloBarostat(params["pressure_bar"] * unit.bar, temperature,
                                         int(params["barostat_interval"]))
    barostat.setRandomNumberSeed(openmm_seed(seed, 1))
    npt_system.addForce(barostat)
    langevin = openmm.LangevinMiddleIntegrator(temperature, params["collision_frequency_per_ps"] / unit.picosecond, dt)
    langevin.setRandomNumberSeed(openmm_seed(seed, 2))
    context = openmm.Context(npt_system, langevin, platform, props)
    context.setPositions(start * unit.nanometer)
    context.applyConstraints(1e-6)
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, 1000)
    context.setVelocitiesToTemperature(temperature, openmm_seed(seed, 3))
    npt_steps = int(round(params["npt_ps"] * 1000 / params["timestep_fs"]))
    chunk = max(1, int(params["barostat_interval"]))
    edges = []
    for step in range(0, npt_steps, chunk):
        langevin.step(min(chunk, npt_steps - step))
        if step >= npt_steps // 2:
            box = context.getState().getPeriodicBoxVectors()
            edges.append(box[0][0].value_in_unit(unit.nanometer))
    state = context.getState(getPositions=True, getVelocities=True)
    edge_now = state.getPeriodicBoxVectors()[0][0].value_in_unit(unit.nanometer)
    edge = float(np.mean(edges)) if edges else edge_now
    positions = np.array(state.getPositions().value_in_unit(unit.nanometer))
    velocities = np.array(state.getVelocities().value_in_unit(unit.nanometer / unit.picosecond))
    for atoms in molecules:  # scale molecular centres of mass onto the mean box
        com = (masses[atoms, None] * positions[atoms]).sum(0) / masses[atoms].sum()
        positions[atoms] += com * (edge / edge_now - 1.0)
    return positions, velocities, edge


def density_g_cm3(masses_dalton, edge_A: float) -> float:
    return float(np.sum(masses_dalton) / AVOGADRO / (edge_A * 1e-8) ** 3)


def generate_trajectory(directory, params: dict, index: int, seed: int, progress=None) -> None:
    """Simulate trajectory ``index`` into ``directory``, resuming its checkpoint when one matches."""
    checkpoint = trajectory_checkpoint(directory, params, seed)
    out = simulate_trajectory(params, seed, progress, checkpoint)
    checkpoint.clear()
    save_energies(directory, out["energies"])
    name = {"tip3p": "TIP3P water", "tip4pew": "TIP4P-Ew water"}[params["model"]]
    write_trajectory(
        directory, out["positions"], velocities=out["velocities"],
        dt_fs=params["timestep_fs"] * params["steps_per_frame"],
        atomic_numbers=out["atomic_numbers"], masses=out["masses"], box=out["box"], bonds=out["bonds"],
        provenance={"engine": out["engine"], "system": name, "seed": seed, "trajectory_index": index,
                    "force_field": MODELS[params["model"]], "integrator": "NoseHooverIntegrator (NVT)",
                    "degrees_of_freedom": out["dof"],
                    "density_g_cm3": density_g_cm3(out["masses"], out["box"][0]),
                    **checkpoint.provenance(),
                    "energies_file": "energies.npy: [frames, 3] potential, kinetic, conserved (kJ/mol)",
                    "params": params},
    )
