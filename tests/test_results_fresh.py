"""Committed tables and figures must be exactly what the committed results generate."""

import json
from pathlib import Path

import pytest

from benchmark.aggregate import read_metrics
from benchmark.config import load_suite
from benchmark.io import read_json, sha256_file
from benchmark.leaderboard import figure_data, headline, readme_headline, render_tables
from benchmark.spectrum import fig4_cell
from benchmark.tables import task_table

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
        assert path.read_text() == task_table(suite, table, task), f"{path} is stale: {FIX}"


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


def test_readme_headline_not_stale(committed):
    suite, table = committed
    block = readme_headline((ROOT / "README.md").read_text())
    assert block is not None, "README.md lacks the <!-- headline:start --> ... <!-- headline:end --> block"
    assert block == headline(suite, table), f"the headline table in README.md is stale: {FIX}"


def test_fig4_not_stale(committed):
    """GF-NODE Fig. 4 is drawn from a trained model (work/, not committed): the committed figure
    must come from the model behind the committed run of its cell, and exist when that run does."""
    suite, _ = committed
    cell = fig4_cell(suite)
    if cell is None:
        pytest.skip("the default suite has no gfnode model for Fig. 4")
    png = ROOT / "results" / "plots" / "gfnode_fig4.png"
    fix = f"regenerate with `snakemake --cores 2 {png.relative_to(ROOT)}` (or `mdhorizon spectrum`)"
    run_path = suite.run_path(cell)
    if not run_path.exists():
        assert not png.exists(), f"{png} exists but the run it analyses, {run_path}, does not"
        return
    assert png.exists() and png.with_suffix(".json").exists(), f"{png} missing: {fix}"
    data, run = read_json(png.with_suffix(".json")), read_json(run_path)
    assert data["cell"] == cell.__dict__, f"{png} analyses another cell: {fix}"
    for key in ("config_hash", "train_seconds", "dataset_sha256"):
        if key in data["source"]:
            assert data["source"][key] == run[key], f"{png}: {key} differs from {run_path}: {fix}"
    model = suite.model_path(cell)
    if model.exists():  # where the model is at hand: the very file
        assert sha256_file(model) == data["source"]["model_sha256"], f"{png} was drawn from another model: {fix}"
