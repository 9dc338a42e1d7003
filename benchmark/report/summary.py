"""The five-line plain-language summary at the top of ``results/LEADERBOARD.md``, generated from the
numbers (:mod:`benchmark.report.evidence`, ``metrics.csv``, ``runs.csv``): what is significant, what is
saturated, what is invalid, what did not converge, and the training budget behind it all."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.config import Suite
from benchmark.data.registry import get_kind
from benchmark.metrics import BOND_TOLERANCE
from benchmark.report.cells import UNCONVERGED_MARK
from benchmark.report.evidence import board_evidence
from benchmark.stats import SATURATION


def _pairs(evidence: dict) -> list[tuple]:
    """(cell, method) pairs with a skill: every method with a number but the cell's reference."""
    return [(c, v) for c, e in evidence.items() for v in e.means if v != e.baseline and e.baseline is not None]


def significance_line(evidence: dict) -> str:
    pairs = _pairs(evidence)
    with_ci = [(c, v) for c, v in pairs if evidence[c].interval(v) is not None]
    if not with_ci:
        return (f"- **Significant:** nothing can be claimed yet. This board predates evaluation v2: none of its "
                f"{len(pairs)} (method, cell) results carries per-window errors, so no skill has an interval and "
                "no method is shown to beat the best trivial baseline; ranks use point estimates.")
    wins = sorted({v for c, v in with_ci if evidence[c].wins(v)})
    return (f"- **Significant:** {sum(evidence[c].wins(v) for c, v in with_ci)} of {len(with_ci)} (method, cell) "
            "results with an interval beat their cell's best trivial baseline (whole 95 % interval above zero, "
            f"valid cell){': ' + ', '.join(wins) if wins else ''}; {len(pairs) - len(with_ci)} have no interval.")


def saturation_line(evidence: dict) -> str:
    sat = [(c, e) for c, e in evidence.items() if e.saturated]
    unknown = sum(e.saturated is None for e in evidence.values())
    listed = ", ".join(f"{t}/{d} (static at {e.static_share():.1%})".replace("%", " %") for (t, d), e in sat)
    line = (f"- **Saturated:** {len(sat)} of {len(evidence)} cells sit within {SATURATION * 100:g} % of the ceiling "
            "(the error of positions no longer correlated with the start), where methods cannot be told apart"
            + (f": {listed}; they are shown, not ranked" if sat else ""))
    return line + (f"; {unknown} cells have no ceiling (runs predate ceiling rows), so their saturation is not "
                   "assessed." if unknown else ".")


def validity_line(suite: Suite, evidence: dict) -> str:
    # assessed: every result with validity rows; not assessed: the molecular results without them
    # (periodic liquids have no bonds to check)
    molecular = {c for c in evidence if not get_kind(suite.datasets[c[1]].kind).periodic}
    pairs = [(c, v) for c, e in evidence.items() for v in e.means
             if e.valid.get(v) is not None or c in molecular]
    invalid = sorted({f"{v} ({c[1]})" for c, v in pairs if evidence[c].valid.get(v) is False})
    unknown = sum(evidence[c].valid.get(v) is None for c, v in pairs)
    if not pairs:
        return "- **Invalid:** nothing to assess: validity (bond lengths, overlapping atoms) applies to molecules only."
    if unknown == len(pairs):
        return (f"- **Invalid:** not assessed: the runs of all {len(pairs)} (method, molecular cell) results predate "
                f"the validity rows (bond-length error over {BOND_TOLERANCE:g} Å or overlapping atoms), so a collapsed "
                "molecule is not yet told from a good prediction.")
    line = (f"- **Invalid:** {len(invalid)} of {len(pairs) - unknown} assessed (method, cell) results "
            f"predict broken molecules (bond-length error over {BOND_TOLERANCE:g} Å or overlapping atoms) and never "
            "count as wins" + (": " + ", ".join(invalid) if invalid else ""))
    return line + (f"; {unknown} of {len(pairs)} are not assessed (runs predate the validity rows)." if unknown
                   else ".")


def trained_runs(suite: Suite, table: pd.DataFrame) -> pd.DataFrame:
    """One row per trained model with a number (seed copies and shared models counted once)."""
    runs = table.drop_duplicates(["task", "dataset", "variant", "seed"])
    trained = runs["variant"].map(lambda v: v in suite.methods and suite.methods[v].trained)
    return runs[trained & (runs["status"] == "ok") & runs["reused_model_of"].isna() & runs["reused_from_seed"].isna()]


def convergence_line(suite: Suite, table: pd.DataFrame, evidence: dict) -> str:
    trained = trained_runs(suite, table)
    flagged = trained["converged"].notna().sum() if "converged" in trained else 0
    if not flagged:
        return (f"- **Not converged:** not recorded: none of the {len(trained)} trained models carries the "
                "convergence flag (they predate step budgets), so no cell is left out for it.")
    bad = sorted({(c, v) for c, e in evidence.items() for v in e.unconverged})
    return (f"- **Not converged:** {len(bad)} (method, cell) results have a run whose validation MSE was still "
            f"falling at the end of training ({UNCONVERGED_MARK}): left out of the ranks; {flagged} of "
            f"{len(trained)} trained models carry the flag.")


def budget_line(suite: Suite, table: pd.DataFrame) -> str:
    trained = trained_runs(suite, table)
    seconds = trained["train_seconds"].dropna().to_numpy(dtype=float)
    if not len(seconds):
        return "- **Training budget:** no trained model has a number yet."
    devices = ", ".join(sorted(set(trained["device"].dropna().astype(str)))) or "–"
    return (f"- **Training budget:** {seconds.sum() / 3600:.1f} h of training over {len(seconds)} trained models "
            f"(median {np.median(seconds) / 60:.1f} min, longest {seconds.max() / 60:.0f} min per model; device: "
            f"{devices}); each method's budget is its suite entry's.")


def summary_lines(suite: Suite, table: pd.DataFrame, evidence: dict | None = None) -> list[str]:
    """The five lines, in order: significance, saturation, validity, convergence, training budget."""
    evidence = board_evidence(suite, table) if evidence is None else evidence
    return [significance_line(evidence), saturation_line(evidence), validity_line(suite, evidence),
            convergence_line(suite, table, evidence), budget_line(suite, table)]
