"""The per-task tables, ``results/tables/<task>.md`` (``mdhorizon tables``), from ``metrics.csv`` only.

Per task: methods x datasets, test MSE mean +- sample std over seeds for both
conventions (mean over the K query offsets; last offset), best in bold, the
number of seeds, parameter count and train time.  A cell without a number
says why (``diverged``, ``n/a``, ``missing``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.aggregate import read_metrics
from benchmark.config import Suite
from benchmark.io import write_text
from benchmark.report.cells import UNCONVERGED_MARK, UNCONVERGED_NOTE, unconverged
from benchmark.report.formatting import fmt_mean_std, status_counts
from benchmark.report.markdown import md_table
from benchmark.report.notes import cost_note, dataset_params_note, task_history

# Sections of a task table per protocol: (metric, convention, title, unit, lower is better).
SECTIONS = {
    "window": [("mse", "mean_over_offsets", "MSE averaged over the query offsets (GF-NODE convention)", "Å²", True),
               ("mse", "last_offset", "MSE at the last query offset (EGNO convention)", "Å²", True)],
    "extrapolate": [("mse", "full_domain", "MSE over a seeded random sample of future frames (DoMiNO 'full domain')",
                     "Å²", True),
                    ("mse", "full_domain_normalised", "The same in DoMiNO's [-1, 1] min-max units (scale: "
                     "training-position range; the box edge for periodic systems)", "normalised²", True),
                    ("time_to_failure", None, "Frames until the per-frame MSE first exceeds the failure threshold "
                     "(horizon + 1 = never)", "frames", False)],
}


def summarise(runs: pd.DataFrame) -> dict:
    """Summary of one (variant, dataset) over seeds: mean/std and the reason for gaps."""
    ok = runs[(runs["status"] == "ok") & np.isfinite(runs["value"].astype(float))]
    bad = runs[runs["status"] != "ok"]
    out = {"n": len(ok), "mean": ok["value"].mean() if len(ok) else np.nan, "text": ""}
    if len(ok):
        out["text"] = fmt_mean_std(ok["value"].to_numpy(dtype=float))
        if unconverged(ok).any():  # only runs with the flag (step budgets) can be marked
            out["text"] += f" {UNCONVERGED_MARK}"
    if len(bad):
        statuses = status_counts(bad["status"])
        out["text"] = (out["text"] + f" ({statuses})") if out["text"] else statuses
        notes = sorted(set(n for n in bad["note"].dropna() if n))
        out["notes"] = notes
    return out


def section(sub: pd.DataFrame, rows: pd.DataFrame, datasets: list[str], variants: list[str], history: int,
            lower: bool) -> tuple[list[str], list[str]]:
    """One metric section's table (methods x datasets, best in bold, seeds, params, train s) and its notes."""
    cells = {(v, d): summarise(rows[(rows["variant"] == v) & (rows["dataset"] == d)])
             for v in variants for d in datasets}
    sign = 1.0 if lower else -1.0
    best = {d: np.nanmin([sign * cells[(v, d)]["mean"] for v in variants] + [np.inf]) for d in datasets}
    body, notes = [], []
    for v in variants:
        vrows = sub[sub["variant"] == v]
        texts = []
        for d in datasets:
            c = cells[(v, d)]
            text = c["text"] or "–"
            if c["n"] and np.isfinite(best[d]) and sign * c["mean"] == best[d]:
                text = f"**{text}**"
            if c["n"] and history:
                text += " †"
            texts.append(text)
            notes += [f"{v} on {d}: {n}" for n in c.get("notes", [])]
        n = int(vrows[vrows["status"] == "ok"]["seed"].nunique())
        params = vrows["n_params"].dropna()
        train = vrows[vrows["status"] == "ok"].drop_duplicates(["dataset", "seed"])["train_seconds"].dropna()
        body.append([v, *texts, str(n), str(int(params.max())) if len(params) else "–",
                     f"{train.mean():.1f}" if len(train) else "–"])
    return md_table(["method", *datasets, "n", "params", "train s"], body), notes


def task_table(suite: Suite, table: pd.DataFrame, task: str) -> str:
    """``results/tables/<task>.md``: every metric section of one task, datasets as columns."""
    history = task_history(suite, task)
    sub = table[(table["task"] == task) & (table["split"] == "test")]
    protocol = sub["protocol"].iloc[0]
    datasets = list(dict.fromkeys(sub["dataset"]))
    variants = list(dict.fromkeys(sub["variant"]))
    horizon = sub["horizon"].dropna().unique()
    lines = [f"# {task}: test results, suite `{suite.name}`", "",
             f"Protocol `{protocol}`, horizon {', '.join(str(int(h)) for h in horizon)} frames, "
             f"split `{sub['split_variant'].iloc[0]}`. Mean ± sample std over seeds (n = seeds with a "
             f"number); best per column in **bold**.", ""]
    lines += dataset_params_note(suite, variants, datasets)
    if history:
        lines += [f"† Every number here was computed WITH HISTORY: methods observed {history} frames before t0 "
                  f"(the papers' protocol A gives one frame).", ""]
    notes: list[str] = []
    for metric, convention, title, unit, lower in SECTIONS[protocol]:
        rows = sub[sub["metric"] == metric]
        if convention is not None:
            rows = rows[rows["convention"] == convention]
        elif metric not in set(sub["metric"]):
            rows = sub[(sub["metric"] == "mse") & (sub["status"] != "ok")]  # failed runs still show why
        if rows.empty:
            continue
        body, found = section(sub, rows, datasets, variants, history, lower)
        lines += [f"## {title} ({unit})", "", *body, ""]
        notes += found
    if unconverged(sub).any():
        lines += [UNCONVERGED_NOTE.replace(": left out of the ranks", ""), ""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in sorted(set(notes))] + [""]
    lines += cost_note(table, [task], datasets)
    lines += ["Generated by `mdhorizon tables` from `metrics.csv`; do not edit by hand. "
              "Reproduce one cell with the `command` column of `runs.csv`.", ""]
    return "\n".join(lines)


def write_tables(suite: Suite) -> list[Path]:
    """Write every task's table that has results; the paths written."""
    table = read_metrics(suite.metrics_path)
    written = []
    for task in suite.tasks:
        if not (table["task"] == task).any():
            continue
        path = suite.tables_dir / f"{task}.md"
        write_text(path, task_table(suite, table, task))
        written.append(path)
    return written
