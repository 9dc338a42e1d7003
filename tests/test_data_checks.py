"""Data v2: drift-free LJ, declared phases, MD17-xTB motion, and the data report's physics checks.

Tiny builds (seconds) of the real generators, plus hand-made datasets for the report's FAILED paths.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import TINY_LJ

from benchmark import cli
from benchmark.config import ConfigError, load_suite
from benchmark.data import lj, md17_xtb
from benchmark.data.checks import run_checks
from benchmark.data.format import open_dataset, write_manifest, write_trajectory
from benchmark.data.registry import make_dataset
from benchmark.data.report import failed_checks, write_report
from benchmark.io import read_json

JSON_KEYS = {"com_speed_A_per_ps", "temperature_K", "density_g_cm3", "structure_factor_kmin", "diffusion_A2_per_ps",
             "static_mse_A2", "decorrelation_frames", "literature", "status", "failures"}
TINY_XTB = {"molecule": "ethanol", "n_frames": 400, "equilibration_ps": 0.25, "equilibration_friction_per_fs": 0.05,
            "bussi_taut_fs": 20.0, "n_trajectories": 1}


def test_lj_has_no_centre_of_mass_drift(lj_dataset):
    """The momentum left by setVelocitiesToTemperature is zeroed and kept at zero (CMMotionRemover)."""
    for t in lj_dataset.trajectories():
        v = np.asarray(t.velocities, dtype=np.float64)
        assert np.abs(v.mean(1)).max() < 1e-7  # A/fs; the pre-2026-12-06 builds had ~3e-4 (0.3 A/ps)
        x = np.asarray(t.positions, dtype=np.float64).mean(1)
        assert np.abs(x - x[0]).max() < 1e-4
        assert t.provenance["degrees_of_freedom"] == 3 * t.n_atoms - 3
    checks = run_checks(lj_dataset)
    assert checks["com_speed_A_per_ps"] < 1e-5
    assert not any("drift" in f for f in checks["failures"])
    assert checks["declared_phase"] == "two_phase"  # DoMiNO's state point, the kind's default


def test_lj_same_seed_is_byte_identical(lj_dataset, tmp_path):
    again = make_dataset(tmp_path / "again", "lj_tiny", "lj_argon", TINY_LJ, seed=0, progress=False)
    assert again.manifest["files"] == lj_dataset.manifest["files"] and again.checksum == lj_dataset.checksum


def test_report_json_has_the_keys(lj_dataset, tmp_path):
    out = write_report(lj_dataset, tmp_path / "data" / "lj_tiny.md", name="lj_tiny", max_frames=20)
    data = read_json(out.with_suffix(".json"))
    assert JSON_KEYS <= set(data)
    assert data["status"] in ("PASSED", "FAILED") and data["dataset"] == "lj_tiny"
    assert data["static_mse_A2"] == {} and data["decorrelation_frames"] is None  # 60 frames: no horizon fits
    assert data["com_speed_A_per_ps"] < 1e-5 and data["density_g_cm3"] > 0 and data["diffusion_A2_per_ps"] > 0
    assert data["literature"][0]["quantity"] == "temperature_K"
    text = out.read_text()
    assert "## Physics checks" in text and data["status"] in text


def _drifting_copy(lj_dataset, path, speed_A_per_ps: float):
    """The tiny LJ build with a uniform drift added to trajectory 0 (positions and velocities)."""
    shutil.copytree(lj_dataset.path, path)
    t = lj_dataset.trajectory(0)
    time_ps = np.arange(t.n_frames) * t.dt_fs / 1000.0
    drift = np.array([speed_A_per_ps, 0.0, 0.0])
    write_trajectory(path / t.name, np.asarray(t.positions) + time_ps[:, None, None] * drift,
                     velocities=np.asarray(t.velocities) + drift / 1000.0, dt_fs=t.dt_fs,
                     atomic_numbers=t.atomic_numbers, masses=t.masses, box=t.box, provenance=t.provenance)
    m = lj_dataset.manifest
    write_manifest(path, name=m["name"], kind=m["kind"], params=m["params"], info=m["info"])
    return open_dataset(path)


def test_report_fails_on_a_drifting_build_and_the_command_exits_non_zero(lj_dataset, tmp_path):
    work, results = tmp_path / "work", tmp_path / "results"
    broken = _drifting_copy(lj_dataset, work / "data" / "lj_tiny", speed_A_per_ps=0.3)
    checks = run_checks(broken)
    assert checks["status"] == "FAILED" and checks["com_speed_A_per_ps"] == pytest.approx(0.3, rel=1e-3)
    assert any("centre-of-mass drift" in f and "traj_000" in f for f in checks["failures"])
    rc = cli.main(["data", "report", "lj_tiny", "--suite", "smoke", "--work-dir", str(work),
                   "--results-dir", str(results)])
    assert rc == 1
    assert failed_checks(results / "data" / "lj_tiny.md")
    assert "**FAILED**: centre-of-mass drift" in (results / "data" / "lj_tiny.md").read_text()
    # the untouched build passes the same command
    shutil.rmtree(work / "data" / "lj_tiny")
    shutil.copytree(lj_dataset.path, work / "data" / "lj_tiny")
    assert cli.main(["data", "report", "lj_tiny", "--suite", "smoke", "--work-dir", str(work),
                     "--results-dir", str(results)]) == 0


def _box_dataset(path, phase: str, clustered: bool):
    """A hand-made box of 216 atoms: a jittered lattice filling it (as homogeneous as a dense liquid,
    S(k_min) ~ 0), or squeezed into one half along x (a liquid slab and a cavity, S(k_min) >> 1)."""
    rng = np.random.default_rng(0)
    edge = 20.0
    grid = (np.stack(np.meshgrid(*[np.arange(6)] * 3, indexing="ij"), -1).reshape(-1, 3) + 0.5) * edge / 6
    n = len(grid)
    x = grid + rng.normal(0, 0.3, size=(50, n, 3))
    if clustered:
        x[..., 0] *= 0.5
    x -= x.mean(1, keepdims=True) - x[0].mean(0)  # the centre of mass at rest: no drift failure
    write_trajectory(path / "traj_000", x, dt_fs=100.0, atomic_numbers=[18] * n, masses=[39.9] * n,
                     box=[edge] * 3, provenance={"params": {}})
    write_manifest(path, name=path.name, kind="lj_argon", params={"phase": phase, "temperature_K": 100.0},
                   info={"kind": "lj_argon"})
    return open_dataset(path)


def test_declared_one_phase_liquid_with_a_cavity_fails_two_phase_is_reported(tmp_path):
    liquid = run_checks(_box_dataset(tmp_path / "liquid", "one_phase_liquid", clustered=True))
    assert liquid["structure_factor_kmin"] > 0.5 and liquid["status"] == "FAILED"
    assert any("declared a one-phase liquid" in f for f in liquid["failures"])
    two = run_checks(_box_dataset(tmp_path / "two", "two_phase", clustered=True))
    assert two["status"] == "PASSED" and any("two-phase, as declared" in n for n in two["notes"])
    uniform = run_checks(_box_dataset(tmp_path / "uniform", "one_phase_liquid", clustered=False))
    assert uniform["structure_factor_kmin"] < 0.5 and uniform["status"] == "PASSED"
    assert uniform["temperature_K"] is None  # no velocities stored: no temperature check


def test_static_mse_reaches_the_box_plateau_for_uncorrelated_frames(tmp_path):
    rng = np.random.default_rng(1)
    edge = 10.0
    x = rng.uniform(0, edge, size=(400, 30, 3))
    write_trajectory(tmp_path / "u" / "traj_000", x, dt_fs=1.0, atomic_numbers=[18] * 30, masses=[39.9] * 30,
                     box=[edge] * 3)
    write_manifest(tmp_path / "u", name="u", kind="lj_argon", params={}, info={})
    checks = run_checks(open_dataset(tmp_path / "u"))
    assert checks["plateau_A2"] == pytest.approx(edge ** 2 / 12)
    assert checks["static_mse_A2"]["100"] == pytest.approx(edge ** 2 / 12, rel=0.05)
    assert checks["decorrelation_frames"] == 100 and set(checks["static_mse_A2"]) == {"100", "300"}


@pytest.mark.parametrize("kind,params,key", [
    ("md17_xtb", {"motion": "tumbling"}, "params.motion"),
    ("md17_xtb", {"molecule": "caffeine"}, "params.molecule"),
    ("lj_argon", {"phase": "one_phase_liquid"}, "params.reduced_density"),  # rho* 0.50 is two-phase
    ("lj_argon", {"reduced_density": 2.0}, "params.reduced_density"),
    ("lj_argon", {"phase": "gas"}, "params.phase"),
    ("lj_argon", {"n_particles": 8}, "params.n_particles, params.cutoff_sigma"),
])
def test_bad_values_fail_before_any_simulation_naming_the_key(tmp_path, monkeypatch, kind, params, key):
    def never(*args, **kwargs):
        raise AssertionError("simulated despite a bad parameter")

    monkeypatch.setattr(lj, "simulate_trajectory", never)
    monkeypatch.setattr(md17_xtb, "simulate_trajectory", never)
    with pytest.raises(ValueError, match=key):
        make_dataset(tmp_path / "d", "d", kind, params, seed=0, progress=False)
    assert not (tmp_path / "d" / "manifest.json").exists()


def test_bad_value_in_a_suite_is_a_config_error_naming_the_dataset(tmp_path):
    text = (load_suite("data_smoke").path.read_text()
            .replace("molecule: ethanol,", "molecule: ethanol, motion: spinning,"))
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace("name: data_smoke", "name: bad"))
    with pytest.raises(ConfigError, match=r"datasets\.md17xtb_ethanol_tiny\.params.*params\.motion 'spinning'"):
        load_suite(str(path))


def test_liquid_argon_state_point_is_accepted():
    lj.check_params({**lj.DEFAULTS, "reduced_density": 0.80, "phase": "one_phase_liquid"})
    suite = load_suite("data_check")
    entry = suite.datasets["lj_liquid_check"]
    assert entry.params["phase"] == "one_phase_liquid" and entry.params["reduced_density"] >= 0.78


@pytest.fixture(scope="module")
def xtb_builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("xtb")
    return {motion: make_dataset(root / motion, motion, "md17_xtb", dict(TINY_XTB, motion=motion), seed=0,
                                 progress=False) for motion in ("none", "thermal")}


def test_md17_xtb_thermal_motion_turns_the_molecule(xtb_builds):
    """motion: thermal draws an angular momentum at 500 K and keeps the centre of mass at rest."""
    t = xtb_builds["thermal"].trajectory(0)
    x, v, m = np.asarray(t.positions, float), np.asarray(t.velocities, float), np.asarray(t.masses, float)
    centre = (x * m[None, :, None]).sum(1) / m.sum()
    angular = np.cross(x - centre[:, None], v * m[None, :, None]).sum(1)
    assert np.linalg.norm(angular, axis=1).min() > 1e-2  # ~0.1 amu A^2/fs at 500 K; `none` keeps < 1e-3
    assert np.abs(centre - centre[0]).max() < 1e-3
    assert t.provenance["degrees_of_freedom"] == 3 * t.n_atoms - 3
    assert "thermal rotation" in t.provenance["integrator"]
    thermal, still = run_checks(xtb_builds["thermal"]), run_checks(xtb_builds["none"])
    assert thermal["rotation_deg_per_ps"] > 5 * still["rotation_deg_per_ps"]
    assert thermal["static_mse_A2"]["100"] > still["static_mse_A2"]["100"]
    assert thermal["static_mse_aligned_A2"]["100"] < thermal["static_mse_A2"]["100"]
    assert thermal["calibration"]["molecule"] == "ethanol" and thermal["calibration"]["motion"] == "thermal"
    assert "too short" in thermal["calibration"]["why"]  # 400 frames: no 3000-frame horizon
    assert thermal["bond_changes"] == []


def test_md17_xtb_thermal_same_seed_is_byte_identical(xtb_builds, tmp_path):
    again = make_dataset(tmp_path / "again", "thermal", "md17_xtb", dict(TINY_XTB, motion="thermal"), seed=0,
                         progress=False)
    assert again.checksum == xtb_builds["thermal"].checksum


def test_bond_change_is_recorded(tmp_path):
    """A hydrogen that moves over to another heavy atom (a proton transfer) is listed."""
    n = 200
    x = np.zeros((n, 3, 3))
    x[:, 1, 0] = 2.5  # O0 ... O1, 2.5 A apart; the H bonded to O0 in the bond list
    x[:, 2, 0] = np.where(np.arange(n) < n // 2, 1.0, 1.5)
    write_trajectory(tmp_path / "m" / "traj_000", x, dt_fs=0.5, atomic_numbers=[8, 8, 1], masses=[16.0, 16.0, 1.0],
                     bonds=[[0, 2]])
    write_manifest(tmp_path / "m", name="m", kind="md17_xtb", params={"molecule": "malonaldehyde"}, info={})
    changes = run_checks(open_dataset(tmp_path / "m"))["bond_changes"]
    assert changes == [{"trajectory": "traj_000", "hydrogen": 2, "stored_partner": 0, "nearer_to": 1,
                        "fraction_of_frames": 0.5}]


def test_labile_hydrogens_are_the_intramolecular_hydrogen_bonds():
    """Malonaldehyde's enol H and salicylic acid's phenol H lose their stored bond; a carboxyl H does not."""
    found = {}
    for molecule in ("malonaldehyde", "salicylic", "aspirin", "ethanol"):
        z, x, _, bonds = md17_xtb.build_molecule({**md17_xtb.DEFAULTS, "molecule": molecule})
        labile = md17_xtb.labile_hydrogens(z, x, bonds)
        found[molecule] = [(z[d["donor"]], z[d["acceptor"]]) for d in labile]
        kept = md17_xtb.stored_bonds(bonds, labile)
        assert len(kept) == len(bonds) - len(labile)
        for d in labile:
            assert (d["hydrogen"], d["donor"]) not in kept and (d["donor"], d["hydrogen"]) not in kept
    assert found == {"malonaldehyde": [(8, 8)], "salicylic": [(8, 8)], "aspirin": [], "ethanol": []}


def test_proton_transfer_of_a_labile_hydrogen_is_measured(tmp_path):
    n = 200
    x = np.zeros((n, 3, 3))
    x[:, 1, 0] = 2.5
    x[:, 2, 0] = np.where(np.arange(n) < 150, 1.0, 1.5)  # nearer O1 in the last quarter
    write_trajectory(tmp_path / "m" / "traj_000", x, dt_fs=0.5, atomic_numbers=[8, 8, 1], masses=[16.0, 16.0, 1.0],
                     bonds=[], provenance={"labile_hydrogens": [{"hydrogen": 2, "donor": 0, "acceptor": 1}]})
    write_manifest(tmp_path / "m", name="m", kind="md17_xtb", params={"molecule": "malonaldehyde"}, info={})
    checks = run_checks(open_dataset(tmp_path / "m"))
    assert checks["bond_changes"] == []
    assert checks["proton_transfers"] == [{"trajectory": "traj_000", "hydrogen": 2, "donor": 0, "acceptor": 1,
                                           "fraction_nearer_acceptor": 0.25}]
    assert any("proton_transfers" in note for note in checks["notes"])
