"""The board's figures (``results/plots/<name>.png``): the series each one plots, taken from
``metrics.csv`` (and, for the Ramachandran plot, the runs' artifacts), and the drawing that shows it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from benchmark.config import Cell, Suite
from benchmark.io import read_json
from benchmark.report.cells import cell, tasks_for
from benchmark.report.curves import curve_data, write_curves
from benchmark.report.figures import plot_levels, plot_lines, plot_ramachandran
from benchmark.report.horizon import plot_skill, skill_series


def horizon_series(suite: Suite, table: pd.DataFrame) -> dict:
    """GF-NODE Fig. 3: MSE vs horizon on benzene / malonaldehyde (irregular windows)."""
    tasks = tasks_for(suite, "gfnode_fig3") + tasks_for(suite, "gfnode_table1")
    horizons = {t: suite.tasks[t].delta_frame for t in tasks}
    out = {}
    for d in sorted({d for t in tasks_for(suite, "gfnode_fig3") for d in suite.task_datasets(t)}):
        for v in dict.fromkeys(v for t in tasks for v in suite.task_methods(t)):
            pts = [(horizons[t], cell(table, [t], d, v, "mse", "mean_over_offsets")) for t in tasks
                   if d in suite.task_datasets(t)]
            pts = sorted((h, c["mean"], c["std"] if c["n"] > 1 else 0.0) for h, c in pts if c["n"])
            if pts:
                out.setdefault(d, {})[v] = [list(p) for p in pts]
    return out


def curve_series(suite: Suite, table: pd.DataFrame) -> dict:
    """DoMiNO Table 3 as a curve: binned MSE over the horizon on each protocol-B dataset."""
    tasks = tasks_for(suite, "domino_table3")
    out = {}
    sub = table[table["task"].isin(tasks) & (table["split"] == "test") & (table["metric"] == "mse_curve")
                & (table["status"] == "ok") & ~table["convention"].str.endswith("_normalised")]
    for (d, v), g in sub.groupby(["dataset", "variant"], sort=True):
        stats = g.groupby("offset")["value"].agg(["mean", "std", "count"]).reset_index()
        out.setdefault(d, {})[v] = [[float(o), float(m), float(s) if c > 1 else 0.0]
                                    for o, m, s, c in stats.itertuples(index=False)]
    return out


def level_series(suite: Suite, table: pd.DataFrame) -> dict:
    """DoMiNO Fig. 3: full-domain MSE of the level ablation (entries named domino_l*)."""
    tasks = tasks_for(suite, "domino_table1")
    variants = [v for v in suite.methods if v.startswith("domino")] + ["static"]  # static: reference line
    out = {}
    for t in tasks:
        for d in suite.task_datasets(t):
            for v in variants:
                c = cell(table, [t], d, v, "mse", "full_domain")
                if c["n"]:
                    out.setdefault(d, {})[v] = [c["mean"], c["std"] if c["n"] > 1 else 0.0]
    return {d: vs for d, vs in out.items() if set(vs) - {"static"}}  # datasets with a DoMiNO number


def ramachandran_series(suite: Suite, table: pd.DataFrame) -> dict:
    """GF-NODE Fig. 2: reference vs predicted (phi, psi) of the lowest seed of each method
    (from the runs' ``artifacts``, up to 1000 test frames)."""
    out = {}
    for t in tasks_for(suite, "gfnode_table2"):
        for d in suite.task_datasets(t):
            for v in suite.task_methods(t):
                path = suite.run_path(Cell(t, d, v, min(suite.seeds)))
                if not path.exists():
                    continue
                art = read_json(path).get("artifacts", {}).get("phi_psi")
                if art:
                    panel = out.setdefault(f"{t}/{d}", {"reference": art["reference"]})
                    panel[v] = art["predicted"]
    return out


# name -> (its series from the results, its drawing); the order of LEADERBOARD.md's figures
FIGURES = {
    "gfnode_fig3_horizon": (horizon_series, lambda d, p: plot_lines(
        d, p, "GF-NODE Fig. 3: MSE vs horizon (mean ± std over seeds)", "horizon (frames)", "test MSE (Å²)")),
    "domino_table3_curve": (curve_series, lambda d, p: plot_lines(
        d, p, "DoMiNO Table 3 as a curve: MSE over the horizon (mean ± std over seeds)",
        "frames after the last observed (log)", "test MSE (Å²)", logx=True)),
    "domino_fig3_levels": (level_series, lambda d, p: plot_levels(
        d, p, "DoMiNO level ablation (Fig. 3): test MSE, mean ± std over seeds", "full-domain MSE (Å²)")),
    "gfnode_fig2_ramachandran": (ramachandran_series, lambda d, p: plot_ramachandran(
        d, p, "GF-NODE Fig. 2: Ramachandran, reference vs predicted (test)")),
    "skill_vs_horizon": (skill_series, plot_skill),  # the predictability horizon (benchmark/report/horizon.py)
}


def figure_data(suite: Suite, table: pd.DataFrame) -> dict[str, dict]:
    """The series of every figure, as its JSON sidecar holds them (the learning curves' names are
    ``curves/<task>_<dataset>``, :mod:`benchmark.report.curves`)."""
    data = {name: series(suite, table) for name, (series, _) in FIGURES.items()} | curve_data(suite, table)
    return json.loads(json.dumps(data))


def write_figures(suite: Suite, table: pd.DataFrame, plots: Path) -> list[Path]:
    """Draw every figure into ``plots`` (PNG + JSON sidecar), the learning curves into ``plots/curves``;
    the PNG paths."""
    written = []
    for name, (series, draw) in FIGURES.items():
        draw(json.loads(json.dumps(series(suite, table))), plots / f"{name}.png")
        written.append(plots / f"{name}.png")
    return written + write_curves(suite, table, plots)
