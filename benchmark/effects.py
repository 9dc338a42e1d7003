"""Effect sizes of the board, cell by cell: ``skill.csv``, written by ``mdhorizon aggregate`` beside
``metrics.csv`` and ``runs.csv``.

Per (task, dataset) cell the reference is the best trivial baseline present
(:func:`benchmark.stats.best_baseline`: of :data:`benchmark.stats.TRIVIAL_BASELINES`, the lowest mean
test MSE over seeds in the task's primary metric).  Every other method entry of the cell gets its skill
against it, 1 - MSE / MSE(baseline), with the 95 % paired bootstrap interval of
:func:`benchmark.stats.skill_from_runs`, from the per-window errors in the run files: one row for the
mean over the query offsets (``offset`` = ``mean``) and, in window tasks, one per offset slot
(``offset`` = 1..K).  Only runs with status ``ok`` enter.

A cell whose run files predate per-window errors (``artifacts.window_errors``) has no row: the tables
then show the point estimate from ``metrics.csv`` and say the interval is not available.  A cell with a
single test trajectory is resampled in contiguous blocks of the task's ``block_frames`` (the
decorrelation length, task key); without it the row carries the point estimate with ``scheme`` =
``none`` and no interval.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.config import Suite
from benchmark.metrics import primary
from benchmark.stats import best_baseline, read_window_errors, skill, skill_from_runs

SKILL_COLUMNS = ["task", "dataset", "variant", "baseline", "offset", "skill", "ci_low", "ci_high", "scheme",
                 "n_windows", "n_trajectories", "n_seeds", "metrics_version"]


def cell_means(table: pd.DataFrame, task: str, dataset: str, metric: str, convention: str) -> dict[str, float]:
    """Mean over seeds (runs with status ok) of one test metric, per method entry of a cell."""
    rows = table[(table["task"] == task) & (table["dataset"] == dataset) & (table["split"] == "test")
                 & (table["metric"] == metric) & (table["convention"] == convention) & (table["status"] == "ok")]
    rows = rows[rows["value"].notna()].drop_duplicates(["variant", "seed"])
    return rows.groupby("variant")["value"].mean().to_dict()


def _row(task, dataset, variant, baseline, offset, result, version) -> dict:
    return {"task": task, "dataset": dataset, "variant": variant, "baseline": baseline, "offset": offset,
            "skill": result.value, "ci_low": result.low, "ci_high": result.high, "scheme": result.scheme,
            "n_windows": result.n_windows, "n_trajectories": result.n_trajectories, "n_seeds": result.n_seeds,
            "metrics_version": version}


def _point_only(task, dataset, variant, baseline, mine: list[dict], base: list[dict], version) -> dict:
    """A single test trajectory and no block length: the point estimate, no interval."""
    errors = [read_window_errors(r)["mse"] for r in mine]
    ref = np.mean([read_window_errors(r)["mse"] for r in base], axis=0)
    w = read_window_errors(base[0])
    return {"task": task, "dataset": dataset, "variant": variant, "baseline": baseline, "offset": "mean",
            "skill": skill(float(np.mean(errors)), float(ref.mean())), "ci_low": np.nan, "ci_high": np.nan,
            "scheme": "none", "n_windows": len(w["t0"]), "n_trajectories": 1, "n_seeds": len(errors),
            "metrics_version": version}


def skill_table(suite: Suite, table: pd.DataFrame, runs: dict) -> pd.DataFrame:
    """The rows of ``skill.csv``: ``table`` is the long table of :func:`benchmark.aggregate.collect`
    (its statuses say which runs count), ``runs`` the run files by cell."""
    ok = set(table.loc[table["status"] == "ok", ["task", "dataset", "variant", "seed"]].itertuples(index=False))
    by_cell: dict[tuple, list[dict]] = {}
    for cell, run in runs.items():
        if (cell.task, cell.dataset, cell.variant, cell.seed) in ok:
            by_cell.setdefault((cell.task, cell.dataset, cell.variant), []).append(run)
    rows = []
    for task, entry in suite.tasks.items():
        metric, convention = primary(entry)[0]
        for dataset in suite.task_datasets(task):
            baseline = best_baseline(cell_means(table, task, dataset, metric, convention))
            base = by_cell.get((task, dataset, baseline), [])
            for variant in suite.task_methods(task):
                mine = by_cell.get((task, dataset, variant), [])
                if variant == baseline or not mine or not base:
                    continue
                if any(read_window_errors(r) is None for r in mine + base):
                    continue  # run files that predate per-window errors: no interval
                if any(read_window_errors(r)["metric"] != metric for r in mine + base):
                    continue  # errors of another metric than the task's primary one: not comparable
                version = str(mine[0].get("metrics_version"))
                single = len(np.unique(read_window_errors(base[0])["traj"])) < 2
                if single and entry.block_frames is None:
                    rows.append(_point_only(task, dataset, variant, baseline, mine, base, version))
                    continue
                result = skill_from_runs(mine, base, per_offset=entry.protocol == "window",
                                         block_frames=entry.block_frames if single else None)
                for key, value in result.items():
                    rows.append(_row(task, dataset, variant, baseline,
                                     "mean" if key == "mean_over_offsets" else str(key), value, version))
    return pd.DataFrame(rows, columns=SKILL_COLUMNS)


def read_skill(path: Path) -> pd.DataFrame:
    """``skill.csv`` (empty, with its columns, where it has not been written: no interval anywhere)."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=SKILL_COLUMNS)
    table = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"offset": str, "metrics_version": str})
    if list(table.columns) != SKILL_COLUMNS:
        raise ValueError(f"{path}: columns {list(table.columns)} are not the expected {SKILL_COLUMNS}; "
                         "rerun `mdhorizon aggregate`")
    return table
