"""The simulated datasets (water, ALA2, MD17-xTB) on cheap variants: physics, determinism, resume.

Each cheap variant runs the real generator (OpenMM or tblite GFN2-xTB) with
tiny sizes, so these tests check the same code the default suite runs.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY_LJ

from benchmark.data import registry
from benchmark.data.format import open_dataset
from benchmark.data.observables import (
    density_g_cm3,
    dihedrals,
    max_frame_displacement,
    min_pair_distance,
    ramachandran_basins,
    rdf,
    temperature_series,
)
from benchmark.data.registry import make_dataset
from benchmark.data.report import write_report

# 64 molecules need a 0.55 nm cutoff to fit the ~1.25 nm box; 10 ps of NPT reach the density.
CHEAP = {
    "tip3p_water": {"n_molecules": 64, "cutoff_nm": 0.55, "npt_ps": 10.0, "nvt_equilibration_ps": 1.0,
                    "n_frames": 40, "steps_per_frame": 10, "n_trajectories": 1},
    "tip4pew_water": {"n_molecules": 64, "cutoff_nm": 0.55, "npt_ps": 10.0, "nvt_equilibration_ps": 1.0,
                      "n_frames": 40, "steps_per_frame": 10, "n_trajectories": 1},
    "ala2_sim": {"n_frames": 100, "steps_per_frame": 25, "equilibration_ps": 2.0, "n_trajectories": 2},
    # Strong coupling so a 500-frame run samples its temperature; ethanol is the cheapest molecule.
    "md17_xtb": {"molecule": "ethanol", "n_frames": 500, "equilibration_ps": 0.25,
                 "equilibration_friction_per_fs": 0.05, "bussi_taut_fs": 20.0, "n_trajectories": 2},
}
TARGET_K = {"tip3p_water": 300.0, "tip4pew_water": 300.0, "ala2_sim": 300.0, "md17_xtb": 500.0}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim")
    return {kind: make_dataset(root / kind, kind, kind, params, seed=0, progress=False)
            for kind, params in CHEAP.items()}


@pytest.mark.parametrize("kind", list(CHEAP))
def test_registered_with_graph(kind):
    spec = registry.get_kind(kind)
    assert spec.periodic == kind.endswith("water")
    assert spec.graph == ("radius" if spec.periodic else "bonds")
    assert {"n_trajectories", "n_frames"} <= set(spec.defaults)


@pytest.mark.parametrize("kind", list(CHEAP))
def test_temperature_and_no_overlaps(datasets, kind):
    ds = datasets[kind]
    temps = np.concatenate([temperature_series(t) for t in ds.trajectories()])
    assert abs(temps.mean() / TARGET_K[kind] - 1) < 0.10, temps.mean()
    for t in ds.trajectories():
        assert np.isfinite(np.asarray(t.positions)).all()
        assert min_pair_distance(t) > 0.7
        assert t.positions.dtype == np.float32 and t.velocities.dtype == np.float32


@pytest.mark.parametrize("kind", ["tip3p_water", "tip4pew_water"])
def test_water_box(datasets, kind):
    ds = datasets[kind]
    t = ds.trajectory(0)
    assert t.n_atoms == 3 * 64  # real atoms only: TIP4P-Ew's virtual site is dropped
    assert list(t.atomic_numbers[:6]) == [8, 1, 1, 8, 1, 1] and t.masses.min() > 0.9
    assert 0.9 < density_g_cm3(t) < 1.1
    assert len(t.bonds) == 2 * 64
    oh = np.linalg.norm(t.positions[:, t.bonds[:, 0]] - t.positions[:, t.bonds[:, 1]], axis=-1)
    assert np.allclose(oh, 0.9572, atol=2e-3)  # rigid O-H, stored unwrapped: never split across the box
    # Unwrapped: atoms move continuously (a wrap would jump by about a box edge).
    assert max_frame_displacement(t) < 3.0
    r, g = rdf([t], 8, 6.0)
    assert 2.6 < r[np.argmax(g)] < 3.0  # O-O first peak of liquid water ~2.8 A


def test_ala2_structure(datasets):
    ds = datasets["ala2_sim"]
    t = ds.trajectory(0)
    assert t.n_atoms == 22 and t.box is None and len(t.bonds) == 21
    assert list(t.atomic_numbers[[4, 6, 8, 14, 16]]) == [6, 7, 6, 6, 7]  # C N CA C N of phi/psi
    phi, psi = dihedrals(t.positions, (4, 6, 8, 14)), dihedrals(t.positions, (6, 8, 14, 16))
    assert np.all(np.abs(phi) <= 180) and np.all(np.abs(psi) <= 180)
    pops = ramachandran_basins(phi, psi)
    assert abs(sum(pops.values()) - 1) < 1e-9
    assert (phi < 0).mean() > 0.5  # L-alanine lives mostly at negative phi


def test_md17_xtb_bonds(datasets):
    t = datasets["md17_xtb"].trajectory(0)
    assert sorted(t.atomic_numbers.tolist()) == [1] * 6 + [6, 6, 8]
    d = np.linalg.norm(t.positions[:, t.bonds[:, 0]] - t.positions[:, t.bonds[:, 1]], axis=-1)
    assert 0.85 < d.min() and d.max() < 1.8
    assert t.dt_fs == 0.5


def test_md17_xtb_does_not_tumble(datasets):
    """Production keeps zero linear and angular momentum (global Bussi thermostat): a molecule's
    thermal angular momentum at 500 K is ~0.1 amu A^2/fs; a Langevin run's wanders that much."""
    t = datasets["md17_xtb"].trajectory(0)
    x, v, m = np.asarray(t.positions, float), np.asarray(t.velocities, float), np.asarray(t.masses, float)
    centre = (x * m[None, :, None]).sum(1) / m.sum()
    angular = np.cross(x - centre[:, None], v * m[None, :, None]).sum(1)
    assert np.abs(angular).max() < 1e-3
    assert np.abs(centre - centre[0]).max() < 1e-3
    assert t.provenance["degrees_of_freedom"] == 3 * t.n_atoms - 6


@pytest.mark.parametrize("kind", ["tip3p_water", "ala2_sim", "md17_xtb"])
def test_same_seed_is_byte_identical(datasets, tmp_path, kind):
    params = dict(CHEAP[kind], n_trajectories=1)
    if kind == "tip3p_water":
        params.update(npt_ps=1.0, n_frames=10)
    first = make_dataset(tmp_path / "a", kind, kind, params, seed=3, progress=False)
    again = make_dataset(tmp_path / "b", kind, kind, params, seed=3, progress=False)
    assert first.manifest["files"] == again.manifest["files"]
    assert first.checksum == again.checksum
    other = make_dataset(tmp_path / "c", kind, kind, params, seed=4, progress=False)
    assert other.checksum != first.checksum


def test_parallel_build_is_byte_identical(lj_dataset, tmp_path, monkeypatch):
    """--jobs 2: one process per trajectory, the same files as the sequential build; a third
    trajectory waits for a free worker; every frame reaches the parent's progress bar."""
    class Bar:
        n = 0

        def update(self, k=1):
            self.n += k

        def close(self):
            pass

    bar = Bar()
    monkeypatch.setattr(registry, "tqdm", lambda **kw: bar)
    par = make_dataset(tmp_path / "par", "lj_tiny", "lj_argon", TINY_LJ, seed=0, jobs=2)
    assert par.manifest["files"] == lj_dataset.manifest["files"]
    assert par.checksum == lj_dataset.checksum
    assert bar.n == TINY_LJ["n_trajectories"] * TINY_LJ["n_frames"]


def test_lj_rotation_is_exact_arithmetic():
    """LJ's initial rotation: a proper rotation, applied as the matrix product would, but without BLAS."""
    from benchmark.data.lj import exact_random_rotation, rotate_exact

    rot = exact_random_rotation(np.random.default_rng(3))
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-14)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    points = np.random.default_rng(4).normal(size=(50, 3))
    np.testing.assert_allclose(rotate_exact(points, rot), points @ rot.T, rtol=0, atol=1e-13)


def test_lj_reference_build_matches_the_recorded_bytes():
    """The LJ generator (OpenMM Reference platform, the default) still writes the bytes recorded in
    benchmark.data.portability: a change to the generator, or a machine that does not reproduce it,
    fails here in seconds rather than as an `other_build` after a 40-minute build. When the
    generator changes on purpose, record the new checksums and rerun every LJ cell."""
    import openmm

    from benchmark.data import portability

    if (openmm.__version__, 5) not in portability.RECORDED:
        pytest.skip(f"no LJ checksum recorded for OpenMM {openmm.__version__}")
    assert portability.build_checksum(5) == portability.RECORDED[(openmm.__version__, 5)]


def test_lj_cpu_platform_and_a_bad_platform(tmp_path):
    """`platform: CPU` keeps the faster vendor-dependent path; an unknown platform names the choices."""
    params = {"n_particles": 64, "cutoff_sigma": 2.5, "n_frames": 3, "n_trajectories": 1,
              "steps_per_frame": 5, "equilibration_steps": 10}
    ds = make_dataset(tmp_path / "cpu", "d", "lj_argon", dict(params, platform="CPU"), seed=0, progress=False)
    assert ds.trajectory(0).provenance["engine"].endswith(" CPU")
    with pytest.raises(ValueError, match=r"platform 'OpenCL' is not one of \('Reference', 'CPU'\)"):
        make_dataset(tmp_path / "bad", "d", "lj_argon", dict(params, platform="OpenCL"), seed=0, progress=False)


def test_parallel_build_raises_a_worker_error(tmp_path):
    """A trajectory that fails in a worker fails the build with its own error, and no manifest."""
    # a negative noise scale passes the parameter checks and fails inside the simulation (numpy)
    with pytest.raises(ValueError, match="scale"):
        make_dataset(tmp_path / "bad", "bad", "lj_argon", {"n_particles": 64, "cutoff_sigma": 2.5, "n_frames": 2,
                                                           "equilibration_steps": 2, "init_noise_A": -1.0,
                                                           "n_trajectories": 2}, seed=0, progress=False, jobs=2)
    assert not (tmp_path / "bad" / "manifest.json").exists()


def test_interrupted_generation_resumes(tmp_path, monkeypatch):
    from benchmark.data import ala2_sim

    params = dict(CHEAP["ala2_sim"], n_frames=20, n_trajectories=3)
    real = ala2_sim.generate_trajectory
    calls = []

    def crash_on_second(directory, p, index, seed, progress=None):
        calls.append(index)
        if index == 1:
            raise KeyboardInterrupt("simulated interruption")
        return real(directory, p, index, seed, progress)

    monkeypatch.setattr(ala2_sim, "generate_trajectory", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        make_dataset(tmp_path / "d", "d", "ala2_sim", params, seed=0, progress=False)
    assert calls == [0, 1]
    assert (tmp_path / "d" / "traj_000" / "meta.json").exists()
    assert not (tmp_path / "d" / "manifest.json").exists()
    done = (tmp_path / "d" / "traj_000" / "positions.npy").stat().st_mtime_ns

    calls.clear()
    monkeypatch.setattr(ala2_sim, "generate_trajectory", lambda *a, **k: (calls.append(a[2]), real(*a, **k)))
    ds = make_dataset(tmp_path / "d", "d", "ala2_sim", params, seed=0, progress=False)
    assert calls == [1, 2]  # the finished trajectory is not redone
    assert (tmp_path / "d" / "traj_000" / "positions.npy").stat().st_mtime_ns == done
    fresh = make_dataset(tmp_path / "e", "e", "ala2_sim", params, seed=0, progress=False)
    assert ds.checksum == fresh.checksum  # resuming gives the same bytes as one uninterrupted run


RESUME_CASES = {  # kind -> (generator module, cheap params): a few frames, checkpoints after frames 4 and 8
    "tip3p_water": ("water", dict(CHEAP["tip3p_water"], npt_ps=1.0, n_frames=12, steps_per_frame=5)),
    "ala2_sim": ("ala2_sim", dict(CHEAP["ala2_sim"], n_frames=12, n_trajectories=1)),
    "lj_argon": ("lj", {"n_particles": 64, "cutoff_sigma": 2.5, "n_frames": 12, "n_trajectories": 1,
                        "steps_per_frame": 10, "equilibration_steps": 200}),
}


@pytest.mark.parametrize("kind", list(RESUME_CASES))
def test_trajectory_resumes_mid_run(tmp_path, monkeypatch, kind):
    """An OpenMM run killed mid-production resumes from its last checkpoint without re-equilibrating:
    the frames before it are the uninterrupted run's bytes, the next ones agree to float rounding,
    meta.json names the resume point; a checkpoint of other parameters is ignored."""
    import importlib

    import openmm

    from benchmark.data import openmm_md

    module, params = RESUME_CASES[kind]
    gen = importlib.import_module(f"benchmark.data.{module}")
    monkeypatch.setattr(openmm_md, "CHECKPOINT_EVERY", 4)
    fresh = make_dataset(tmp_path / "fresh", "d", kind, params, seed=0, progress=False)

    class Kill:  # a progress bar that kills the run after frame 9 (checkpoints after frames 4 and 8)
        n = 0

        def update(self, k):
            Kill.n += k
            if Kill.n == 10:
                raise KeyboardInterrupt("killed")

    real = gen.simulate_trajectory
    monkeypatch.setattr(gen, "simulate_trajectory", lambda p, s, progress, cp: real(p, s, Kill(), cp))
    with pytest.raises(KeyboardInterrupt):
        make_dataset(tmp_path / "r", "d", kind, params, seed=0, progress=False)
    saved = tmp_path / "r" / ".partial_traj_000" / openmm_md.CHECKPOINT_NAME
    assert saved.exists()
    minimised = []
    minimize = openmm.LocalEnergyMinimizer.minimize
    monkeypatch.setattr(openmm.LocalEnergyMinimizer, "minimize",
                        lambda *a, **k: (minimised.append(1), minimize(*a, **k)))
    monkeypatch.setattr(gen, "simulate_trajectory", real)
    resumed = make_dataset(tmp_path / "r", "d", kind, params, seed=0, progress=False)
    assert minimised == [] and not saved.exists()  # no set-up, no equilibration; checkpoint removed
    a, b = fresh.trajectory(0), resumed.trajectory(0)
    np.testing.assert_array_equal(a.positions[:8], b.positions[:8])
    np.testing.assert_array_equal(a.velocities[:8], b.velocities[:8])
    np.testing.assert_allclose(a.positions[8:], b.positions[8:], atol=1e-3)
    assert b.provenance["resumed_at_frames"] == [8] and "resumed_at_frames" not in a.provenance


def test_checkpoint_of_other_parameters_is_ignored(tmp_path):
    import openmm

    from benchmark.data import openmm_md

    cp = openmm_md.FrameCheckpoint(tmp_path / "x.npz", {"params": {"n": 1}, "seed": 0})
    other = openmm_md.FrameCheckpoint(tmp_path / "x.npz", {"params": {"n": 1}, "seed": 1})
    ctx = openmm.Context(_one_particle_system(), openmm.VerletIntegrator(0.001),
                         openmm.Platform.getPlatformByName("Reference"))
    ctx.setPositions([(0, 0, 0)])
    arr = np.zeros((3, 1, 3), np.float32)
    cp.save(2, arr, arr, np.zeros((3, 3)), ctx, {"edge_nm": 2.0})
    assert cp.load()["next_frame"] == 2 and cp.load()["extra"] == {"edge_nm": 2.0}
    assert other.load() is None
    (tmp_path / "x.npz").write_bytes(b"truncated")
    assert cp.load() is None


def _one_particle_system():
    import openmm

    system = openmm.System()
    system.addParticle(1.0)
    return system


def test_report(datasets, tmp_path):
    for kind in ["tip4pew_water", "ala2_sim", "md17_xtb"]:
        out = write_report(datasets[kind], tmp_path / "data" / f"{kind}.md", name=kind, max_frames=20)
        text = out.read_text()
        assert "## Temperature" in text and "closest pair" in text
        assert (tmp_path / "data" / kind / "temperature.png").stat().st_size > 1000
    water = (tmp_path / "data" / "tip4pew_water.md").read_text()
    assert "O-O radial distribution function: first peak at" in water and "Density" in water
    assert "drift (kJ/mol/ns)" in water  # the Nose-Hoover conserved energy is stored for water
    assert "alpha_R" in (tmp_path / "data" / "ala2_sim.md").read_text()
    assert "| C-H |" in (tmp_path / "data" / "md17_xtb.md").read_text()
    assert open_dataset(datasets["md17_xtb"].path, verify=True)
