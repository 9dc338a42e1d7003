"""Markdown tables generated from ``metrics.csv`` only (never edited by hand).

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

# Sections of a task table per protocol: (metric, convention, title, unit, lower is better).
SECTIONS = {
    "window": [("mse", "mean_over_offsets", "MSE averaged over the query offsets (GF-NODE convention)", "Å²", True),
               ("mse", "last_offset", "MSE at the last query offset (EGNO convention)", "Å²", True)],
    "extrapolate": [("mse", "full_domain", "MSE over a seeded random sample of future frames (DoMiNO 'full domain')", "Å²", True),
                    ("mse", "full_domain_normalised", "The same in DoMiNO's [-1, 1] min-max units (scale: training-position range; the box edge for periodic systems)", "normalised²", True),
                    ("time_to_failure", None, "Frames until the per-frame MSE first exceeds the failure threshold (horizon + 1 = never)", "frames", False)],
}
STATUS_WORD = {"diverged": "diverged", "not_applicable": "n/a", "missing": "not yet run", "failed": "failed", "stale": "stale (config changed)",
               "other_build": "other data build"}


def sample_std(values: np.ndarray) -> float:
    """Sample std (ddof 1), exactly 0 for identical values: a seed-independent method's copies
    must read ± 0 as in the papers, not ± 1e-17 from the rounding of the mean."""
    values = np.asarray(values, dtype=float)
    return float((values - values[0]).std(ddof=1))


def fmt_mean_std(values: np.ndarray) -> str:
    if len(values) == 1:
        return f"{values[0]:#.4g}"
    return f"{values.mean():#.4g} ± {sample_std(values):.2g}"


def status_counts(statuses: pd.Series) -> str:
    """'not yet run ×2, other data build ×1': runs without a number, by status."""
    return ", ".join(f"{STATUS_WORD.get(s, s)} ×{c}" for s, c in statuses.value_counts().sort_index().items())


def summarise(runs: pd.DataFrame) -> dict:
    """Summary of one (variant, dataset) over seeds: mean/std and the reason for gaps."""
    ok = runs[(runs["status"] == "ok") & np.isfinite(runs["value"].astype(float))]
    bad = runs[runs["status"] != "ok"]
    out = {"n": len(ok), "mean": ok["value"].mean() if len(ok) else np.nan, "text": ""}
    if len(ok):
        out["text"] = fmt_mean_std(ok["value"].to_numpy(dtype=float))
    if len(bad):
        statuses = status_counts(bad["status"])
        out["text"] = (out["text"] + f" ({statuses})") if out["text"] else statuses
        notes = sorted(set(n for n in bad["note"].dropna() if n))
        out["notes"] = notes
    return out


def task_history(suite: Suite, task: str) -> int:
    """Frames observed before t0 in a window task (0 = the papers' single frame)."""
    entry = suite.tasks[task]
    return entry["params"].get("observed", 1) - 1 if entry["protocol"] == "window" else 0


def dataset_params_note(suite: Suite, variants: list[str], datasets: list[str]) -> list[str]:
    """Lines naming the cells whose method ran with the entry's ``dataset_params`` (params that
    override its own on that dataset), so a reader does not compare them as equals without knowing."""
    notes = []
    for v in variants:
        for ds, params in ((suite.methods.get(v) or {}).get("dataset_params") or {}).items():
            if ds in datasets:
                notes.append(f"`{v}` on `{ds}`: " + ", ".join(f"{k} = {params[k]}" for k in sorted(params)))
    if not notes:
        return []
    return ["Cells run with dataset-specific params (the suite's `dataset_params`, "
            "which override the method's params on that dataset only): " + "; ".join(notes) + ".", ""]


def cost_note(table: pd.DataFrame, tasks, datasets) -> list[str]:
    """A note under a table whose 'train s' averages runs made on several machines: which machine
    the runs of each dataset came from (train times are comparable within one machine only)."""
    rows = table[table["task"].isin(tasks) & table["dataset"].isin([d for d in datasets if d])
                 & (table["status"] == "ok")]
    machines = rows.dropna(subset=["hardware"]).groupby("hardware")["dataset"].unique()
    if len(machines) < 2:
        return []
    parts = [f"{hw} ({', '.join(sorted(ds))})" for hw, ds in sorted(machines.items())]
    return ["Train s is the mean over the runs behind the row, which come from several machines: "
            + "; ".join(parts) + ". Compare costs within one machine (`hardware` of each run in "
            "`metrics.csv`).", ""]


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
        lines += [f"## {title} ({unit})", "", "| method | " + " | ".join(datasets) + " | n | params | train s |",
                  "|---" * (len(datasets) + 4) + "|"]
        cells = {(v, d): summarise(rows[(rows["variant"] == v) & (rows["dataset"] == d)])
                 for v in variants for d in datasets}
        sign = 1.0 if lower else -1.0
        best = {d: np.nanmin([sign * cells[(v, d)]["mean"] for v in variants] + [np.inf]) for d in datasets}
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
            params_txt = str(int(params.max())) if len(params) else "–"
            train_txt = f"{train.mean():.1f}" if len(train) else "–"
            lines.append(f"| {v} | {' | '.join(texts)} | {n} | {params_txt} | {train_txt} |")
        lines.append("")
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in sorted(set(notes))] + [""]
    lines += cost_note(table, [task], datasets)
    lines += ["Generated by `mdhorizon tables` from `metrics.csv`; do not edit by hand. "
              "Reproduce one cell with the `command` column of `metrics.csv`.", ""]
    return "\n".join(lines)


def write_tables(suite: Suite) -> list[Path]:
    table = read_metrics(suite.metrics_path)
    written = []
    for task in suite.tasks:
        if not (table["task"] == task).any():
            continue
        path = suite.tables_dir / f"{task}.md"
        write_text(path, task_table(suite, table, task))
        written.append(path)
    return written

