"""Lennard-Jones argon simulated with OpenMM (DoMiNO's LJ system).

Physics follows openmmtools' ``LennardJonesFluid`` as used by DoMiNO (Sun et
al. 2025): argon (mass 39.9 Da, sigma 3.4 A, epsilon 0.238 kcal/mol), cubic box
from the reduced density, cutoff 3 sigma with the potential shifted to zero at
the cutoff (``shift=True``), a Nose-Hoover chain integrator at 100 K with a
2 fs step, a frame stored every 50 steps (100 fs).  Each trajectory starts from
a random rotation of a fixed initial structure plus N(0, 0.005 A) noise, is
energy-minimised, given Maxwell-Boltzmann velocities, equilibrated for
``equilibration_steps`` (10 ps) with the thermostat, then recorded.

No centre-of-mass drift: the Nose-Hoover thermostat conserves the total momentum, so the net
momentum that ``setVelocitiesToTemperature`` leaves would carry the whole box along for the
whole run (0.24-0.64 A/ps in the builds made before 2026-12-06, 3.5-6.5 % of the kinetic
energy).  The generator zeroes it after the velocities are drawn and again after
equilibration, and an OpenMM ``CMMotionRemover`` (every step) keeps it at zero; the
thermostat then counts 3N - 3 degrees of freedom (OpenMM subtracts 3 for the remover),
recorded as ``degrees_of_freedom`` in each trajectory's provenance.

State point (``phase``): DoMiNO's reduced density 0.50 at T* = 0.835 (100 K) lies inside the
liquid-vapour coexistence region of this potential (vapour rho* ~0.01-0.02, liquid ~0.72-0.75),
so its box holds a liquid with a vapour cavity, as the authors' code does; it is declared
``phase: two_phase`` (the default, DoMiNO's).  ``phase: one_phase_liquid`` declares a
homogeneous liquid; :func:`check_params` refuses such a declaration below the coexisting liquid
density (a coarse guard before any simulation; the data report checks S(k_min) on the build).

Deviation: the force field is written directly with OpenMM's
``CustomNonbondedForce`` (same energy expression) instead of importing
openmmtools, which pulls a large dependency tree for one test system.
Coordinates are stored UNWRAPPED with the box (the authors wrapped them).

The same bytes on every processor: by default (``platform: Reference``) the
trajectories are integrated by OpenMM's double-precision Reference platform,
which computes 1/r with ``sqrt`` instead of the CPU platform's vendor-specific
reciprocal-square-root estimate (README, "Simulated data depend on the
processor"), and the initial rotation is drawn and applied in exactly rounded
scalar/elementwise arithmetic (:func:`exact_random_rotation`,
:func:`rotate_exact`) instead of LAPACK/BLAS, whose kernels differ between
processors.  Measured on an AMD EPYC: the same checksum with OpenBLAS forced to
its Prescott, Haswell and SkylakeX kernels and numpy's AVX-512 loops disabled
(``python -m benchmark.data.portability``).  What remains processor-dependent is
glibc's choice of ``exp``/``log`` variant (FMA or not), the same on every x86-64
with AVX2 and FMA, Intel or AMD.  Cost: 2.4x the CPU platform's time on this
system (828 vs 2010 steps/s on one AMD EPYC thread).  ``platform: CPU`` keeps
the faster, vendor-dependent path (builds made before 2026-12-03 used it).
"""

from __future__ import annotations

import numpy as np

from benchmark.data.format import write_trajectory
from benchmark.data.openmm_md import FrameCheckpoint, record_frames, trajectory_checkpoint

ARGON = {"mass": 39.9, "sigma_A": 3.4, "epsilon_kcal": 0.238, "atomic_number": 18}

DEFAULTS = {
    "n_particles": 258,
    "reduced_density": 0.50,
    "cutoff_sigma": 3.0,
    "temperature_K": 100.0,
    "timestep_fs": 2.0,
    "steps_per_frame": 50,
    "n_frames": 10000,
    "n_trajectories": 8,
    "init_noise_A": 0.005,
    "collision_frequency_per_ps": 1.0,
    "equilibration_steps": 5000,  # 10 ps at 2 fs: reach 100 K before the first recorded frame
    "threads": 1,  # CPU platform only
    # "Reference": OpenMM's double-precision reference kernels, the same bytes on any x86-64
    # processor (2.4x slower than "CPU" here); "CPU": the vectorised platform, whose builds
    # differ between processor vendors (module docstring).
    "platform": "Reference",
    # "two_phase": DoMiNO's state point, liquid + vapour (module docstring); "one_phase_liquid":
    # a homogeneous liquid, checked by the data report (structure factor at the smallest k).
    "phase": "two_phase",
}
PLATFORMS = ("Reference", "CPU")
PHASES = ("two_phase", "one_phase_liquid")
# Coexisting liquid density of the 3-sigma shifted LJ potential near T* = 0.835 (the low end of
# 0.72-0.75); a declared one-phase liquid below it would separate into liquid and vapour.
LIQUID_COEXISTENCE_RHO = 0.72
MAX_REDUCED_DENSITY = 1.2  # above this (T* ~ 0.8) the LJ system is a compressed solid, not a fluid
RESUMABLE = True  # make_dataset keeps an interrupted trajectory's checkpoint (benchmark.data.openmm_md)


def vendor_independent(params: dict) -> bool:
    """Reference-platform builds are the same bytes on every x86-64 processor (module docstring)."""
    return params["platform"] == "Reference"


def check_params(params: dict) -> None:
    """Refuse, before any simulation, a parameter set this generator cannot simulate (the key named)."""
    name = "lj_argon"
    if params["platform"] not in PLATFORMS:
        raise ValueError(f"{name}: params.platform {params['platform']!r} is not one of {PLATFORMS}")
    if params["phase"] not in PHASES:
        raise ValueError(f"{name}: params.phase {params['phase']!r} is not one of {PHASES}")
    if not int(params["n_particles"]) >= 2:
        raise ValueError(f"{name}: params.n_particles must be at least 2, got {params['n_particles']!r}")
    if not float(params["temperature_K"]) > 0:
        raise ValueError(f"{name}: params.temperature_K must be positive, got {params['temperature_K']!r}")
    rho = float(params["reduced_density"])
    if not 0 < rho <= MAX_REDUCED_DENSITY:
        raise ValueError(f"{name}: params.reduced_density {rho} is not a fluid state point this kind can "
                         f"simulate; use a value in (0, {MAX_REDUCED_DENSITY}]")
    if params["phase"] == "one_phase_liquid" and rho < LIQUID_COEXISTENCE_RHO:
        raise ValueError(f"{name}: params.reduced_density {rho} with phase 'one_phase_liquid' lies in the "
                         f"liquid-vapour coexistence region (liquid branch rho* ~0.72-0.75 at T* 0.835): use "
                         f"reduced_density >= {LIQUID_COEXISTENCE_RHO} (liquid argon ~0.78-0.84) or phase 'two_phase'")
    edge = box_edge_A(int(params["n_particles"]), rho)
    cutoff = float(params["cutoff_sigma"]) * ARGON["sigma_A"]
    if cutoff >= edge / 2:
        raise ValueError(f"{name}: box edge {edge:.1f} A is too small for a {cutoff:.1f} A cutoff "
                         f"(params.n_particles, params.cutoff_sigma); raise n_particles or lower cutoff_sigma")


def internal_dof(n_particles: int) -> int:
    """Degrees of freedom of the thermostat and the temperature: 3N less the removed centre-of-mass motion."""
    return 3 * n_particles - 3


def zero_momentum(context) -> None:
    """Subtract the centre-of-mass velocity from every atom (all masses are equal here).

    The mean is taken with ``math.fsum`` (exactly rounded) and subtracted elementwise, so the result
    is the same bytes on every processor (no BLAS, no SIMD-dependent summation order)."""
    import math

    from openmm import unit

    v = context.getState(getVelocities=True).getVelocities(asNumpy=True).value_in_unit(
        unit.nanometer / unit.picosecond)
    v = np.array(v, dtype=np.float64)
    mean = np.array([math.fsum(v[:, k]) / len(v) for k in range(3)])
    context.setVelocities((v - mean) * unit.nanometer / unit.picosecond)


def box_edge_A(n_particles: int, reduced_density: float) -> float:
    return float((n_particles / reduced_density) ** (1.0 / 3.0) * ARGON["sigma_A"])


def initial_structure(n_particles: int, edge_A: float, rng: np.random.Generator) -> np.ndarray:
    """Atoms on a jittered cubic lattice filling the box (no overlaps), in Angstrom."""
    per_side = int(np.ceil(n_particles ** (1.0 / 3.0)))
    grid = np.stack(np.meshgrid(*[np.arange(per_side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    chosen = grid[rng.permutation(len(grid))[:n_particles]]
    spacing = edge_A / per_side
    return (chosen + 0.5) * spacing + rng.normal(0.0, 0.05 * spacing, size=(n_particles, 3))


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def exact_random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation from a random unit quaternion, in scalar float arithmetic.

    Unlike :func:`random_rotation` (a LAPACK QR, whose last bits depend on the BLAS kernel the
    processor selects), every operation here is exactly rounded IEEE arithmetic, so the matrix is
    the same on every machine."""
    w, x, y, z = (float(v) for v in rng.normal(size=4))
    norm = float(np.sqrt(w * w + x * x + y * y + z * z))
    w, x, y, z = w / norm, x / norm, y / norm, z / norm
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def rotate_exact(points: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """``points @ rotation.T`` with elementwise products and sums in a fixed order (no BLAS:
    a matrix product's kernel, and so its last bits, depends on the processor)."""
    return (points[:, 0:1] * rotation[:, 0] + points[:, 1:2] * rotation[:, 1]) + points[:, 2:3] * rotation[:, 2]


def build_system(params: dict):
    import openmm
    from openmm import unit

    n = params["n_particles"]
    edge_nm = box_edge_A(n, params["reduced_density"]) / 10.0
    sigma_nm = ARGON["sigma_A"] / 10.0
    cutoff_nm = params["cutoff_sigma"] * sigma_nm
    if cutoff_nm >= edge_nm / 2:
        raise ValueError(f"lj_argon: box edge {edge_nm * 10:.1f} A is too small for a "
                         f"{cutoff_nm * 10:.1f} A cutoff; raise n_particles or lower cutoff_sigma")
    system = openmm.System()
    system.setDefaultPeriodicBoxVectors(openmm.Vec3(edge_nm, 0, 0), openmm.Vec3(0, edge_nm, 0),
                                        openmm.Vec3(0, 0, edge_nm))
    # shift=True: the pair energy is shifted so that it vanishes at the cutoff.
    energy = "4*epsilon*((sigma/r)^12-(sigma/r)^6) - 4*epsilon*((sigma/rc)^12-(sigma/rc)^6)"
    force = openmm.CustomNonbondedForce(energy)
    force.addGlobalParameter("epsilon", ARGON["epsilon_kcal"] * 4.184)
    force.addGlobalParameter("sigma", sigma_nm)
    force.addGlobalParameter("rc", cutoff_nm)
    force.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
    force.setCutoffDistance(cutoff_nm * unit.nanometer)
    for _ in range(n):
        system.addParticle(ARGON["mass"])
        force.addParticle([])
    system.addForce(force)
    system.addForce(openmm.CMMotionRemover(1))  # no centre-of-mass drift; the thermostat counts 3N - 3
    return system, edge_nm


def simulate_trajectory(params: dict, seed: int, progress=None, checkpoint: FrameCheckpoint | None = None) -> dict:
    """Run one trajectory; returns positions/velocities in A and A/fs (float32).

    With ``checkpoint``, save every ``checkpoint.every`` frames and resume a matching one.
    """
    import openmm
    from openmm import unit

    check_params(params)
    n = params["n_particles"]
    system, edge_nm = build_system(params)
    integrator = openmm.NoseHooverIntegrator(params["temperature_K"] * unit.kelvin,
                                             params["collision_frequency_per_ps"] / unit.picosecond,
                                             params["timestep_fs"] * unit.femtosecond)
    properties = ({"Threads": str(params["threads"]), "DeterministicForces": "true"}
                  if params["platform"] == "CPU" else {})
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName(params["platform"]), properties)
    resume = checkpoint.load() if checkpoint is not None else None
    if resume is None:
        # The initial structure is shared by all trajectories of a dataset (seeded by the
        # dataset seed); each trajectory rotates it and adds noise with its own seed.
        base = initial_structure(n, edge_nm * 10, np.random.default_rng(params["structure_seed"]))
        rng = np.random.default_rng(seed)
        centre = np.full(3, edge_nm * 5)
        start = rotate_exact(base - centre, exact_random_rotation(rng)) + centre
        start = start + rng.normal(0.0, params["init_noise_A"], size=start.shape)
        context.setPositions(start / 10.0 * unit.nanometer)
        openmm.LocalEnergyMinimizer.minimize(context, 1.0, 1000)
        context.setVelocitiesToTemperature(params["temperature_K"] * unit.kelvin, int(seed % 2**31))
        zero_momentum(context)  # the drawn velocities carry a net momentum (module docstring)
        # Minimisation leaves the potential energy at its minimum, so velocities at T alone give
        # ~T/2 after equipartition: equilibrate with the thermostat before recording.
        integrator.step(params["equilibration_steps"])
        zero_momentum(context)
    else:
        context.loadCheckpoint(resume["context"])
    positions, velocities, _ = record_frames(context, integrator, params["n_frames"], params["steps_per_frame"],
                                             progress=progress, checkpoint=checkpoint, resume=resume)
    return {"positions": positions, "velocities": velocities, "box": [edge_nm * 10] * 3,
            "engine": f"OpenMM {openmm.__version__} {params['platform']}"}


def generate_trajectory(directory, params: dict, index: int, seed: int, progress=None) -> None:
    """Simulate trajectory ``index`` into ``directory``, resuming its checkpoint when one matches."""
    checkpoint = trajectory_checkpoint(directory, params, seed)
    out = simulate_trajectory(params, seed, progress, checkpoint)
    checkpoint.clear()
    n = params["n_particles"]
    write_trajectory(
        directory, out["positions"], velocities=out["velocities"],
        dt_fs=params["timestep_fs"] * params["steps_per_frame"],
        atomic_numbers=[ARGON["atomic_number"]] * n, masses=[ARGON["mass"]] * n, box=out["box"],
        provenance={"engine": out["engine"], "system": "Lennard-Jones argon", "seed": seed,
                    "trajectory_index": index, "params": params,
                    "integrator": "NoseHooverIntegrator (velocities at the positions' time) + CMMotionRemover",
                    "degrees_of_freedom": internal_dof(n), **checkpoint.provenance()},
    )
