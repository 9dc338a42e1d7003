"""Run JSONs -> one long-format results table (``metrics.csv``).

One row per (run, split, metric, convention, offset) with the run's
provenance.  Every cell the suite expects appears: a run JSON that does not
exist yet gives rows with status ``missing`` (never silently dropped).
"""

from __future__ import annotations

import pandas as pd

from benchmark.config import Suite
from benchmark.io import atomic_path, read_json
from benchmark.metrics import placeholder_rows
from benchmark.tasks import make_spec

RUN_COLUMNS = ["suite", "protocol", "task", "dataset", "split_variant", "method", "variant", "seed"]
ROW_COLUMNS = ["split", "metric", "convention", "horizon", "offset", "value", "unit"]
META_COLUMNS = ["status", "note", "n_params", "train_seconds", "predict_seconds", "device", "hardware",
                "git_sha", "config_hash", "dataset_sha256", "metrics_version", "command", "reused_from_seed",
                "reused_model_of"]
COLUMNS = RUN_COLUMNS + ROW_COLUMNS + META_COLUMNS


def collect(suite: Suite) -> tuple[pd.DataFrame, list[str]]:
    """Rows of every expected cell; returns (table, paths of missing run files)."""
    rows, missing = [], []
    for cell in suite.cells:
        path = suite.run_path(cell)
        if not path.exists():
            missing.append(str(path))
            base = {"suite": suite.name, "protocol": suite.tasks[cell.task]["protocol"], "task": cell.task,
                    "dataset": cell.dataset, "split_variant": suite.tasks[cell.task].get("split", {}).get(
                        "strategy", "by_trajectory"), "method": suite.method_entry(cell.variant)["method"],
                    "variant": cell.variant, "seed": cell.seed, "status": "missing",
                    "note": "not yet run", "config_hash": suite.config_hash(cell)}
            protocol = suite.tasks[cell.task]["protocol"]
            horizon = make_spec(protocol, suite.tasks[cell.task]["params"]).delta_frame
            rows += [{**base, **row} for row in placeholder_rows(protocol, horizon)]
            continue
        run = read_json(path)
        base = {k: run.get(k) for k in RUN_COLUMNS + META_COLUMNS}
        if run.get("config_hash") != suite.config_hash(cell):  # the suite changed since this run
            base.update(status="stale", note=f"computed with another config (hash {str(run.get('config_hash'))[:12]}, "
                                             f"now {suite.config_hash(cell)[:12]}); rerun: {run.get('command')}")
        for row in run["rows"]:
            rows.append({**base, **{k: row.get(k) for k in ROW_COLUMNS}})
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["value"] = pd.to_numeric(table["value"], errors="coerce")
    table = table.sort_values(["task", "dataset", "variant", "seed", "split", "metric", "convention"],
                              kind="stable").reset_index(drop=True)
    return table, missing


def write_metrics(suite: Suite) -> tuple[pd.DataFrame, list[str]]:
    table, missing = collect(suite)
    with atomic_path(suite.metrics_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.8g")
    return table, missing


def read_metrics(path) -> pd.DataFrame:
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    unknown = set(table.columns) ^ set(COLUMNS)
    if unknown:
        raise ValueError(f"{path}: columns differ from the expected schema: {sorted(unknown)}; "
                         f"rerun `mdhorizon aggregate`")
    return table

