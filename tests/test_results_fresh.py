"""Committed tables, figures and the README headline must be exactly what the committed results
generate: the markdown compared as text, and (test_regenerated_byte_for_byte) every file written
anew into a temporary folder and compared byte for byte, the PNGs included."""

import json
import shutil
from pathlib import Path

import pytest

from benchmark.aggregate import read_metrics
from benchmark.config import load_suite
from benchmark.io import read_json, sha256_file
from benchmark.report.cross_paper import HEADLINE, headline, readme_headline, write_headline
from benchmark.report.figure_series import figure_data, write_figures
from benchmark.report.leaderboard import render_tables
from benchmark.report.spectrum import fig4_cell, figure_mismatch, plot_fig4
from benchmark.report.summary import summary_lines
from benchmark.report.task_tables import task_table

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


def test_leaderboard_opens_with_the_generated_summary(committed):
    """LEADERBOARD.md's first lines after its title are the five-line summary, as the numbers make it."""
    suite, table = committed
    lines = (ROOT / "results" / "LEADERBOARD.md").read_text().splitlines()
    assert lines[2:7] == summary_lines(suite, table), f"results/LEADERBOARD.md's summary is stale: {FIX}"
    assert "predates evaluation v2" in lines[2]  # the committed runs carry no per-window errors


def test_readme_headline_not_stale(committed):
    suite, table = committed
    block = readme_headline((ROOT / "README.md").read_text())
    assert block is not None, "README.md lacks the <!-- headline:start --> ... <!-- headline:end --> block"
    assert block == headline(suite, table), f"the headline table in README.md is stale: {FIX}"


def test_regenerated_byte_for_byte(committed, tmp_path):
    """Every committed table (results/tables/*.md), every figure (PNG and JSON, the board's from the
    metrics, GF-NODE Fig. 4 from its committed JSON) and the README's headline block, written anew
    from the committed results/metrics.csv into a temporary folder: the same bytes."""
    suite, table = committed
    results = ROOT / "results"
    written = {}
    for task in sorted(set(table["task"])):
        written[f"tables/{task}.md"] = task_table(suite, table, task).encode()
    written.update({f"tables/{tid}.md": text.encode() for tid, text in render_tables(suite, table).items()})
    plots = tmp_path / "plots"
    for png in write_figures(suite, table, plots):  # the learning curves in plots/curves/
        rel = png.relative_to(plots)
        written[f"plots/{rel.as_posix()}"] = png.read_bytes()
        written[f"plots/{rel.with_suffix('.json').as_posix()}"] = png.with_suffix(".json").read_bytes()
    fig4 = results / "plots" / "gfnode_fig4.json"
    if fig4.exists():  # drawn from a trained model (not committed): redrawn from its committed series
        plot_fig4(read_json(fig4), plots / "gfnode_fig4.png")
        for suffix in (".png", ".json"):
            written[f"plots/gfnode_fig4{suffix}"] = (plots / "gfnode_fig4").with_suffix(suffix).read_bytes()
    committed_files = {str(p.relative_to(results)) for p in results.glob("tables/*.md")}
    committed_files |= {str(p.relative_to(results)) for p in results.glob("plots/**/*.png")}
    assert committed_files <= set(written), f"committed but not generated: {sorted(committed_files - set(written))}"
    stale = [name for name, data in sorted(written.items()) if (results / name).read_bytes() != data]
    assert not stale, f"not what the committed metrics generate: {stale}; {FIX}"
    readme = tmp_path / "README.md"
    shutil.copy(ROOT / "README.md", readme)
    write_headline(suite, table, readme)
    assert readme.read_bytes() == (ROOT / "README.md").read_bytes(), f"README.md headline is stale: {FIX}"
    assert HEADLINE[0] in readme.read_text()


def test_fig4_not_stale(committed):
    """GF-NODE Fig. 4 is drawn from a trained model (work/, not committed): the committed figure
    must come from the model behind the committed run of its cell, and exist when that run does."""
    suite, _ = committed
    cell = fig4_cell(suite)
    if cell is None:
        pytest.skip("the default suite has no gfnode model for Fig. 4")
    png = ROOT / "results" / "plots" / "gfnode_fig4.png"
    fix = f"regenerate with `snakemake --cores 2 {png.relative_to(ROOT)}` (or `mdhorizon spectrum`)"
    if not suite.run_path(cell).exists():
        assert not png.exists(), f"{png} exists but the run it analyses, {suite.run_path(cell)}, does not"
        return
    problem = figure_mismatch(suite)
    assert problem is None, f"{problem}: {fix}"
    data = read_json(png.with_suffix(".json"))
    model = suite.model_path(cell)
    if model.exists():  # where the model is at hand: the very file
        assert sha256_file(model) == data["source"]["model_sha256"], f"{png} was drawn from another model: {fix}"
