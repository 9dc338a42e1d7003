"""Learning-curve figures (benchmark/report/curves.py): hand-made run files give the series they hold."""

import json

import pandas as pd
import pytest

from benchmark.config import Cell, load_suite
from benchmark.io import write_json
from benchmark.report.curves import convergence_label, curve_cells, curve_data, curve_outputs, write_curves

TASK, DATASET = "lj_window", "lj_tiny"


@pytest.fixture
def suite(tmp_path):
    return load_suite("smoke", results_dir=str(tmp_path / "results"))


def _run(suite, variant, seed, curve, converged, stop_reason="budget", config_hash=None):
    cell = Cell(TASK, DATASET, variant, seed)
    write_json(suite.run_path(cell), {
        "variant": variant, "seed": seed, "status": "ok", "config_hash": config_hash or suite.config_hash(cell),
        "val_curve": [{"step": s, "val_mse": v} for s, v in curve], "steps": curve[-1][0],
        "stop_reason": stop_reason, "converged": converged})


def _levels_table() -> pd.DataFrame:
    base = {"task": TASK, "dataset": DATASET, "metric": "mse", "status": "ok", "variant": "static"}
    return pd.DataFrame([
        {**base, "split": "val", "convention": "mean_over_offsets", "seed": 0, "value": 0.4},
        {**base, "split": "val", "convention": "mean_over_offsets", "seed": 1, "value": 0.6},
        {**base, "split": "val", "convention": "last_offset", "seed": 0, "value": 7.0},  # another convention
        {**base, "split": "test", "convention": "mean_over_offsets", "seed": 0, "value": 9.0},  # test: never
    ])


def test_cells_from_step_budgets_only(suite):
    """A cell gets a figure when a trained entry on it has a step budget: every smoke cell; the
    committed default board (epoch budgets) none."""
    assert curve_cells(suite) == [("lj_window", "lj_tiny"), ("lj_extrapolate", "lj_tiny")]
    assert [p.name for p in curve_outputs(suite)] == ["lj_window_lj_tiny.png", "lj_extrapolate_lj_tiny.png"]
    assert all(p.parent.name == "curves" for p in curve_outputs(suite))
    assert curve_cells(load_suite("default")) == []


def test_series_of_a_hand_made_pair_of_runs(suite, tmp_path):
    _run(suite, "egnn", 0, [(3, 0.9), (6, 0.5)], converged=True)
    _run(suite, "egnn", 1, [(3, 0.8), (6, 0.7)], converged=False, stop_reason="patience")
    _run(suite, "ndcn", 0, [(3, 1.0), (6, 0.9)], converged=True, config_hash="stale")  # another config: left out
    data = curve_data(suite, _levels_table())
    assert set(data) == {"curves/lj_window_lj_tiny", "curves/lj_extrapolate_lj_tiny"}
    series = data["curves/lj_window_lj_tiny"]
    assert series["methods"] == {"egnn": {
        "seed0": {"points": [[3, 0.9], [6, 0.5]], "converged": True, "stop_reason": "budget"},
        "seed1": {"points": [[3, 0.8], [6, 0.7]], "converged": False, "stop_reason": "patience"}}}
    assert series["levels"] == {"static": pytest.approx(0.5)}  # mean over seeds of the val rows only
    assert series["convention"] == "mean_over_offsets"
    assert series["scores"]["ito"] == "denoising loss" and series["scores"]["egnn"] == "mse"
    assert data["curves/lj_extrapolate_lj_tiny"]["methods"] == {}  # no runs: an empty figure
    assert data["curves/lj_extrapolate_lj_tiny"]["convention"] == "all_frames"
    written = write_curves(suite, _levels_table(), tmp_path / "plots")
    assert [p.relative_to(tmp_path / "plots").as_posix() for p in written] == [
        "curves/lj_window_lj_tiny.png", "curves/lj_extrapolate_lj_tiny.png"]
    assert all(p.stat().st_size > 0 for p in written)
    assert json.loads(written[0].with_suffix(".json").read_text()) == json.loads(json.dumps(series))


def test_legend_says_which_runs_converged():
    ok = {"points": [[1, 1.0]], "converged": True, "stop_reason": "budget"}
    bad = {"points": [[1, 1.0]], "converged": False, "stop_reason": "diverged"}
    assert convergence_label("egnn", {"seed0": ok}) == "egnn: converged"
    assert convergence_label("egnn", {"seed0": ok, "seed1": ok}) == "egnn: converged (2/2 seeds)"
    assert convergence_label("gfnode", {"seed0": ok, "seed1": bad}) == (
        "gfnode: NOT converged (1/2 seeds converged), 1 diverged")
