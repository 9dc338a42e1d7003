"""The recording loop shared by the OpenMM generators (LJ, water, ALA2), with mid-trajectory checkpoints.

A production run of 10,000 frames takes about an hour per trajectory on one CPU
thread, so a crash or a killed job should cost minutes, not the trajectory:
:class:`FrameCheckpoint` stores the frames recorded so far together with
OpenMM's own context checkpoint (positions, velocities, box, the integrator's
internal state such as the Nose-Hoover chain, random-number state) every
``every`` frames.  A generator that finds a checkpoint written under the same
parameters and seed rebuilds its System and integrator, loads the context
checkpoint and continues recording where it stopped.

A resumed trajectory is the same simulation but not the same bytes: OpenMM's
CPU platform restores positions and velocities exactly, yet the first step
after a restore differs from the uninterrupted one at float rounding (~1e-7 A;
the platform's internal atom reordering and sums start afresh), and MD's chaos
grows that over later frames.  The frames before the resume point are
identical, and ``meta.json`` records the resume points (``resumed_at_frames``)
so such a trajectory is never mistaken for a byte-reproducible one.  An
uninterrupted run writes exactly the bytes it wrote before checkpoints existed.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from benchmark.io import atomic_path, stable_hash

NM_PER_PS_TO_A_PER_FS = 0.01
CHECKPOINT_NAME = "production_checkpoint.npz"  # inside the trajectory's partial directory
CHECKPOINT_EVERY = 500  # production frames between checkpoints (minutes of one CPU thread)


class FrameCheckpoint:
    """Frames recorded so far plus an OpenMM context checkpoint, in one ``.npz`` file.

    ``key`` identifies the run (generator parameters and seed); a file written
    under another key is ignored (and overwritten by the next save), so a
    changed configuration never resumes a stale run.
    """

    def __init__(self, path: str | Path, key: dict, every: int = CHECKPOINT_EVERY):
        self.path, self.key, self.every = Path(path), stable_hash(key), max(1, int(every))
        self.resumed_at: list[int] = []  # frames at which this trajectory was resumed

    def load(self) -> dict | None:
        """{"next_frame", "positions", "velocities", "energies", "context", "extra"} or None."""
        if not self.path.exists():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as f:
                if str(f["key"]) != self.key:
                    return None
                self.resumed_at = [int(k) for k in f["resumed_at"]]
                return {"next_frame": int(f["next_frame"]), "positions": f["positions"],
                        "velocities": f["velocities"], "energies": f["energies"],
                        "context": f["context"].tobytes(), "extra": dict(zip(f["extra_keys"].tolist(),
                                                                              f["extra_values"].tolist()))}
        except (OSError, KeyError, ValueError):  # a truncated or foreign file: start afresh
            return None

    def save(self, next_frame: int, positions, velocities, energies, context, extra: dict) -> None:
        buf = io.BytesIO()
        np.savez(buf, key=np.array(self.key), next_frame=np.array(next_frame),
                 positions=positions[:next_frame], velocities=velocities[:next_frame],
                 energies=energies[:next_frame], resumed_at=np.array(self.resumed_at, dtype=np.int64),
                 context=np.frombuffer(context.createCheckpoint(), dtype=np.uint8),
                 extra_keys=np.array(list(extra), dtype=str),
                 extra_values=np.array([float(v) for v in extra.values()], dtype=np.float64))
        with atomic_path(self.path) as tmp:
            tmp.write_bytes(buf.getvalue())

    def provenance(self) -> dict:
        """``{"resumed_at_frames": [...]}`` for the trajectory's meta.json when it was resumed, else {}."""
        return {"resumed_at_frames": list(self.resumed_at)} if self.resumed_at else {}

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def trajectory_checkpoint(directory, params: dict, seed: int) -> FrameCheckpoint:
    """The checkpoint of one generator run: in its (partial) trajectory directory, keyed by params and seed."""
    return FrameCheckpoint(Path(directory) / CHECKPOINT_NAME, {"params": params, "seed": seed}, CHECKPOINT_EVERY)


def record_frames(context, integrator, n_frames: int, steps_per_frame: int, atoms=None, progress=None,
                  heat_bath: bool = False, checkpoint: FrameCheckpoint | None = None,
                  resume: dict | None = None, extra: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Store a frame every ``steps_per_frame`` steps (the first one before any step).

    Returns positions (A, float32, unwrapped), velocities (A/fs, float32) of ``atoms``
    (all when None) and energies [frames, 3] in kJ/mol: potential, kinetic, and the
    conserved energy (potential + kinetic + the thermostat's heat-bath energy) when
    ``heat_bath`` (Nose-Hoover), else NaN.

    With ``checkpoint``, the frames so far and the context are saved every
    ``checkpoint.every`` frames (``extra``: floats the generator needs to rebuild its
    System, e.g. the box edge).  ``resume`` (a loaded checkpoint, its context already
    restored by the caller) continues from its ``next_frame``.
    """
    from openmm import unit

    sel = slice(None) if atoms is None else atoms
    n = context.getSystem().getNumParticles() if atoms is None else len(atoms)
    positions = np.empty((n_frames, n, 3), dtype=np.float32)
    velocities = np.empty((n_frames, n, 3), dtype=np.float32)
    energies = np.full((n_frames, 3), np.nan)
    start = 0
    if resume is not None:
        start = resume["next_frame"]
        if checkpoint is not None:
            checkpoint.resumed_at.append(start)
        positions[:start], velocities[:start], energies[:start] = (resume["positions"], resume["velocities"],
                                                                   resume["energies"])
        if progress is not None:
            progress.update(start)
    kj = unit.kilojoule_per_mole
    for frame in range(start, n_frames):
        if frame:
            integrator.step(steps_per_frame)
        st = context.getState(getPositions=True, getVelocities=True, getEnergy=True, enforcePeriodicBox=False)
        positions[frame] = st.getPositions(asNumpy=True).value_in_unit(unit.angstrom)[sel]
        velocities[frame] = st.getVelocities(asNumpy=True).value_in_unit(
            unit.nanometer / unit.picosecond)[sel] * NM_PER_PS_TO_A_PER_FS
        energies[frame, 0] = st.getPotentialEnergy().value_in_unit(kj)
        energies[frame, 1] = st.getKineticEnergy().value_in_unit(kj)
        if heat_bath:
            bath = integrator.computeHeatBathEnergy().value_in_unit(kj)
            energies[frame, 2] = energies[frame, 0] + energies[frame, 1] + bath
        if progress is not None:
            progress.update(1)
        if checkpoint is not None and (frame + 1) % checkpoint.every == 0 and frame + 1 < n_frames:
            checkpoint.save(frame + 1, positions, velocities, energies, context, extra or {})
    return positions, velocities, energies
