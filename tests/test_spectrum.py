"""GF-NODE Fig. 4 (benchmark/report/spectrum.py): spectra, projections, the model's spectral states, a
trained model end to end, and the Snakefile rule."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark import runner
from benchmark.config import Cell, load_suite
from benchmark.report import spectrum
from benchmark.report.spectrum import dense_offsets, fig4_cell, fig4_data, mode_spectra, power_spectrum, project
from methods import make_method

ROOT = Path(__file__).resolve().parent.parent


def test_power_spectrum_peaks_at_the_signal_frequency():
    dt_fs, T = 2.0, 250  # Nyquist 250 ps^-1, bins of 2 ps^-1
    t = np.arange(T) * dt_fs / 1000.0  # ps
    series = np.zeros((3, T, 2, 3))
    rng = np.random.default_rng(0)
    for w in range(3):
        phase = rng.uniform(0, 2 * np.pi)
        series[w, :, 0, 0] = 5.0 + np.sin(2 * np.pi * 10.0 * t + phase)  # slow mode, with an offset
        series[w, :, 1, 2] = np.sin(2 * np.pi * 80.0 * t + phase)  # fast mode
    freq, power = power_spectrum(series, dt_fs)
    assert freq[0] == pytest.approx(2.0) and freq[-1] == pytest.approx(250.0)
    assert np.allclose(power.sum(axis=1), 1.0)
    assert freq[power[0].argmax()] == pytest.approx(10.0) and freq[power[1].argmax()] == pytest.approx(80.0)
    assert np.all(power >= 0)
    # an all-zero series has no power, not NaN
    assert np.all(power_spectrum(np.zeros((1, 16, 1, 3)), 1.0)[1] == 0)


def test_dense_offsets():
    grid = dense_offsets(3000, 512)
    assert grid[0] == 6 and grid[-1] == 3000 and len(grid) == 500 and np.all(np.diff(grid) == 6)
    assert np.array_equal(dense_offsets(40, 512), np.arange(1, 41))


def test_project_recovers_coefficients():
    U = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64))[0][:, :3][None]  # orthonormal columns
    coeff = torch.randn(2, 7, 3, 3, dtype=torch.float64)
    origin = torch.randn(2, 1, 1, 3, dtype=torch.float64)
    positions = torch.einsum("bnm,btmd->btnd", U.expand(2, -1, -1), coeff) + origin
    assert torch.allclose(project(positions, origin, U), coeff)


def test_mode_spectra_molecule(tiny_tasks):
    """On the 6-atom chain (a molecular graph): the model's own basis, Laplacian eigenvalues
    0 < ..., the ODE states of its two modes, normalised spectra of all sources."""
    train, _, test = tiny_tasks["chain"]
    torch.manual_seed(0)
    method = make_method("gfnode", {"hidden": 8, "n_layers": 2, "time_emb_dim": 4})
    method.setup_args = method.setup(train)
    method.model = method.build(**method.setup_args)
    out = mode_spectra(method, test, n_contexts=4)
    assert out["n_modes"] == 4 and out["model_modes"] == 2 and len(out["windows"]) == 4
    eig = out["laplacian_eigenvalues"]
    assert eig[0] == pytest.approx(0.0, abs=1e-6) and all(a <= b + 1e-9 for a, b in zip(eig, eig[1:]))
    assert out["grid"]["n_times"] == 16 and len(out["frequency_per_ps"]) == 8
    assert [len(out["spectra"][s]) for s in ("reference", "prediction", "model_state")] == [4, 4, 2]
    for s in ("reference", "prediction"):  # modes 1-3 move (mode 0 is the centroid: ~constant)
        assert all(sum(row) == pytest.approx(1.0, abs=1e-4) for row in out["spectra"][s][1:])
    assert len(out["ode_frequency_per_ps"]) == 2
    # the ODE states are the model's: at t0 (tau=0) x~ is the GFT of the centred encoder positions
    ctx = test.context([0])
    states = method.spectral_trajectory(ctx, torch.tensor([[0.0, 1.0]]))
    U = states["basis"]
    assert U.shape == (1, 6, 2) and states["positions"].shape == (1, 2, 2, 3)
    assert states["features"].shape == (1, 2, 2, 8)


def test_mode_spectra_small_molecule(tmp_path):
    """3 atoms have 3 graph Fourier modes: fewer than the 4 the figure asks for."""
    from conftest import SPEC, make_chain_dataset

    from benchmark.samples import open_parts
    from benchmark.splits import build_window_split

    ds = make_chain_dataset(tmp_path / "chain3", n_atoms=3)
    parts = open_parts(ds, build_window_split(ds, SPEC, "by_trajectory", {}, seed=0),
                       {"kind": "molecular", "cutoff": 1.6, "two_hop": True})
    method = make_method("gfnode", {"hidden": 8, "n_layers": 2, "time_emb_dim": 4})
    method.setup_args = method.setup(parts["train"])
    method.model = method.build(**method.setup_args)
    out = mode_spectra(method, parts["test"], n_contexts=3)
    assert out["n_modes"] == 3 and out["model_modes"] == 2
    assert [len(out["spectra"][s]) for s in ("reference", "prediction", "model_state")] == [3, 3, 2]
    assert out["laplacian_eigenvalues"] == [0.0, 3.0, 3.0] and out["laplacian_multiplicity"] == [1, 2, 2]


def _suite_yaml(tmp_path):
    """The tiny LJ box, one window task tagged as GF-NODE Table 1, a tiny gfnode trained 2 epochs."""
    path = tmp_path / "fig4test.yaml"
    path.write_text("""
name: fig4test
description: GF-NODE Fig. 4 test suite (tiny LJ box, tiny gfnode)
seeds: [0]
device: cpu
datasets:
  lj_tiny:
    kind: lj_argon
    params: {n_particles: 64, cutoff_sigma: 2.5, n_frames: 60, n_trajectories: 3, steps_per_frame: 10}
tasks:
  lj_window:
    protocol: window
    tables: [gfnode_table1]
    datasets: [lj_tiny]
    split: {strategy: by_trajectory, seed: 0}
    params: {delta_frame: 16, num_queries: 4, sampling: irregular, n_train: 8, n_val: 4, n_test: 4}
methods:
  static:
  gfnode: {params: {hidden: 8, n_layers: 2, time_emb_dim: 4, batch_size: 4, eval_every: 1}, budget: {epochs: 2}}
""")
    return path


def test_fig4_end_to_end(tmp_path):
    """A gfnode trained through the runner -> Fig. 4 PNG + JSON sidecar, reproducible."""
    suite = load_suite(str(_suite_yaml(tmp_path)), work_dir=str(tmp_path / "work"),
                       results_dir=str(tmp_path / "results"))
    cell = fig4_cell(suite)
    assert cell == Cell("lj_window", "lj_tiny", "gfnode", 0)
    runner.make_data(suite, "lj_tiny", progress=False)
    runner.make_split(suite, "lj_window", "lj_tiny")
    assert runner.train_cell(suite, cell, "cpu")["status"] == "ok"
    png = spectrum.write_fig4(suite, n_contexts=3)
    sidecar = json.loads(png.with_suffix(".json").read_text())
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    assert sidecar["status"] == "ok" and sidecar["cell"] == cell.__dict__
    assert sidecar["source"]["config_hash"] == suite.config_hash(cell)
    assert sidecar["source"]["model"] == "models/fig4test/lj_window/lj_tiny/gfnode/seed0.pt"
    assert sidecar["windows"] == [0, 2, 3] and sidecar["grid"]["n_times"] == 16
    assert "laplacian_eigenvalues" not in sidecar  # a liquid: one radius-graph basis per window
    # the same model gives the same numbers
    again = json.loads(json.dumps(fig4_data(suite, n_contexts=3)))
    assert again == sidecar


def test_fig4_rule_in_the_workflow(tmp_path):
    """`all` makes Fig. 4 when the suite has the gfnode model; not on the smoke suite (none)."""
    config = [f"suite={_suite_yaml(tmp_path)}", f"work_dir={tmp_path / 'w'}", f"results_dir={tmp_path / 'r'}"]
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "all", "--config", *config],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "gfnode_fig4" in out.stdout
    assert fig4_cell(load_suite("smoke")) is None
    default = load_suite("default")
    assert fig4_cell(default) == Cell("md17_irregular", "md17xtb_benzene", "gfnode", 0)
    assert fig4_cell(load_suite("default", methods="static")) is None
