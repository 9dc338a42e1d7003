"""The papers' comparative claims, tested on our numbers: ``results/tables/claims.md``.

Each claim (``claims:`` in ``benchmark/published.yaml``) says that one method beats another on some
tasks and datasets.  It is tested cell by cell, one cell per (better, worse, task, dataset[, window]),
as a paired comparison on the same test windows: the relative difference
``1 - MSE(better) / MSE(worse)`` with the paired, blocked bootstrap of :mod:`benchmark.stats`
(:func:`~benchmark.stats.bootstrap_skill` with the claimed-worse method's per-window errors, averaged
over its seeds, as the baseline; the better method's seeds are resampled inside, as
:func:`~benchmark.stats.skill_from_runs` does).  A cell is

* **supported** when the whole 95 % interval lies above 0, **contradicted** when it lies below 0,
  **not separable** when it covers 0;
* **not testable** (with the reason) when a method has no finished run there, a run did not converge,
  a method's predictions are physically invalid (:func:`~benchmark.stats.cell_valid`), the cell is
  saturated (static within 5 % of the ceiling, :func:`~benchmark.stats.saturated`), or the run files
  predate per-window errors.

A claim's verdict follows from its cells by its ``combine`` rule: ``every`` (supported when every cell
is, contradicted when any cell is) or ``majority`` (supported, or contradicted, when more than half
of its cells are).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from benchmark.config import ConfigError, Suite, load_suite
from benchmark.io import read_json
from benchmark.report.cells import cell
from benchmark.report.markdown import md_table
from benchmark.report.paper_tables import published
from benchmark.stats import CONFIDENCE, Skill, bootstrap_skill, cell_valid, paired_window_errors, saturated
from benchmark.suite import Cell

COMBINE = ("every", "majority")
VERDICTS = ("supported", "contradicted", "not separable", "not testable")
# The suites whose names the claims use (default board first, the paper suite's names as alternatives).
CLAIM_SUITES = ("default", "paper")
EXTRAPOLATE_BLOCK_FRAMES = 1000  # decorrelation length of a single extrapolated trajectory (block bootstrap)
PREDATE = "runs predate per-window errors"
REQUIRED = ("source", "text", "tasks", "datasets", "data", "metric", "convention", "combine")


@dataclass(frozen=True)
class Claim:
    """One claim of ``published.yaml``, validated."""

    id: str
    source: str
    text: str
    pairs: tuple[tuple[str, str], ...]  # (better, worse) comparisons
    tasks: tuple[tuple[str, ...], ...]  # each entry: alternative task names, the first in the suite wins
    datasets: dict[str, tuple[str, ...]]  # column label -> alternative dataset names
    data: str
    metric: str
    convention: str
    combine: str
    windows: tuple[str, ...] = ()  # terminal windows "a-b" of an extrapolation (frames a+1..b)
    block_frames: int | None = None


@dataclass(frozen=True)
class CellResult:
    """One tested cell of a claim."""

    better: str
    worse: str
    task: str
    dataset: str
    window: str | None
    verdict: str
    reason: str = ""  # why a cell is not testable
    result: Skill | None = None


# ---------------------------------------------------------------- the claims as data
@lru_cache(maxsize=1)
def known_names(suites: tuple[str, ...] = CLAIM_SUITES) -> dict[str, frozenset]:
    """Method entries, tasks and datasets of the suites the claims are written for."""
    loaded = [load_suite(name) for name in suites]
    return {"methods": frozenset(m for s in loaded for m in s.methods),
            "tasks": frozenset(t for s in loaded for t in s.tasks),
            "datasets": frozenset(d for s in loaded for d in s.datasets)}


def _names(value) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, list) else (value,)


def parse_claim(cid: str, spec: dict, known: dict) -> Claim:
    """One claim, checked: every key present and well formed, every method, task and dataset known
    (``known``: :func:`known_names`); a fault is a :class:`ConfigError` naming ``claims.<id>.<key>``."""
    where = f"benchmark/published.yaml: claims.{cid}"

    def fail(key, message):
        raise ConfigError(f"{where}.{key}: {message}")

    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: a claim is a mapping of keys (source, text, better, worse, tasks, ...)")
    missing = [k for k in REQUIRED if k not in spec]
    if missing:
        fail(missing[0], "missing (a claim needs " + ", ".join(REQUIRED) + ", and better/worse or pairs)")
    if "pairs" in spec:
        pairs = spec["pairs"]
        if not (isinstance(pairs, list) and pairs and all(isinstance(p, list) and len(p) == 2 for p in pairs)):
            fail("pairs", "give a list of [better, worse] pairs")
        pairs = [tuple(p) for p in pairs]
        keys = ["pairs"] * len(pairs)
    elif "better" in spec and "worse" in spec:
        pairs = [(spec["better"], w) for w in _names(spec["worse"])]
        keys = ["worse"] * len(pairs)
    else:
        fail("better", "give `better` and `worse` (a method or a list) or `pairs`")
    for (better, worse), key in zip(pairs, keys):
        for name, k in ((better, "better" if key == "worse" else key), (worse, key)):
            if name not in known["methods"]:
                fail(k, f"unknown method {name!r}; known: {', '.join(sorted(known['methods']))}")
    tasks = spec["tasks"]
    if not isinstance(tasks, list) or not tasks:
        fail("tasks", "give a list of tasks (an entry may be a list of alternatives)")
    tasks = [_names(t) for t in tasks]
    for name in (n for alternatives in tasks for n in alternatives):
        if name not in known["tasks"]:
            fail("tasks", f"unknown task {name!r}; known: {', '.join(sorted(known['tasks']))}")
    datasets = spec["datasets"]
    if not isinstance(datasets, dict) or not datasets:
        fail("datasets", "give a mapping column label -> dataset (or a list of alternatives)")
    datasets = {label: _names(v) for label, v in datasets.items()}
    for label, names in datasets.items():
        for name in names:
            if name not in known["datasets"]:
                fail(f"datasets.{label}", f"unknown dataset {name!r}; known: {', '.join(sorted(known['datasets']))}")
    if spec["combine"] not in COMBINE:
        fail("combine", f"{spec['combine']!r} is not one of {', '.join(COMBINE)}")
    windows = tuple(spec.get("windows") or ())
    for w in windows:
        try:
            a, b = (int(x) for x in str(w).split("-"))
            assert 0 <= a < b
        except (ValueError, AssertionError):
            fail("windows", f"{w!r} is not a window 'a-b' with 0 <= a < b (frames after the last observed one)")
    block = spec.get("block_frames")
    if block is not None and not (isinstance(block, int) and block >= 1):
        fail("block_frames", f"{block!r} is not a positive number of frames")
    return Claim(id=cid, source=str(spec["source"]), text=str(spec["text"]), pairs=tuple(pairs), tasks=tuple(tasks),
                 datasets=datasets, data=str(spec["data"]), metric=str(spec["metric"]),
                 convention=str(spec["convention"]), combine=spec["combine"], windows=windows, block_frames=block)


def load_claims(specs: dict | None = None, known: dict | None = None) -> list[Claim]:
    """The claims of ``published.yaml`` (or ``specs``), validated against ``known`` names (default:
    the names of the suites in :data:`CLAIM_SUITES`)."""
    specs = published().get("claims", {}) if specs is None else specs
    known = known_names() if known is None else known
    return [parse_claim(cid, spec, known) for cid, spec in specs.items()]


# ---------------------------------------------------------------- the cells of a claim
def claim_cells(claim: Claim, suite: Suite) -> list[tuple[str, str, str, str, str | None]]:
    """(better, worse, task, dataset, window) of every cell of ``claim`` in ``suite``: per task entry
    the first alternative the suite has, per dataset column the first alternative that task runs."""
    out = []
    for better, worse in claim.pairs:
        for alternatives in claim.tasks:
            task = next((t for t in alternatives if t in suite.tasks), None)
            if task is None:
                continue
            for names in claim.datasets.values():
                dataset = next((d for d in names if d in suite.task_datasets(task)), None)
                if dataset is not None:
                    out += [(better, worse, task, dataset, w) for w in (claim.windows or (None,))]
    return out


def _ok_seeds(table: pd.DataFrame, task: str, dataset: str, variant: str, metric: str, convention: str) -> list[int]:
    rows = table[(table["task"] == task) & (table["dataset"] == dataset) & (table["variant"] == variant)
                 & (table["split"] == "test") & (table["metric"] == metric) & (table["convention"] == convention)
                 & (table["status"] == "ok") & table["value"].notna()]
    return sorted(int(s) for s in rows["seed"].unique())


def _test_rows(table: pd.DataFrame, task: str, dataset: str, variant: str | None, metric: str) -> pd.DataFrame:
    rows = table[(table["task"] == task) & (table["dataset"] == dataset) & (table["split"] == "test")
                 & (table["metric"] == metric) & (table["status"] == "ok") & table["value"].notna()]
    return rows if variant is None else rows[rows["variant"] == variant]


def untestable(table: pd.DataFrame, claim: Claim, better: str, worse: str, task: str, dataset: str,
               window: str | None) -> str | None:
    """Why the cell cannot be tested from ``metrics.csv`` (no run, not converged, invalid, saturated),
    or None."""
    for variant in (better, worse):
        c = cell(table, [task], dataset, variant, claim.metric, claim.convention)
        if not c["n"]:
            return f"no run of {variant} ({c['why']})"
        if c.get("unconverged"):
            return f"not converged: {variant} ({c['unconverged']} seed(s))"
        if cell_valid(_test_rows(table, task, dataset, variant, "valid")["value"].to_numpy()) is False:
            return f"invalid: {variant}'s predictions break bonds or overlap atoms"
    metric, convention = ("mse_window", window) if window else (claim.metric, claim.convention)
    static = cell(table, [task], dataset, "static", metric, convention)
    ceiling = _test_rows(table, task, dataset, None, "ceiling")["value"]
    if static["n"] and len(ceiling) and saturated(static["mean"], float(ceiling.mean())):
        return f"saturated: static at {100 * static['mean'] / float(ceiling.mean()):.0f} % of the ceiling"
    return None


def paired_errors(claim: Claim, better_runs: list[dict], worse_runs: list[dict], window: str | None):
    """(better's errors [seeds, units], worse's [units] averaged over seeds, trajectory and time of each
    unit) from the run files' per-window errors, or a string saying why there are none.  Window tasks:
    a unit is a test window (its errors averaged over the offsets); extrapolation: a unit is one
    sampled future frame of one test trajectory (those inside ``window`` only), its time the frame."""
    try:
        paired = paired_window_errors(better_runs, worse_runs)
    except ValueError as exc:
        return str(exc)
    if paired is None:
        return PREDATE
    mine, base = paired
    ref = base[0]
    if (ref["metric"], ref["convention"]) != (claim.metric, claim.convention):
        return (f"the runs' per-window errors make up {ref['metric']}/{ref['convention']}, "
                f"not the claim's {claim.metric}/{claim.convention}")
    if claim.convention != "full_domain":  # window protocol: one unit per test window
        return (np.stack([w["mse"].mean(-1) for w in mine]), np.mean([w["mse"].mean(-1) for w in base], axis=0),
                ref["traj"], ref["t0"])
    offsets = ref["offsets"]
    cols = np.arange(len(offsets))
    if window:
        a, b = (int(x) for x in window.split("-"))
        cols = np.flatnonzero((offsets > a) & (offsets <= b))
        if not len(cols):
            return f"no sampled future frame in window {window}"
    n_traj = len(ref["traj"])
    return (np.stack([w["mse"][:, cols].ravel() for w in mine]),
            np.mean([w["mse"][:, cols].ravel() for w in base], axis=0),
            np.repeat(ref["traj"], len(cols)), np.tile(offsets[cols], n_traj))


def judge_cell(suite: Suite, table: pd.DataFrame, claim: Claim, better: str, worse: str, task: str, dataset: str,
              window: str | None = None, n_boot: int | None = None) -> CellResult:
    """The verdict of one cell: the paired relative difference of ``better`` against ``worse`` on the
    same test windows, with its bootstrap interval, or why it cannot be tested."""
    done = dict(better=better, worse=worse, task=task, dataset=dataset, window=window)
    for variant in (better, worse):
        if variant not in suite.task_methods(task):
            return CellResult(**done, verdict="not testable", reason=f"{variant} is not run by task {task}")
    table = table[(table["task"] == task) & (table["dataset"] == dataset)]  # the cell's rows, once
    reason = untestable(table, claim, better, worse, task, dataset, window)
    if reason:
        return CellResult(**done, verdict="not testable", reason=reason)
    runs = {}
    for variant in (better, worse):
        paths = [suite.run_path(Cell(task, dataset, variant, s))
                 for s in _ok_seeds(table, task, dataset, variant, claim.metric, claim.convention)]
        if not all(p.exists() for p in paths):
            return CellResult(**done, verdict="not testable", reason=f"run files of {variant} are missing")
        runs[variant] = [read_json(p) for p in paths]
    errors = paired_errors(claim, runs[better], runs[worse], window)
    if isinstance(errors, str):
        return CellResult(**done, verdict="not testable", reason=errors)
    mine, base, traj, t0 = errors
    entry = suite.tasks[task]
    block = claim.block_frames or (entry.delta_frame if entry.protocol == "window" else EXTRAPOLATE_BLOCK_FRAMES)
    try:
        result = bootstrap_skill(mine, base, traj, t0, block_frames=block,
                                 **({} if n_boot is None else {"n_boot": n_boot}))
    except ValueError as exc:
        return CellResult(**done, verdict="not testable", reason=str(exc))
    verdict = "supported" if result.low > 0 else "contradicted" if result.high < 0 else "not separable"
    return CellResult(**done, verdict=verdict, result=result)


def claim_verdict(claim: Claim, results: list[CellResult]) -> tuple[str, str]:
    """(verdict, the verdict in words) of a claim from its cells, by its ``combine`` rule."""
    counts = Counter(r.verdict for r in results)
    n = len(results)
    sup, con, sep, untested = (counts[v] for v in VERDICTS)
    reasons = Counter(r.reason for r in results if r.verdict == "not testable")
    why = "; ".join(f"{reason} ({k} cell{'s' if k > 1 else ''})" for reason, k in reasons.most_common())
    if n == 0:
        return "not testable", "not testable: the suite has none of its cells"
    if untested == n:
        return "not testable", f"not testable: {why}"
    tally = f"{sup} of {n} cells supported, {con} contradicted, {sep} not separable, {untested} not testable"
    if claim.combine == "every":
        if sup == n:
            return "supported", f"supported in every cell ({n} of {n})"
        if con:
            return "contradicted", f"contradicted: {tally}"
        if sep:
            return "not separable", f"not separable: {tally}"
        return "not testable", f"not testable in every cell: {tally}"
    if sup > n / 2:
        return "supported", f"supported in a majority of cells: {tally}"
    if con > n / 2:
        return "contradicted", f"contradicted in a majority of cells: {tally}"
    if sup + con + sep > n / 2:
        return "not separable", f"not separable: no majority either way: {tally}"
    return "not testable", f"not testable in a majority of cells: {tally}"


# ---------------------------------------------------------------- the table
def _difference(r: CellResult) -> str:
    if r.result is None:
        return "–"
    s = r.result
    return f"{100 * s.value:+.1f} % [{100 * s.low:+.1f}, {100 * s.high:+.1f}] ({s.scheme}, {s.n_seeds} seeds)"


NOTE = (f"Each claim is tested cell by cell on our test data: a cell is one comparison (the claimed-better "
        f"method against the claimed-worse one) on one task and dataset (and, for DoMiNO Table 3, one terminal "
        f"window). Its number is the relative difference 1 - MSE(better) / MSE(worse) on the same test windows, "
        f"with a {100 * CONFIDENCE:.0f} % interval from the paired bootstrap of `benchmark/stats.py`: test "
        f"trajectories then windows within them are resampled (a single test trajectory: contiguous blocks "
        f"at least the decorrelation length long), and the better method's seeds with them; the worse method's "
        f"errors, averaged over its seeds, are the baseline. A cell **supports** the claim when the whole interval "
        f"is above 0, **contradicts** it when the whole interval is below 0, and is **not separable** when the "
        f"interval covers 0. It is **not testable** when a method has no finished run there, a run did not "
        f"converge, a method's predictions are invalid (bonds broken or atoms overlapping), the cell is "
        f"saturated (static within 5 % of the ceiling: no method can be told apart there), or the run files "
        f"predate per-window errors (the interval needs them; rerun the cell). A claim combines its cells by its "
        f"rule: `every` (supported when every cell is, contradicted when any cell is) or `majority` (supported, or "
        f"contradicted, when more than half of its cells are). Stand-in data is named in the data column: "
        f"a verdict there is about the stand-in, not about the paper's data.")


def claims_table(suite: Suite, table: pd.DataFrame, claims: list[Claim] | None = None,
                 n_boot: int | None = None) -> str:
    """``results/tables/claims.md``: every claim with its verdict and the cells behind it."""
    claims = load_claims() if claims is None else claims
    tested = {c.id: [judge_cell(suite, table, c, *cell_key, n_boot=n_boot) for cell_key in claim_cells(c, suite)]
              for c in claims}
    lines = ["# The papers' claims, tested on our data", "", f"Suite `{suite.name}`. {NOTE}", ""]
    rows = []
    for c in claims:
        results = tested[c.id]
        _, words = claim_verdict(c, results)
        counts = Counter(r.verdict for r in results)
        rows.append([f"**{c.id}**: {c.text}", c.source, c.data, words, *(str(counts[v]) for v in VERDICTS),
                     f"[{len(results)} cells](#{c.id})"])
    lines += md_table(["claim", "source", "data", "verdict", "supported", "contradicted", "not separable",
                       "not testable", "cells"], rows, align="llllrrrrl")
    lines += ["", "## Cells behind each claim", ""]
    for c in claims:
        lines += [f"### {c.id}", "", f"{c.source}: \"{c.text}\" Rule: `{c.combine}`; metric `{c.metric}` "
                  f"(`{c.convention}`){', per window ' + ', '.join(c.windows) if c.windows else ''}.", ""]
        results = tested[c.id]
        if not results:
            lines += [f"No cell: suite `{suite.name}` runs none of its tasks and datasets.", ""]
            continue
        body = [[r.better, r.worse, r.task, r.dataset + (f" ({r.window})" if r.window else ""), _difference(r),
                 r.verdict + (f": {r.reason}" if r.reason else "")] for r in results]
        lines += md_table(["better", "worse", "task", "dataset", "1 - MSE(better)/MSE(worse) [95 % interval]",
                           "verdict"], body) + [""]
    lines += ["Generated by `mdhorizon leaderboard` from `metrics.csv`, the run files' per-window errors and "
              "`benchmark/published.yaml` (`claims:`); do not edit by hand.", ""]
    return "\n".join(lines)
