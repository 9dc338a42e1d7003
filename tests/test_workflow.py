"""The real Snakemake workflow, run for real on the smoke suite (tiny data)."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchmark.aggregate import read_metrics
from benchmark.config import load_suite
from benchmark.io import read_json

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _snakemake(*args, cwd=ROOT):
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_smoke_suite_end_to_end(smoke_run):
    results = smoke_run  # conftest.py: the workflow run once on the smoke suite (tests/test_horizon.py reads it too)
    work = results.parent / "work"
    table = read_metrics(results / "metrics.csv")
    test = table[(table["split"] == "test") & (table["metric"] == "mse")]
    suite = load_suite("smoke")
    assert set(test["variant"]) == set(suite.methods)  # every method, every trained one for a few steps
    assert (test["status"] == "ok").all() and test["value"].notna().all()
    runs = pd.read_csv(results / "runs.csv")
    trained = runs[runs["method"].isin([m for m, e in suite.methods.items() if e.trained])]
    assert trained["converged"].notna().all()  # step budgets: every trained run carries the flag
    for path in (results / "runs").glob("*/*/*/seed0.json"):
        run = read_json(path)
        if suite.methods[run["variant"]].trained:
            assert run["steps"] == 6 and run["stop_reason"] == "budget", path
            assert [p["step"] for p in run["val_curve"]] == [3, 6], path
    assert set(test["seed"]) == {0, 1}
    # learning curves: a figure per cell, a line per trained method and seed (benchmark/report/curves.py)
    for task in suite.tasks:
        curves = read_json(results / "plots" / "curves" / f"{task}_lj_tiny.json")
        assert (results / "plots" / "curves" / f"{task}_lj_tiny.png").exists()
        trained = {v for v in suite.task_methods(task) if suite.methods[v].trained}
        assert set(curves["methods"]) == trained, task
        for v, seeds in curves["methods"].items():  # a seed-independent method's copies are not redrawn
            assert len(seeds) == (2 if suite.methods[v].seed_dependent else 1), (task, v)
            assert all([p[0] for p in c["points"]] == [3, 6] for c in seeds.values()), (task, v)
        assert set(curves["levels"]) == {"static"}
    md = (results / "tables" / "lj_window.md").read_text()
    for method in ("static", "constant_velocity"):
        row = next(line for line in md.splitlines() if line.startswith(f"| {method} |"))
        assert any(ch.isdigit() for ch in row.split("|")[2]), row
    # provenance on every row
    for col in ("git_sha", "config_hash", "dataset_sha256", "metrics_version", "hardware", "command"):
        assert test[col].notna().all(), col
    # rerunning does nothing (everything is up to date)
    again = _snakemake("--cores", "2", "all", "-n", "--config", "suite=smoke", f"work_dir={work}",
                       f"results_dir={results}")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    # either results table missing: aggregate reruns
    (results / "runs.csv").unlink()
    again = _snakemake("--cores", "2", "all", "-n", "--config", "suite=smoke", f"work_dir={work}",
                       f"results_dir={results}")
    assert again.returncode == 0 and "aggregate" in again.stdout, again.stdout[-3000:]


def test_default_suite_dry_run():
    out = _snakemake("-n", "--cores", "8", "all", "--config", "work_dir=/nonexistent/mdh")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "train_cell" in out.stdout and "aggregate" in out.stdout


@pytest.mark.parametrize("config,match", [
    (["suite=smoke", "methods=statik"], "config key 'methods': unknown 'statik'; valid: constant_velocity, "),
    (["suite=smoke", "seeds=3"], "unknown workflow config key(s) ['seeds']"),
    (["suite=nope"], "config key 'suite': unknown 'nope'"),
])
def test_bad_workflow_config_fails_before_any_job(config, match, tmp_path):
    out = _snakemake("-n", "--cores", "1", "all", "--config", *config, f"work_dir={tmp_path}")
    assert out.returncode != 0
    assert match in out.stdout + out.stderr
