"""Cells of the leaderboard's tables, picked out of ``metrics.csv``: which tasks and datasets a
paper table draws on, one (method, dataset, metric) cell as mean/std over seeds, best and second
marked, a method's cost, the order of the methods."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.config import Suite
from benchmark.report.formatting import STATUS_WORD, cell_text, sample_std, status_counts

REFERENCE = ("static", "constant_velocity", "damped_velocity")  # trivial baselines: reference rows
# The mark of a cell with a run that did not converge (benchmark.training.converged); only step-budget
# runs carry the flag, so a board of older run files shows no mark.
UNCONVERGED_MARK = "‡"
UNCONVERGED_NOTE = (f"{UNCONVERGED_MARK} = at least one seed's training did not converge (its best validation MSE "
                    "still improved by 1 % or more over the last 20 % of its optimiser steps): left out of the ranks.")


def unconverged(table: pd.DataFrame) -> pd.Series:
    """Rows of finished runs (status ok) that carry ``converged`` = false; runs without the flag are
    not marked, and a diverged run stays a failure (it ranks last)."""
    if "converged" not in table:
        return pd.Series(False, index=table.index)
    return table["converged"].astype(str).isin(["False", "false", "0", "0.0"]) & (table["status"] == "ok")


def converged_only(table: pd.DataFrame) -> pd.DataFrame:
    """What the ranks and the headline are computed from: every run of a (task, dataset, method entry)
    cell with a run that did not converge counts as not applicable, so that cell is left out and its
    column is ranked without it."""
    bad = unconverged(table)
    if not bad.any():
        return table
    keys = ["task", "dataset", "variant"]
    cells = table.loc[bad, keys].drop_duplicates()
    in_bad = table[keys].merge(cells, on=keys, how="left", indicator=True)["_merge"].eq("both").to_numpy()
    return table.assign(status=table["status"].where(~in_bad, "not_applicable"))


def tasks_for(suite: Suite, table_id: str) -> list[str]:
    """The suite's tasks tagged ``tables: [table_id]``."""
    return [t for t, e in suite.tasks.items() if table_id in e.tables]


def pick_dataset(table: pd.DataFrame, tasks: list[str], candidates: list[str]) -> str | None:
    """The first of ``candidates`` that the tasks have results on."""
    present = set(table[table["task"].isin(tasks)]["dataset"])
    return next((d for d in candidates if d in present), None)


def cell(table: pd.DataFrame, tasks, dataset, variant, metric, convention, factor=1.0) -> dict:
    """Mean/std over seeds of one (variant, dataset, metric, convention) on the test split."""
    rows = table[table["task"].isin(tasks) & (table["dataset"] == dataset) & (table["variant"] == variant)
                 & (table["split"] == "test")]
    hits = rows[(rows["metric"] == metric) & (rows["convention"] == convention)]
    ok = hits[(hits["status"] == "ok") & hits["value"].notna()]
    values = ok.drop_duplicates("seed")["value"].to_numpy(dtype=float) * factor
    out = {"n": len(values), "mean": float(values.mean()) if len(values) else np.nan,
           "std": sample_std(values) if len(values) > 1 else np.nan}
    # the seeds without a number, by status (a cell with n=1 should say what the other seeds are)
    out["gaps"] = status_counts(hits[~hits["seed"].isin(ok["seed"])].drop_duplicates("seed")["status"])
    n_bad = int(unconverged(ok).sum())
    if n_bad:
        out["unconverged"] = n_bad
    if not len(values):
        out["statuses"] = sorted(set(rows["status"]) - {"ok"})
        out["why"] = (", ".join(STATUS_WORD.get(s, s) for s in out["statuses"])
                      or ("not in suite" if not len(rows) else "no value"))
    return out


def outcome(c: dict) -> str:
    """What a method's ``cell`` holds: 'number', 'failed' (diverged or failed on every seed it ran),
    'n/a' (not applicable) or 'pending' (not yet run, stale, no run at all)."""
    if c["n"]:
        return "number"
    statuses = set(c.get("statuses", ()))
    if statuses & {"diverged", "failed"}:
        return "failed"
    return "n/a" if statuses and statuses <= {"not_applicable"} else "pending"


def mark_best(cells: dict, variants, columns, lower: bool = True) -> dict:
    """Text per (variant, column) with best **bold** and second <u>underlined</u>."""
    out = {k: cell_text(v) + (f" {UNCONVERGED_MARK}" if v.get("unconverged") else "") for k, v in cells.items()}
    for col in columns:
        scored = sorted(((cells[(v, col)]["mean"], v) for v in variants if cells[(v, col)]["n"]),
                        reverse=not lower)
        if scored:
            out[(scored[0][1], col)] = f"**{out[(scored[0][1], col)]}**"
        if len(scored) > 1:
            out[(scored[1][1], col)] = f"<u>{out[(scored[1][1], col)]}</u>"
    return out


def cost(table: pd.DataFrame, tasks, variant) -> tuple[str, str]:
    """A method's 'params' (the largest model) and 'train s' (mean over its runs) columns."""
    rows = table[table["task"].isin(tasks) & (table["variant"] == variant) & (table["status"] == "ok")]
    runs = rows.drop_duplicates(["task", "dataset", "seed"])
    params = runs["n_params"].dropna()
    train = runs["train_seconds"].dropna()
    return (str(int(params.max())) if len(params) else "–", f"{train.mean():.0f}" if len(train) else "–")


def variant_order(suite: Suite, tasks: list[str], pub_rows) -> list[str]:
    """The paper's methods first (in its order), then the suite's others, the reference baselines last."""
    in_suite = list(dict.fromkeys(v for t in tasks for v in suite.task_methods(t)))
    ordered = [v for v in pub_rows if v in in_suite] + [v for v in in_suite if v not in pub_rows and v not in REFERENCE]
    return ordered + [v for v in in_suite if v in REFERENCE]
