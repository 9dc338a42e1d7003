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
from benchmark.effects import read_skill
from benchmark.io import write_text
from benchmark.metrics import primary
from benchmark.report.cells import UNCONVERGED_MARK, UNCONVERGED_NOTE, unconverged
from benchmark.report.evidence import (
    MARKS_NOTE,
    NO_INTERVAL,
    SATURATED_MARK,
    CellEvidence,
    any_interval,
    cell_evidence,
    skill_text,
)
from benchmark.report.formatting import fmt_mean_std, status_counts
from benchmark.report.markdown import md_table
from benchmark.report.notes import cost_note, dataset_params_note, task_history
from benchmark.stats import SATURATION

# Sections of a task table per protocol: (metric, convention, title, unit, lower is better).
# The aligned MSE (each predicted frame superposed on its true frame, heavy atoms) and the fraction of
# valid predicted frames appear where the runs carry them (molecules, evaluation v2).
PHYSICAL = {
    "window": [("mse_aligned", "mean_over_offsets", "Aligned MSE averaged over the query offsets (optimal rotation "
                "+ translation per frame, heavy atoms)", "Å²", True)],
    "extrapolate": [("mse_aligned", "full_domain", "Aligned MSE over the sampled future frames (optimal rotation + "
                     "translation per frame, heavy atoms)", "Å²", True)],
}
VALIDITY = [("valid", None, "Fraction of valid predicted frames (bonds within tolerance, no overlapping atoms; "
             "a cell below 0.95 is invalid)", "fraction", False)]
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
SECTIONS = {p: s[:1] + PHYSICAL[p] + s[1:] + VALIDITY for p, s in SECTIONS.items()}
# Ours averages the squared error over x, y and z (per coordinate); GF-NODE's eq. 14 sums them (3x ours).
MSE_CONVENTION = ("MSE convention: squared position error averaged over atoms and over x, y, z (per coordinate, "
                  "Å²); GF-NODE's eq. 14 sums over x, y, z, which reads 3x ours.")
# Said in a task's table where its primary metric is not the default raw MSE (task key ``primary``).
ALIGNED_PRIMARY = ("**Primary metric: aligned MSE** (task key `primary: mse_aligned`: each predicted frame "
                   "superposed on its true frame by optimal rotation + translation, heavy atoms): the reference, "
                   "skill and ranks below use it, not the raw MSE.")


def primary_name(suite: Suite, task: str) -> str:
    """The name of a task's primary metric in table text: 'MSE' or 'aligned MSE'."""
    return "aligned MSE" if primary(suite.tasks[task])[0][0] == "mse_aligned" else "MSE"


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


def _reference_row(e: CellEvidence) -> list[str]:
    share = e.static_share()
    base = e.means.get(e.baseline) if e.baseline else None
    ceiling = ("n/a (ceiling rows are raw MSE; the primary metric is aligned)" if e.ceiling_source == "raw only"
               else "n/a (runs predate ceiling rows)" if e.ceiling is None
               else f"{e.ceiling:#.4g}" + (" (box edge)" if e.ceiling_source == "box edge" else ""))
    return [e.dataset, ceiling,
            e.baseline or "–", "–" if base is None else f"{base:#.4g}",
            "–" if share is None else f"{share:.1%}".replace("%", " %"),
            {True: f"yes {SATURATED_MARK}", False: "no", None: "n/a"}[e.saturated]]


def evidence_sections(suite: Suite, table: pd.DataFrame, task: str, datasets: list[str],
                      variants: list[str]) -> list[str]:
    """Each dataset's ceiling, best trivial baseline and saturation, and every method's skill against
    that baseline with its interval (:mod:`benchmark.report.evidence`)."""
    skill_table = read_skill(suite.skill_path)
    evidence = {d: cell_evidence(suite, table, skill_table, task, d) for d in datasets}
    lines = ["## Reference per dataset: ceiling, best trivial baseline, saturation", "",
             "Ceiling: the MSE of positions that no longer correlate with t0 (periodic: box²/12 per coordinate; "
             "molecules: frames far apart in the test trajectories), in the task's primary metric's units (Å²); "
             "'(box edge)': runs without a ceiling row, box²/12 of the cubic box whose edge normalises the "
             "extrapolation tasks' `full_domain_normalised` rows. "
             f"Saturated: static within {SATURATION * 100:g} % of the ceiling; such a cell separates no method and is "
             "not ranked.", ""]
    name = primary_name(suite, task)
    lines += md_table(["dataset", "ceiling (Å²)", "best trivial baseline", f"its {name} (Å²)", "static / ceiling",
                       "saturated"], [_reference_row(evidence[d]) for d in datasets])
    rows = []
    for v in variants:
        texts = []
        for d in datasets:
            e = evidence[d]
            text = skill_text(e, v) if v in e.means else "–"
            if v in e.means:
                text += (f" {SATURATED_MARK}" if e.saturated else "") + (f" {UNCONVERGED_MARK}" if v in e.unconverged
                                                                         else "")
            texts.append(text)
        rows.append([v, *texts])
    intervals = any_interval(evidence)
    title = "primary metric" if name == "MSE" else f"primary metric: {name}"
    lines += ["", f"## Skill against the best trivial baseline (1 - MSE / MSE(reference), {title})", "",
              ("Point estimate, then the 95 % interval of the paired bootstrap over test trajectories and windows "
               "(seeds resampled inside) in brackets; per offset: `skill.csv`." if intervals
               else f"Skill {NO_INTERVAL}: point estimates from the means only; no cell is claimed as a win."), "",
              *md_table(["method", *datasets], rows), "", MARKS_NOTE, ""]
    return lines


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
             f"number); best per column in **bold**. {MSE_CONVENTION}"
             + ("" if primary_name(suite, task) == "MSE" else f" {ALIGNED_PRIMARY}"), ""]
    lines += dataset_params_note(suite, variants, datasets)
    if history:
        lines += [f"† Every number here was computed WITH HISTORY: methods observed {history} frames before t0 "
                  f"(the papers' protocol A gives one frame).", ""]
    notes: list[str] = []
    for metric, convention, title, unit, lower in SECTIONS[protocol]:
        rows = sub[sub["metric"] == metric]
        if convention is not None:
            rows = rows[rows["convention"] == convention]
        elif metric == "time_to_failure" and metric not in set(sub["metric"]):
            rows = sub[(sub["metric"] == "mse") & (sub["status"] != "ok")]  # failed runs still show why
        if rows.empty:
            continue
        body, found = section(sub, rows, datasets, variants, history, lower)
        head = primary(suite.tasks[task])[0]  # marked where it is not the default raw MSE
        mark = " — primary metric" if head[0] != "mse" and (metric, convention) == head else ""
        lines += [f"## {title} ({unit}){mark}", "", *body, ""]
        notes += found
    lines += evidence_sections(suite, table, task, datasets, variants)
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
