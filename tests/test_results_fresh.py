"""Committed tables and figures must be exactly what the committed results generate."""

import json
from pathlib import Path

import pytest

from benchmark.aggregate import read_metrics
from benchmark.config import load_suite
from benchmark.leaderboard import figure_data, render_tables
from benchmark.tables import task_history, task_table

ROOT = Path(__file__).resolve().parent.parent
FIX = "regenerate with `snakemake --cores 2 all --forcerun tables leaderboard` (or `mdhorizon leaderboard`)"


@pytest.fixture(scope="module")
def committed():
    metrics = ROOT / "results" / "metrics.csv"
    if not metrics.exists():
        pytest.skip("no committed results yet")
    return load_suite("default", results_dir=str(ROOT / "results")), read_metrics(metrics)


def test_task_tables_not_stale(committed):
    suite, table = committed
    for task in sorted(set(table["task"])):
        path = ROOT / "results" / "tables" / f"{task}.md"
        assert path.exists(), f"{path} missing: {FIX}"
        assert path.read_text() == task_table(table, task, suite.name, task_history(suite, task)), f"{path} is stale: {FIX}"


def test_leaderboard_tables_not_stale(committed):
    suite, table = committed
    for tid, text in render_tables(suite, table).items():
        path = ROOT / "results" / "tables" / f"{tid}.md"
        assert path.exists() and path.read_text() == text, f"{path} is stale: {FIX}"


def test_figures_not_stale(committed):
    suite, table = committed
    for name, data in figure_data(suite, table).items():
        png, sidecar = ROOT / "results" / "plots" / f"{name}.png", ROOT / "results" / "plots" / f"{name}.json"
        assert png.exists() and sidecar.exists(), f"{png} missing: {FIX}"
        assert json.loads(sidecar.read_text()) == data, f"{png} was drawn from other data: {FIX}"
