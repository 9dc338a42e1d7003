"""Run JSONs -> the results as two tables: ``runs.csv`` and ``metrics.csv``.

``runs.csv`` holds one row per run: its cell (task, dataset, method variant, seed) and its
provenance (status, git sha, config hash, dataset checksum, hardware, timings, the command that
recomputes it), keyed by ``run_id`` (the run file's path under ``runs/``, e.g.
``lj_window/lj_argon/egnn/seed0``).  ``metrics.csv`` holds one row per metric value (split,
metric, convention, horizon, offset, value, unit) and the ``run_id`` of its run.
``skill.csv`` (:mod:`benchmark.effects`) holds each cell's skill against its best trivial baseline
with a bootstrap interval.  ``read_metrics`` joins runs.csv and metrics.csv into the long table the
reporting code reads: one row per
(run, split, metric, convention, offset) with the run's provenance.

Every cell the suite expects appears: a run JSON that does not exist yet gives a run with status
``missing`` and placeholder metric rows (never silently dropped).

One build of each dataset: the simulated datasets are bit-identical only on the
same kind of processor (the engines' round-off differs between processors, and
MD amplifies it into other trajectories), so run files
made on two machines can come from two builds of one dataset, statistically
alike but not the same frames.  A mean over seeds, or a method against the
static baseline, must not mix them: the board uses the build most of the
dataset's run files were computed on, and a run on another build gets status
``other_build`` (kept in the table, left out of every mean).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from benchmark.config import Suite
from benchmark.effects import skill_table
from benchmark.io import atomic_path, read_json
from benchmark.metrics import placeholder_rows
from benchmark.suite import RUNS_FILE

# The long table's columns: the run's cell, the metric row, the run's provenance.  The run's cell and
# provenance go to runs.csv, the metric row to metrics.csv (horizon and unit stay with the metric
# row: a run file gives them per row).
RUN_COLUMNS = ["suite", "protocol", "task", "dataset", "split_variant", "method", "variant", "seed"]
ROW_COLUMNS = ["split", "metric", "convention", "horizon", "offset", "value", "unit"]
META_COLUMNS = ["status", "note", "n_params", "train_seconds", "predict_seconds", "device", "hardware",
                "git_sha", "config_hash", "dataset_sha256", "dataset_engine", "metrics_version", "command",
                "reused_from_seed", "reused_model_of"]
# Run columns that only step-budget runs carry (benchmark.training): runs.csv has them only when some run
# does, so a board of older run files writes the same runs.csv as before.
OPTIONAL_COLUMNS = ["converged"]
COLUMNS = RUN_COLUMNS + ROW_COLUMNS + META_COLUMNS + OPTIONAL_COLUMNS  # the joined long table, in this order
RUNS_TABLE = ["run_id"] + RUN_COLUMNS + META_COLUMNS  # runs.csv (then OPTIONAL_COLUMNS that some run has)
METRICS_TABLE = ["run_id"] + ROW_COLUMNS  # metrics.csv


def board_builds(runs) -> dict[str, tuple[str, dict[str, int]]]:
    """Per dataset, from ``(dataset, run)`` pairs: the build (``dataset_sha256``) the board uses,
    the one most run files were computed on (ties: the smaller sha256, so the choice does not depend
    on the order of the files), and the number of run files per build."""
    counts: dict[str, Counter] = {}
    for dataset, run in runs:
        if run.get("dataset_sha256"):
            counts.setdefault(dataset, Counter())[run["dataset_sha256"]] += 1
    return {ds: (min(c, key=lambda sha: (-c[sha], sha)), dict(c)) for ds, c in counts.items()}


def read_runs(suite: Suite) -> dict:
    """The run files that exist, by cell."""
    return {cell: read_json(suite.run_path(cell)) for cell in suite.cells if suite.run_path(cell).exists()}


def collect(suite: Suite, runs: dict | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Rows of every expected cell (``runs``: the run files by cell, read when not given); returns
    (table, paths of missing run files)."""
    rows, missing = [], []
    runs = read_runs(suite) if runs is None else runs
    builds = board_builds((cell.dataset, run) for cell, run in runs.items())
    for cell in suite.cells:
        path = suite.run_path(cell)
        if cell not in runs:
            missing.append(str(path))
            task = suite.tasks[cell.task]
            base = {"suite": suite.name, "protocol": task.protocol, "task": cell.task,
                    "dataset": cell.dataset, "split_variant": task.split.strategy,
                    "method": suite.methods[cell.variant].method,
                    "variant": cell.variant, "seed": cell.seed, "status": "missing",
                    "note": "not yet run", "config_hash": suite.config_hash(cell)}
            rows += [{**base, **row} for row in placeholder_rows(task)]
            continue
        run = runs[cell]
        base = {k: run.get(k) for k in RUN_COLUMNS + META_COLUMNS + OPTIONAL_COLUMNS}
        board, per_build = builds.get(cell.dataset, (None, {}))
        if run.get("config_hash") != suite.config_hash(cell):  # the suite changed since this run
            base.update(status="stale", note=f"computed with another config (hash {str(run.get('config_hash'))[:12]}, "
                                             f"now {suite.config_hash(cell)[:12]}); rerun: {run.get('command')}")
        elif run.get("dataset_sha256") and run["dataset_sha256"] != board:
            base.update(status="other_build", note=(
                f"computed on another build of {cell.dataset} (sha256 {run['dataset_sha256'][:12]}, "
                f"{per_build[run['dataset_sha256']]} run file(s); this one made on {run.get('hardware')}) than the "
                f"board's ({board[:12]}, {per_build[board]} run files): left out of the means; "
                f"rerun it where the dataset regenerates as {board[:12]} or on an imported copy of that build "
                f"(`mdhorizon data import`): {run.get('command')}"))
        for row in run["rows"]:
            rows.append({**base, **{k: row.get(k) for k in ROW_COLUMNS}})
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["value"] = pd.to_numeric(table["value"], errors="coerce")
    table = table.sort_values(["task", "dataset", "variant", "seed", "split", "metric", "convention"],
                              kind="stable").reset_index(drop=True)
    return table, missing


def runs_path(metrics_path) -> Path:
    """``runs.csv``, next to ``metrics.csv``."""
    return Path(metrics_path).with_name(RUNS_FILE)


def split_table(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The long table -> (runs: one row per run, metrics: one row per metric value), both keyed by
    ``run_id``.  Each column keeps its dtype, so both files write each value as the long table did."""
    run_id = table["task"] + "/" + table["dataset"] + "/" + table["variant"] + "/seed" + table["seed"].astype(str)
    keyed = table.assign(run_id=run_id)
    columns = RUNS_TABLE + [c for c in OPTIONAL_COLUMNS if c in keyed and keyed[c].notna().any()]
    runs = keyed[columns].drop_duplicates("run_id")
    if len(keyed[columns].drop_duplicates()) != len(runs):
        raise ValueError("two rows of one run differ in the run's columns: "
                         f"{sorted(set(RUNS_TABLE) - {'run_id'})} must be the same on every row of a run")
    return runs.reset_index(drop=True), keyed[METRICS_TABLE]


def join_tables(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """(runs, metrics) -> the long table: each metric row with its run's columns, in ``COLUMNS`` order."""
    runs = runs.assign(**{c: float("nan") for c in OPTIONAL_COLUMNS if c not in runs})  # as read from a CSV
    table = metrics.merge(runs, on="run_id", how="left", validate="many_to_one", indicator=True)
    orphans = sorted(set(table.loc[table["_merge"] == "left_only", "run_id"]))
    if orphans:
        raise ValueError(f"metric rows of run(s) missing from runs.csv: {orphans[:3]}; rerun `mdhorizon aggregate`")
    return table[COLUMNS]


def table_texts(suite: Suite, table: pd.DataFrame) -> dict[Path, str]:
    """The long table as the text of its two files: {path of runs.csv: text, path of metrics.csv: text}."""
    runs, metrics = split_table(table)
    return {suite.runs_path: runs.to_csv(index=False, float_format="%.8g"),
            suite.metrics_path: metrics.to_csv(index=False, float_format="%.8g")}


def skill_text(suite: Suite, table: pd.DataFrame, runs: dict) -> str:
    """The text of ``skill.csv`` (:mod:`benchmark.effects`): skill against each cell's best trivial
    baseline with its bootstrap interval, from the run files' per-window errors."""
    return skill_table(suite, table, runs).to_csv(index=False, float_format="%.6g")


def write_metrics(suite: Suite) -> tuple[pd.DataFrame, list[str]]:
    """Writes ``runs.csv``, ``metrics.csv`` and ``skill.csv``; returns (the long table, paths of
    missing run files)."""
    runs = read_runs(suite)
    table, missing = collect(suite, runs)
    texts = {**table_texts(suite, table), suite.skill_path: skill_text(suite, table, runs)}
    for path, text in texts.items():
        with atomic_path(path) as tmp:
            tmp.write_text(text)
    return table, missing


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; write it with `mdhorizon aggregate`")
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    if list(table.columns) not in (columns, columns + [c for c in OPTIONAL_COLUMNS if c in table.columns]):
        raise ValueError(f"{path}: columns {list(table.columns)} are not the expected {columns}; "
                         "rerun `mdhorizon aggregate`")
    return table


def read_metrics(path) -> pd.DataFrame:
    """The long table from ``metrics.csv`` at ``path`` and the ``runs.csv`` next to it."""
    return join_tables(_read(runs_path(path), RUNS_TABLE), _read(Path(path), METRICS_TABLE))
