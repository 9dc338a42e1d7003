"""What a (task, dataset) cell of the board can support: its ceiling, its best trivial baseline,
whether it is saturated, and every method's skill against that baseline with its interval, validity
and convergence.  The tables, the cross-paper matrix, the headline and the summary all read it.

* **ceiling**: the ``ceiling`` rows of the runs (:func:`benchmark.evaluation.ceiling_row`), the MSE of
  positions that no longer correlate with the start; old run files have none;
* **baseline**: the best trivial baseline of the cell (:func:`benchmark.stats.best_baseline`);
* **saturated**: static within 5 % of the ceiling (:func:`benchmark.stats.saturated`): shown, never ranked;
* **skill**: 1 - MSE / MSE(baseline) from ``skill.csv`` (:mod:`benchmark.effects`) where the runs carry
  per-window errors, with its interval; else the point estimate from the means, with no interval;
* **valid**: :func:`benchmark.stats.cell_valid` over the ``valid`` rows (None: not assessed);
* a method **wins** a cell only by :func:`benchmark.stats.significant_win`: interval above zero, not invalid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark.config import Suite
from benchmark.data.registry import get_kind
from benchmark.effects import cell_means, read_skill
from benchmark.metrics import primary
from benchmark.report.cells import unconverged
from benchmark.stats import SATURATION, Skill, best_baseline, cell_valid, saturated, significant_win, skill

NO_INTERVAL = "interval: n/a (runs predate per-window errors)"
SATURATED_MARK = "⊘"
INVALID_MARK = "✗"
WIN_MARK = "✓"
MARKS_NOTE = (f"{WIN_MARK} = significant win (the whole 95 % interval of the skill above zero, valid cell); "
              f"{SATURATED_MARK} = saturated cell (static within {SATURATION * 100:g} % of the ceiling): shown, not "
              f"ranked; {INVALID_MARK} = invalid predictions (bond-length error or overlapping atoms past the task's "
              "threshold): never a win, not ranked.")


@dataclass(frozen=True)
class CellEvidence:
    """One (task, dataset) cell of the board (see the module docstring)."""

    task: str
    dataset: str
    means: dict  # method entry -> mean test MSE over seeds (the task's primary metric)
    baseline: str | None
    ceiling: float | None
    # "runs" (their ceiling rows), "box edge" (box_edge_ceiling), "raw only" (the primary metric is aligned
    # MSE, the ceiling rows raw MSE: no ceiling in the primary metric, saturation not assessed) or None
    ceiling_source: str | None
    saturated: bool | None
    skills: dict  # method entry -> Skill (an interval) or float (a point estimate only)
    valid: dict  # method entry -> bool | None
    unconverged: frozenset = field(default_factory=frozenset)

    def skill_of(self, variant: str) -> float | None:
        s = self.skills.get(variant)
        return s.value if isinstance(s, Skill) else s

    def interval(self, variant: str) -> tuple[float, float] | None:
        s = self.skills.get(variant)
        return (s.low, s.high) if isinstance(s, Skill) else None

    def wins(self, variant: str) -> bool:
        """The board's rule (:func:`benchmark.stats.significant_win`); never without an interval."""
        s = self.skills.get(variant)
        return isinstance(s, Skill) and significant_win(s, self.valid.get(variant))

    def static_share(self) -> float | None:
        """Static's MSE as a fraction of the ceiling (1 = no better than uncorrelated positions)."""
        static = self.means.get("static")
        if static is None or not self.ceiling:
            return None
        return float(static / self.ceiling)

    def excluded(self, variant: str) -> str | None:
        """Why the method is left out of the ranks in this cell (None: ranked)."""
        if self.saturated:
            return "saturated"
        if self.valid.get(variant) is False:
            return "invalid"
        if variant in self.unconverged:
            return "not converged"
        return None


def _skill_rows(skill_table: pd.DataFrame, task: str, dataset: str) -> dict:
    rows = skill_table[(skill_table["task"] == task) & (skill_table["dataset"] == dataset)
                       & (skill_table["offset"].astype(str) == "mean")]
    out = {}
    for r in rows.itertuples(index=False):
        if r.scheme == "none" or not (np.isfinite(r.ci_low) and np.isfinite(r.ci_high)):
            out[r.variant] = float(r.skill)
        else:
            out[r.variant] = Skill(value=float(r.skill), low=float(r.ci_low), high=float(r.ci_high), scheme=r.scheme,
                                   n_windows=int(r.n_windows), n_trajectories=int(r.n_trajectories),
                                   n_seeds=int(r.n_seeds))
    return out


def box_edge_ceiling(suite: Suite, table: pd.DataFrame, dataset: str) -> float | None:
    """The ceiling of a periodic dataset from runs without a ``ceiling`` row: the extrapolation
    tasks normalise by the box edge L (``full_domain_normalised`` = ``full_domain`` x (2 / L)²), so
    L² / 4 is the ratio of the two rows, and box²/12 of a cubic box is that ratio / 3."""
    if not get_kind(suite.datasets[dataset].kind).periodic:
        return None
    rows = table[(table["dataset"] == dataset) & (table["split"] == "test") & (table["metric"] == "mse")
                 & (table["status"] == "ok") & (table["variant"] == "static")]
    raw = rows.loc[rows["convention"] == "full_domain", ["task", "seed", "value"]]
    norm = rows.loc[rows["convention"] == "full_domain_normalised", ["task", "seed", "value"]]
    both = raw.merge(norm, on=["task", "seed"], suffixes=("", "_norm"))
    both = both[(both["value_norm"] > 0) & both["value"].notna()]
    if both.empty:
        return None
    return float((both["value"] / both["value_norm"]).mean() / 3.0)


def cell_evidence(suite: Suite, table: pd.DataFrame, skill_table: pd.DataFrame, task: str,
                  dataset: str) -> CellEvidence:
    """The evidence of one cell from the long table and ``skill.csv``'s rows."""
    metric, convention = primary(suite.tasks[task])[0]
    means = cell_means(table, task, dataset, metric, convention)
    baseline = best_baseline(means)
    sub = table[(table["task"] == task) & (table["dataset"] == dataset) & (table["split"] == "test")
                & (table["status"] == "ok")]
    ceilings = sub.loc[(sub["metric"] == "ceiling") & sub["value"].notna(), "value"]
    ceiling, source = (float(ceilings.mean()), "runs") if len(ceilings) else (None, None)
    if ceiling is None:
        ceiling = box_edge_ceiling(suite, table, dataset)
        source = "box edge" if ceiling is not None else None
    if metric != "mse":  # the ceiling rows are raw MSE: not comparable with the aligned primary metric
        ceiling, source = None, "raw only"
    valid_rows = sub[sub["metric"] == "valid"].drop_duplicates(["variant", "seed"])
    valid = {v: cell_valid(valid_rows.loc[valid_rows["variant"] == v, "value"].tolist()) for v in means}
    skills = _skill_rows(skill_table, task, dataset)
    for v, m in means.items():  # no row in skill.csv (old runs): the point estimate from the means
        if v not in skills and baseline is not None and v != baseline:
            skills[v] = skill(m, means[baseline])
    return CellEvidence(task=task, dataset=dataset, means=means, baseline=baseline, ceiling=ceiling,
                        ceiling_source=source,
                        saturated=saturated(means.get("static"), ceiling), skills=skills, valid=valid,
                        unconverged=frozenset(sub.loc[unconverged(sub), "variant"]))


def board_evidence(suite: Suite, table: pd.DataFrame, skill_table: pd.DataFrame | None = None) -> dict:
    """Every (task, dataset) cell of the suite: {(task, dataset): CellEvidence}; ``skill_table``
    defaults to the suite's ``skill.csv`` (empty where it was not written)."""
    skill_table = read_skill(suite.skill_path) if skill_table is None else skill_table
    return {(t, d): cell_evidence(suite, table, skill_table, t, d) for t in suite.tasks for d in suite.task_datasets(t)}


def any_interval(evidence: dict) -> bool:
    return any(isinstance(s, Skill) for e in evidence.values() for s in e.skills.values())


def _signed(value: float) -> str:
    """A skill with its sign: three decimals, or three significant digits far below -1."""
    return f"{value:+.3f}" if abs(value) < 100 else f"{value:+.3g}"


def skill_text(e: CellEvidence, variant: str) -> str:
    """A method's skill in a cell: '+0.123 [+0.05, +0.20] ✓', '+0.123' (no interval), 'reference'
    for the cell's baseline, with the cell's marks; '–' without a number."""
    if variant == e.baseline:
        return "reference"
    value = e.skill_of(variant)
    if value is None or not np.isfinite(value):
        return "–"
    text = _signed(value)
    ci = e.interval(variant)
    if ci is not None:
        text += f" [{_signed(ci[0])}, {_signed(ci[1])}]" + (f" {WIN_MARK}" if e.wins(variant) else "")
    if e.valid.get(variant) is False:
        text += f" {INVALID_MARK}"
    return text


def ranked_only(table: pd.DataFrame, evidence: dict) -> pd.DataFrame:
    """What the ranks are computed from: every run of a method's cell left out (saturated cell,
    invalid predictions, a run that did not converge) counts as not applicable."""
    out = [(t, d, v) for (t, d), e in evidence.items() for v in e.means if e.excluded(v)]
    if not out:
        return table
    keys = pd.DataFrame(out, columns=["task", "dataset", "variant"])
    hit = table[["task", "dataset", "variant"]].merge(keys, how="left", indicator=True)["_merge"].eq("both")
    return table.assign(status=table["status"].where(~hit.to_numpy(), "not_applicable"))
