"""Ranks of the methods over the (task, dataset) cells of the cross-paper matrix.

A column is ranked only once it is complete: every method of its task has a number there, or
diverged/failed (ranked after every number, tied), or is not applicable (left out). Ranking a
partial column would let the cheap reference baselines, which finish first, rank 1 of 3 in columns
the learned methods have not reached. A rank is kept with the column's size, ``(rank, methods
ranked)``: tasks run different numbers of methods (3rd of 4 is not 3rd of 13).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.config import Suite
from benchmark.metrics import primary
from benchmark.report.cells import cell, outcome


def rank_columns(suite: Suite, table: pd.DataFrame):
    """The cross-paper matrix: its (task, dataset) columns, the methods, every method's cell in
    every column (the task's primary test metric), its ranks (1 = best) and the columns ranked."""
    columns = [(t, d) for t in suite.tasks for d in suite.task_datasets(t)]
    variants = suite.selected_methods()
    cells, ranks, ranked = {}, {v: [] for v in variants}, []
    for t, d in columns:
        metric, convention = primary(suite.tasks[t])[0]
        in_task = suite.task_methods(t)
        col = {v: cell(table, [t], d, v, metric, convention) if v in in_task else {"n": 0, "why": "–"}
               for v in variants}
        for v in variants:
            cells[(v, (t, d))] = col[v]
        found = {v: outcome(c) if v in in_task else "n/a" for v, c in col.items()}
        if "pending" in found.values() or "number" not in found.values():
            continue
        ranked.append((t, d))
        scored = sorted((c["mean"], v) for v, c in col.items() if found[v] == "number")
        size = len(scored) + sum(o == "failed" for o in found.values())
        for r, (_, v) in enumerate(scored, start=1):
            ranks[v].append((r, size))
        for v in variants:
            if found[v] == "failed":
                ranks[v].append((len(scored) + 1, size))
    return columns, variants, cells, ranks, ranked


def rank_stats(ranks: list[tuple[int, int]]) -> tuple[float, float]:
    """Mean rank, and mean normalised rank: (rank - 1) / (methods ranked - 1), 0 = best and 1 = last
    in every cell whatever its size, so methods ranked in cells of different sizes compare."""
    return (float(np.mean([r for r, _ in ranks])),
            float(np.mean([(r - 1) / (n - 1) if n > 1 else 0.0 for r, n in ranks])))


def rank_texts(ranks: list[tuple[int, int]]) -> list[str]:
    """A method's 'normalised rank' and 'mean rank' columns ('–' without a ranked cell)."""
    if not ranks:
        return ["–", "–"]
    mean, normalised = rank_stats(ranks)
    return [f"{normalised:.2f}", f"{mean:.2f}"]


def wins_text(evidence: dict, v: str, ranked: list) -> str:
    """In how many ranked cells ``v`` significantly beats the cell's best trivial baseline
    (:meth:`~benchmark.report.evidence.CellEvidence.wins`), of those where its skill has an interval:
    'n/a' where none has one (runs that predate per-window errors, a diverged run), '–' for a method
    that is the reference wherever it ranks."""
    mine = [c for c in ranked if evidence[c].baseline != v]
    if not mine:
        return "–"
    with_ci = [c for c in mine if evidence[c].interval(v) is not None]
    if not with_ci:
        return "n/a"
    return f"{sum(evidence[c].wins(v) for c in with_ci)}/{len(with_ci)}"


def rank_note(suite: Suite) -> str:
    """What the rank columns mean, with the range of methods per task."""
    sizes = sorted({len(suite.task_methods(t)) for t in suite.tasks})
    spread = f"run {sizes[0]} to {sizes[-1]} methods" if len(sizes) > 1 else f"all run {sizes[0]} methods"
    return ("Ranked by effect size: within a cell the methods are ordered by their skill against the cell's best "
            "trivial baseline (1 - MSE / MSE(baseline), the same order as their MSE). Sorted by normalised rank: "
            "(rank - 1) / (methods ranked - 1) averaged over the complete cells, "
            f"0 = best and 1 = last in every one; the tasks {spread}, so a plain mean rank (1 = best, also "
            "shown) favours the methods that only run in small tasks. Significant wins: the ranked cells where "
            "the whole 95 % interval of the method's skill lies above zero, of those where its skill has an "
            "interval ('n/a': no interval, the runs predate per-window errors, so no win is claimed).")


def rank_rule(ranked: int, total: int, saturated: int = 0) -> str:
    """How the mean rank is taken, with the number of complete cells (and of saturated ones, left out)."""
    text = ("A cell enters the mean ranks once it is complete: every method of its task has a number there "
            "(a method that diverged or failed ranks last in it); a saturated cell is left out, and so is a method's "
            "entry in a cell where its predictions are invalid or its training did not converge. "
            f"{ranked} of {total} cells are complete")
    if saturated:
        text += f"; {saturated} saturated, left out"
    if ranked + saturated >= total:
        return text + "."
    return text + ("; the others wait for a method's run, so the cheap reference baselines, which finish "
                   "first, do not rank 1 of 3 there.")
