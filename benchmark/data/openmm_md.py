"""The recording loop shared by the OpenMM generators (LJ, water, ALA2)."""

from __future__ import annotations

import numpy as np

NM_PER_PS_TO_A_PER_FS = 0.01


def record_frames(context, integrator, n_frames: int, steps_per_frame: int, atoms=None, progress=None,
                  heat_bath: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Store a frame every ``steps_per_frame`` steps (the first one before any step).

    Returns positions (A, float32, unwrapped), velocities (A/fs, float32) of ``atoms``
    (all when None) and energies [frames, 3] in kJ/mol: potential, kinetic, and the
    conserved energy (potential + kinetic + the thermostat's heat-bath energy) when
    ``heat_bath`` (Nose-Hoover), else NaN.
    """
    from openmm import unit

    sel = slice(None) if atoms is None else atoms
    n = context.getSystem().getNumParticles() if atoms is None else len(atoms)
    positions = np.empty((n_frames, n, 3), dtype=np.float32)
    velocities = np.empty((n_frames, n, 3), dtype=np.float32)
    energies = np.full((n_frames, 3), np.nan)
    kj = unit.kilojoule_per_mole
    for frame in range(n_frames):
        if frame:
            integrator.step(steps_per_frame)
        st = context.getState(getPositions=True, getVelocities=True, getEnergy=True, enforcePeriodicBox=False)
        positions[frame] = st.getPositions(asNumpy=True).value_in_unit(unit.angstrom)[sel]
        velocities[frame] = st.getVelocities(asNumpy=True).value_in_unit(
            unit.nanometer / unit.picosecond)[sel] * NM_PER_PS_TO_A_PER_FS
        energies[frame, 0] = st.getPotentialEnergy().value_in_unit(kj)
        energies[frame, 1] = st.getKineticEnergy().value_in_unit(kj)
        if heat_bath:
            energies[frame, 2] = energies[frame, 0] + energies[frame, 1] + integrator.computeHeatBathEnergy().value_in_unit(kj)
        if progress is not None:
            progress.update(1)
    return positions, velocities, energies
