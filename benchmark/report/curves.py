"""Learning curves (``results/plots/curves/<task>_<dataset>.png``): per (task, dataset) cell, the
validation MSE against optimiser steps of every trained method entry, one thin line per seed, with
the levels of the ``static`` and ``mean_structure`` baselines as horizontal lines.

Which cells get a figure is decided from the suite alone (so the Snakefile knows the outputs before
any run exists): a cell with at least one trained method entry on a **step budget**
(``budget.steps``, :mod:`benchmark.training`), whose run files carry the validation curve
``val_curve`` (``[{"step", "val_mse"}]``), ``converged`` and ``stop_reason``.  Cells trained on
epoch budgets (the committed board) get no figure: their run files hold a per-epoch ``history``
whose epochs are a different number of optimiser steps for each method (EGNO's batch of 100 against
50, protocol B's one step per epoch) and record no steps per epoch, so they cannot be put on a
common step axis.

The curves come from the run files (a stale run, one computed with another config, and the copies
of a seed-independent method's first seed are left out); the levels from ``metrics.csv``: the
baselines' validation-split MSE in the convention the trainer's validation measures (protocol A:
mean over the query offsets; protocol B: mean over all predicted frames), mean over seeds.  The
trainer scores a fixed subset of the validation samples (``budget.val_samples``), the levels are
over the whole validation split: the legend says so.  A method whose validation score is not a
position MSE (``validation_score`` of its class: ITO's denoising loss) is drawn on a second y axis,
dashed, and labelled with its score.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.config import Cell, Suite
from benchmark.io import read_json
from benchmark.report.figures import pyplot, save_figure
from methods import REGISTRY

DIR = "curves"  # under the plots folder
LEVELS = ("static", "mean_structure")  # the baselines drawn as horizontal lines
# the validation rows of metrics.csv that measure what the trainer's validation measures, per protocol
LEVEL_CONVENTION = {"window": "mean_over_offsets", "extrapolate": "all_frames"}


def name(task: str, dataset: str) -> str:
    """The figure's name under the plots folder (without suffix)."""
    return f"{DIR}/{task}_{dataset}"


def curve_cells(suite: Suite) -> list[tuple[str, str]]:
    """The (task, dataset) cells with a learning-curve figure: those with a trained entry on a step budget."""
    out = []
    for task in suite.tasks:
        for d in suite.task_datasets(task):
            if any(suite.methods[v].trained and suite.method_entry(v, task, d).budget.get("steps") is not None
                   for v in suite.task_methods(task)):
                out.append((task, d))
    return out


def curve_outputs(suite: Suite) -> list[Path]:
    """The PNGs :func:`write_curves` writes (the Snakefile's rule ``leaderboard`` declares them)."""
    return [suite.results_dir / "plots" / f"{name(t, d)}.png" for t, d in curve_cells(suite)]


def _levels(suite: Suite, table: pd.DataFrame, task: str, dataset: str) -> dict:
    """``{baseline: mean validation MSE over seeds}`` of the baselines the task runs."""
    convention = LEVEL_CONVENTION[suite.tasks[task].protocol]
    rows = table[(table["task"] == task) & (table["dataset"] == dataset) & (table["split"] == "val")
                 & (table["metric"] == "mse") & (table["convention"] == convention) & (table["status"] == "ok")]
    out = {}
    for v in LEVELS:
        values = rows[rows["variant"] == v].drop_duplicates("seed")["value"].dropna().to_numpy(dtype=float)
        if v in suite.task_methods(task) and len(values):
            out[v] = float(values.mean())
    return out


def _seed_curve(suite: Suite, cell: Cell) -> dict | None:
    """One run's curve: ``{"points": [[step, val_mse], ...], "converged", "stop_reason"}``, or None
    (no run file, a stale one, a copy of another seed's, or no ``val_curve``)."""
    path = suite.run_path(cell)
    if not path.exists():
        return None
    run = read_json(path)
    if run.get("config_hash") != suite.config_hash(cell) or run.get("reused_from_seed") is not None:
        return None
    if not run.get("val_curve"):
        return None
    return {"points": [[int(p["step"]), float(p["val_mse"])] for p in run["val_curve"]],
            "converged": bool(run.get("converged")), "stop_reason": run.get("stop_reason")}


def cell_series(suite: Suite, table: pd.DataFrame, task: str, dataset: str) -> dict:
    """What one figure shows: ``methods[variant][seed<N>]`` = :func:`_seed_curve`, ``levels``,
    the levels' ``convention``, the trainer's ``val_samples`` and the validation ``scores`` ("mse"
    or another score's name) of each step-budget entry."""
    methods, val_samples, scores = {}, {}, {}
    for v in suite.task_methods(task):
        entry = suite.method_entry(v, task, dataset)
        if not suite.methods[v].trained or entry.budget.get("steps") is None:
            continue
        val_samples[v] = entry.budget.get("val_samples")
        scores[v] = REGISTRY[entry.method].validation_score
        seeds = {f"seed{s}": c for s in suite.seeds if (c := _seed_curve(suite, Cell(task, dataset, v, s)))}
        if seeds:
            methods[v] = seeds
    return {"task": task, "dataset": dataset, "methods": methods, "levels": _levels(suite, table, task, dataset),
            "convention": LEVEL_CONVENTION[suite.tasks[task].protocol], "val_samples": val_samples,
            "scores": scores}


def curve_data(suite: Suite, table: pd.DataFrame) -> dict[str, dict]:
    """Every learning-curve figure's series: name -> :func:`cell_series`."""
    return {name(t, d): cell_series(suite, table, t, d) for t, d in curve_cells(suite)}


def convergence_label(variant: str, seeds: dict) -> str:
    """The legend entry of a method: how many of its seeds converged, and how the others stopped."""
    n = len(seeds)
    good = sum(c["converged"] for c in seeds.values())
    diverged = sum(c["stop_reason"] == "diverged" for c in seeds.values())
    state = "converged" if good == n else f"NOT converged ({good}/{n} seeds converged)"
    if good == n and n > 1:
        state = f"converged ({n}/{n} seeds)"
    return f"{variant}: {state}" + (f", {diverged} diverged" if diverged else "")


def _log_range(ax, values) -> None:
    finite = [y for y in values if np.isfinite(y) and y > 0]
    if finite:
        ax.set_yscale("log")
        ax.set_ylim(min(finite) / 1.3, max(finite) * 1.3)


def plot_curves(data: dict, path: Path) -> None:
    """One panel: a thin line per (method, seed) of validation MSE vs optimiser step (log y), the
    baselines' validation levels as horizontal lines; other validation scores on a right-hand axis."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.2))
    colours = plt.cm.tab10.colors
    other = sorted(v for v in data["methods"] if data["scores"].get(v, "mse") != "mse")
    ax2 = ax.twinx() if other else None
    values, values2 = [], []
    for i, (v, seeds) in enumerate(sorted(data["methods"].items())):
        on_right = v in other
        label = convergence_label(v, seeds) + (f" [right axis: {data['scores'][v]}]" if on_right else "")
        for j, (_, c) in enumerate(sorted(seeds.items())):
            steps, score = np.array(c["points"], dtype=float).T
            (ax2 if on_right else ax).plot(steps, score, lw=1.0, marker="o", ms=2, color=colours[i % 10],
                                           ls="--" if on_right else "-", label=label if j == 0 else None)
            (values2 if on_right else values).extend(score)
    styles = {"static": ("--", "grey"), "mean_structure": (":", "black")}
    for v, level in sorted(data["levels"].items()):
        ls, colour = styles.get(v, ("-.", "grey"))
        ax.axhline(level, ls=ls, color=colour, lw=1.2, label=f"{v} (whole val split): {level:.4g}")
        values.append(level)
    _log_range(ax, values)
    if ax2 is not None:
        _log_range(ax2, values2)
        ax2.set_ylabel(", ".join(sorted({data["scores"][v] for v in other})))
    if not data["methods"]:
        ax.text(0.5, 0.5, "no step-budget runs yet", ha="center", va="center", transform=ax.transAxes)
    sampled = sorted({str(n) for n in data["val_samples"].values() if n})
    subset = f"a fixed subset of {', '.join(sampled)} val samples" if sampled else "the val split"
    ax.set(xlabel="optimiser step", ylabel=f"validation MSE (Å², {data['convention'].replace('_', ' ')})",
           title=f"{data['task']} / {data['dataset']}: learning curves (one line per seed; on {subset})")
    ax.title.set_fontsize(9)
    handles = [h for a in (ax, ax2) if a is not None for h in a.get_legend_handles_labels()[0]]
    if handles:
        fig.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="center left",
                   bbox_to_anchor=(0.63, 0.5))
    fig.tight_layout(rect=(0, 0, 0.63, 1))
    save_figure(fig, path, data)


def write_curves(suite: Suite, table: pd.DataFrame, plots: Path) -> list[Path]:
    """Draw every learning-curve figure into ``plots/curves`` (PNG + JSON sidecar); the PNG paths."""
    written = []
    for fig_name, data in curve_data(suite, table).items():
        path = plots / f"{fig_name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        plot_curves(data, path)
        written.append(path)
    return written
