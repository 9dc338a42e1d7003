"""The results as two tables (runs.csv: one row per run; metrics.csv: one row per metric value),
joined back into the long table the reporting code reads, and the committed pair kept current."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from benchmark.aggregate import (
    COLUMNS,
    RUNS_TABLE,
    collect,
    read_metrics,
    read_runs,
    runs_path,
    skill_text,
    table_texts,
    write_metrics,
)
from benchmark.config import SUITES_DIR, load_suite
from benchmark.io import write_json

ROOT = Path(__file__).resolve().parent.parent


def _two_run_suite(tmp_path):
    """The smoke suite cut to one task and one method: two cells (seeds 0 and 1)."""
    raw = yaml.safe_load((SUITES_DIR / "smoke.yaml").read_text())
    raw["name"] = "two_runs"
    raw["tasks"] = {"lj_window": raw["tasks"]["lj_window"]}
    raw["methods"] = {"static": None}
    raw["tasks"]["lj_window"]["methods"] = ["static"]
    path = tmp_path / "two_runs.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_suite(str(path), work_dir=str(tmp_path / "w"), results_dir=str(tmp_path / "r"))


def _row(metric, convention, offset, value, unit="A^2"):
    return {"split": "test", "metric": metric, "convention": convention, "horizon": 40, "offset": offset,
            "value": value, "unit": unit}


def test_two_runs_give_one_row_per_run_and_per_metric_value(tmp_path):
    suite = _two_run_suite(tmp_path)
    assert [c.seed for c in suite.cells] == [0, 1]
    rows = {0: [_row("mse", "mean_over_offsets", None, 0.125), _row("mse", "per_offset", 8, 0.0625),
                _row("mse", "per_offset", 16, 0.25)],
            1: [_row("mse", "mean_over_offsets", None, None), _row("rmsd", "mean_over_offsets", None, 1.5, "A")]}
    for cell in suite.cells:
        write_json(suite.run_path(cell), {
            "suite": suite.name, "protocol": "window", "task": cell.task, "dataset": cell.dataset,
            "split_variant": "by_trajectory", "method": "static", "variant": cell.variant, "seed": cell.seed,
            "status": "ok", "note": "" if cell.seed == 0 else "seed-independent method",
            "n_params": 0, "train_seconds": 0.5 + cell.seed, "predict_seconds": 1e-5, "device": "cpu",
            "hardware": f"cpu {cell.seed}", "git_sha": "abc", "config_hash": suite.config_hash(cell),
            "dataset_sha256": "d" * 64, "metrics_version": 3, "command": f"snakemake seed{cell.seed}",
            "reused_from_seed": None if cell.seed == 0 else 0, "rows": rows[cell.seed]})

    table, missing = write_metrics(suite)
    assert missing == [] and len(table) == 5

    runs = pd.read_csv(runs_path(suite.metrics_path), keep_default_na=False)
    metrics = pd.read_csv(suite.metrics_path, keep_default_na=False)
    assert list(runs["run_id"]) == ["lj_window/lj_tiny/static/seed0", "lj_window/lj_tiny/static/seed1"]
    assert list(runs["command"]) == ["snakemake seed0", "snakemake seed1"]  # provenance once per run
    assert "command" not in metrics.columns and "value" not in runs.columns
    assert list(metrics["run_id"]) == ["lj_window/lj_tiny/static/seed0"] * 3 + ["lj_window/lj_tiny/static/seed1"] * 2
    assert list(metrics["metric"]) == ["mse", "mse", "mse", "mse", "rmsd"]

    # the join gives the long table as it was written to, and read from, a single file
    single = tmp_path / "long.csv"
    table.to_csv(single, index=False, float_format="%.8g")
    expected = pd.read_csv(single, keep_default_na=False, na_values=[""])
    joined = read_metrics(suite.metrics_path)
    assert list(joined.columns) == COLUMNS
    pd.testing.assert_frame_equal(joined, expected, check_exact=True)
    assert joined["value"].isna().tolist() == [False, False, False, True, False]
    assert joined["reused_from_seed"].isna().tolist() == [True] * 3 + [False] * 2


def test_a_metric_row_without_its_run_names_the_file_and_the_fix(tmp_path):
    (tmp_path / "runs.csv").write_text(",".join(RUNS_TABLE) + "\n")
    (tmp_path / "metrics.csv").write_text("run_id,split,metric,convention,horizon,offset,value,unit\n"
                                          "t/d/static/seed0,test,mse,mean_over_offsets,40,,1.0,A^2\n")
    with pytest.raises(ValueError, match=r"missing from runs.csv: \['t/d/static/seed0'\]; rerun `mdhorizon aggregate`"):
        read_metrics(tmp_path / "metrics.csv")
    (tmp_path / "runs.csv").unlink()
    with pytest.raises(FileNotFoundError, match="runs.csv does not exist; write it with `mdhorizon aggregate`"):
        read_metrics(tmp_path / "metrics.csv")


def test_committed_results_tables_are_current():
    """results/runs.csv, results/metrics.csv and results/skill.csv are what `mdhorizon aggregate` makes of
    the committed run files (results/runs/**/seed*.json)."""
    metrics = ROOT / "results" / "metrics.csv"
    if not metrics.exists():
        pytest.skip("no committed results yet")
    suite = load_suite("default", results_dir=str(ROOT / "results"))
    fix = "regenerate with `mdhorizon aggregate` (rule aggregate)"
    runs = read_runs(suite)
    table = collect(suite, runs)[0]
    texts = {**table_texts(suite, table), suite.skill_path: skill_text(suite, table, runs)}
    for path, text in texts.items():
        assert path.exists(), f"{path} missing: {fix}"
        assert path.read_text() == text, f"{path} is stale: {fix}"
