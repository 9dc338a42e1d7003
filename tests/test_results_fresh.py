"""Committed tables must be exactly what the committed metrics.csv generates."""

from pathlib import Path

import pytest

from benchmark.aggregate import read_metrics
from benchmark.config import load_suite
from benchmark.tables import task_table

ROOT = Path(__file__).resolve().parent.parent


def test_committed_tables_are_not_stale():
    metrics = ROOT / "results" / "metrics.csv"
    if not metrics.exists():
        pytest.skip("no committed results yet")
    suite = load_suite("default")
    table = read_metrics(metrics)
    checked = 0
    for task in sorted(set(table["task"])):
        path = ROOT / "results" / "tables" / f"{task}.md"
        assert path.exists(), f"{path} missing: run `snakemake --cores 2 all` (rule tables)"
        assert path.read_text() == task_table(table, task, suite.name), (
            f"{path} is stale: regenerate with `mdhorizon tables` (or `snakemake --forcerun tables`)")
        checked += 1
    assert checked
