"""The cross-paper matrix (every method on every (task, dataset), ``results/tables/cross_paper.md``)
and the README's headline block made from its ranks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.config import Suite
from benchmark.io import write_text
from benchmark.metrics import primary
from benchmark.report.cells import UNCONVERGED_MARK, UNCONVERGED_NOTE, outcome, unconverged
from benchmark.report.evidence import (
    MARKS_NOTE,
    NO_INTERVAL,
    SATURATED_MARK,
    any_interval,
    board_evidence,
    ranked_only,
    skill_text,
)
from benchmark.report.formatting import cell_text
from benchmark.report.markdown import md_table
from benchmark.report.notes import dataset_params_note, task_history
from benchmark.report.paper_tables import FOOTER
from benchmark.report.ranking import rank_columns, rank_note, rank_rule, rank_stats, rank_texts, wins_text

README = Path(__file__).resolve().parents[2] / "README.md"
HEADLINE = ("<!-- headline:start -->", "<!-- headline:end -->")


def _unranked_reason(evidence: dict, v: str) -> str:
    """Why a method has no ranked cell: the reasons its cells were left out, or none complete yet."""
    reasons = sorted({e.excluded(v) for e in evidence.values() if v in e.means and e.excluded(v)})
    return "left out: " + ", ".join(reasons) if reasons else "no complete cell yet"


def cross_paper(suite: Suite, table: pd.DataFrame) -> str:
    """Every method x every (task, dataset): its skill against the cell's best trivial baseline (the
    task's primary test metric), the cell's marks, and the mean rank over the ranked cells."""
    evidence = board_evidence(suite, table)
    columns, variants, cells, _, _ = rank_columns(suite, table)  # why a cell has no number
    _, _, ranked_cells, ranks, ranked = rank_columns(suite, ranked_only(table, evidence))
    text = {}
    for v in variants:
        for c in columns:
            e = evidence[c]
            if v not in suite.task_methods(c[0]):
                text[(v, c)] = "–"
                continue
            text[(v, c)] = skill_text(e, v) if outcome(cells[(v, c)]) == "number" else cell_text(cells[(v, c)])
            if outcome(cells[(v, c)]) == "number":
                text[(v, c)] += (f" {SATURATED_MARK}" if e.saturated else "") + (
                    f" {UNCONVERGED_MARK}" if v in e.unconverged else "")
    header = ["method", "normalised rank", "mean rank", "cells ranked", "significant wins",
              *[f"{t}<br>{d}" + (f" †{task_history(suite, t)}" if task_history(suite, t) else "")
                + (" (aligned)" if primary(suite.tasks[t])[0][0] == "mse_aligned" else "") for t, d in columns]]
    aligned = [t for t in suite.tasks if primary(suite.tasks[t])[0][0] == "mse_aligned"]
    order = sorted(variants, key=lambda v: (not ranks[v], rank_stats(ranks[v])[1] if ranks[v] else 0.0))
    rows = [[v, *rank_texts(ranks[v]), str(len(ranks[v])), wins_text(evidence, v, ranked),
             *[text[(v, c)] for c in columns]] for v in order]
    n_saturated = sum(bool(e.saturated) for e in evidence.values())
    lines = ["# Cross-paper matrix: every method on every dataset and protocol", "",
             f"Suite `{suite.name}`, test split. Each cell is the method's **skill** against the cell's best trivial "
             "baseline (marked `reference`): 1 - MSE / MSE(reference) on each task's primary metric (window: MSE "
             "mean over offsets; extrapolate: full-domain MSE"
             + (f"; aligned MSE, each predicted frame superposed on its true frame, for the tasks marked (aligned): "
                f"{', '.join(aligned)}" if aligned else "")
             + "), 0 = no better than the reference, 1 = perfect, "
             "negative = worse; comparable across cells, unlike the raw MSE (the MSE itself: the per-task tables). "
             + ("Where the runs carry per-window errors the 95 % interval follows in brackets. "
                if any_interval(evidence) else f"Every cell's {NO_INTERVAL}: point estimates only, no win claimed. ")
             + "'–' = not in this task; †L = computed with L frames of history before t0. " + rank_note(suite) + " "
             + rank_rule(len(ranked), len(columns), n_saturated), "", MARKS_NOTE, ""]
    note = dataset_params_note(suite, variants, sorted({d for _, d in columns}))
    if unconverged(table).any():
        note = [UNCONVERGED_NOTE, ""] + note
    return "\n".join(lines + md_table(header, rows) + [""] + note + [FOOTER])


def headline(suite: Suite, table: pd.DataFrame) -> str:
    """The README's headline block: the cross-paper matrix's mean ranks over the valid, unsaturated,
    converged cells, from ``metrics.csv`` and ``skill.csv`` only."""
    evidence = board_evidence(suite, table)
    columns, variants, cells, ranks, ranked = rank_columns(suite, ranked_only(table, evidence))
    n_saturated = sum(bool(e.saturated) for e in evidence.values())
    rows = [[v, *rank_texts(ranks[v]), str(len(ranks[v])), wins_text(evidence, v, ranked),
             ", ".join(sorted({d for t, d in ranked if outcome(cells[(v, (t, d))]) in ("number", "failed")}))]
            for _, v in sorted((rank_stats(ranks[v])[1], v) for v in variants if ranks[v])]
    lines = [HEADLINE[0], "", f"**Headline** (suite `{suite.name}`): every method's ranks over the "
             "(task, dataset) cells of the cross-paper matrix (test split, each task's primary metric). "
             + rank_note(suite) + " " + rank_rule(len(ranked), len(columns), n_saturated)
             + ("" if any_interval(evidence) else f" Every skill's {NO_INTERVAL}, so no method is shown to beat "
                "a baseline.") + " The numbers behind it: "
             "[results/tables/cross_paper.md](results/tables/cross_paper.md).", ""]
    lines += md_table(["method", "normalised rank", "mean rank", "cells ranked", "significant wins", "datasets ranked"],
                      rows) if rows else ["No cell is complete yet."]
    unranked = [v for v in variants if not ranks[v]]
    if unranked:
        lines += ["", "Not ranked: " + "; ".join(f"{v} ({_unranked_reason(evidence, v)})" for v in unranked) + "."]
    lines += ["", "Generated by `mdhorizon leaderboard` (rule `leaderboard`) from `results/metrics.csv` and "
              "`results/skill.csv`; regenerate with `snakemake --cores 2 all --forcerun leaderboard`.", "", HEADLINE[1]]
    return "\n".join(lines)


def readme_headline(text: str) -> str | None:
    """The headline block of a README's text, markers included (None if it has none)."""
    start, end = text.find(HEADLINE[0]), text.find(HEADLINE[1])
    return text[start:end + len(HEADLINE[1])] if 0 <= start < end else None


def write_headline(suite: Suite, table: pd.DataFrame, readme: Path = README) -> Path:
    """Replace the headline block of ``readme`` with :func:`headline`."""
    text = readme.read_text()
    block = readme_headline(text)
    if block is None:
        raise ValueError(f"{readme}: no headline block ({HEADLINE[0]} ... {HEADLINE[1]}); add the two marker "
                         "lines where the headline goes")
    write_text(readme, text.replace(block, headline(suite, table)))
    return readme
