"""The notes printed with a table: frames of history a task gives, cells run with dataset-specific
params, and the machines behind a 'train s' column."""

from __future__ import annotations

import pandas as pd

from benchmark.config import Suite


def task_history(suite: Suite, task: str) -> int:
    """Frames observed before t0 in a window task (0 = the papers' single frame)."""
    entry = suite.tasks[task]
    return entry.spec.observed - 1 if entry.protocol == "window" else 0


def dataset_params_note(suite: Suite, variants: list[str], datasets: list[str]) -> list[str]:
    """Lines naming the cells whose method ran with the entry's ``dataset_params`` (params that
    override its own on that dataset), so a reader does not compare them as equals without knowing."""
    notes = []
    for v in (v for v in variants if v in suite.methods):
        for ds, params in suite.methods[v].dataset_params.items():
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
            "`runs.csv`).", ""]
