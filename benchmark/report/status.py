"""The board's status, generated at the top of ``results/LEADERBOARD.md`` from the run data: runs
expected, with a number and without one; the machines and the training time; the dataset builds;
the code versions and the date of the newest of them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd

from benchmark.config import Suite
from benchmark.data.registry import get_kind
from benchmark.io import cpu_vendor
from benchmark.report.formatting import STATUS_WORD

REPO = Path(__file__).resolve().parents[2]


def runs_line(runs: pd.DataFrame) -> str:
    """Runs expected, with a number, and the others by status ('missing' = not yet run)."""
    ok = int((runs["status"] == "ok").sum())
    others = runs.loc[runs["status"] != "ok", "status"].value_counts().sort_index()
    line = f"- runs expected: {len(runs)}; with a number: {ok}"
    line += "".join(f"; {STATUS_WORD.get(s, s)}: {c}" for s, c in others.items())
    if others.empty:
        return line + "; missing: 0 (the board is complete)"
    return line + f"; without a number: {len(runs) - ok}"


def train_time_line(ok: pd.DataFrame) -> str:
    """Total training time over the runs with a number, each trained model once, by machine."""
    trained = ok[ok["reused_model_of"].isna()]
    hours = trained.groupby("hardware")["train_seconds"].sum() / 3600
    by_machine = "; ".join(f"{h:.2f} h on {hw}" for hw, h in sorted(hours.items(), key=lambda kv: (-kv[1], kv[0])))
    return (f"- total train time: {trained['train_seconds'].sum() / 3600:.2f} h over the runs with a number, each "
            "trained model counted once (seed-independent methods are computed for the first seed only, their "
            "other seeds reuse its numbers, `reused_from_seed`; entries with `shares_training_with` evaluate "
            "another entry's model, `reused_model_of`)" + (f"; {by_machine}" if by_machine else ""))


def hardware_line(hardware: pd.Series) -> str:
    """One line on the machines behind the runs, each with its number of runs (the `hardware` column)."""
    counts = hardware.dropna().value_counts()
    if counts.empty:
        return "- hardware: –"
    parts = [f"{hw} ({n} run{'s' if n != 1 else ''})"
             for hw, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return f"- hardware: {'; '.join(parts)}; each run's machine is in the `hardware` column of `runs.csv`"


def git_sha_line(shas: pd.Series) -> str:
    """One line on the code versions behind the runs; each run's own sha is in metrics.csv."""
    shas = shas.dropna()
    if shas.empty:
        return "- git sha: –"
    commits = sorted({s.removesuffix("-dirty") for s in shas})
    dirty = int(shas.str.endswith("-dirty").sum())
    head = f"`{commits[0]}`" if len(commits) == 1 else f"{len(commits)} commits"
    return (f"- git sha: {head}; {dirty} of {len(shas)} runs from a tree with uncommitted code changes "
            "(`-dirty`); each run's sha is in the `git_sha` column of `runs.csv`")


def commit_date(sha: str, repo: Path = REPO) -> str | None:
    """The commit date (UTC, ``YYYY-MM-DD``) of ``sha`` in the repository, None when git does not know it."""
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%cd", "--date=format-local:%Y-%m-%d", sha, "--"],
                             cwd=repo, capture_output=True, text=True, timeout=10, env={**os.environ, "TZ": "UTC"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return out.stdout.strip()


def newest_run_line(shas: pd.Series, repo: Path = REPO) -> str:
    """The date of the newest run: the runs record their code's commit, not a clock time, so it is
    the newest commit date among the runs' ``git_sha`` (a run from a tree with uncommitted changes
    may be later)."""
    commits = sorted({s.removesuffix("-dirty") for s in shas.dropna()})
    dates = {c: commit_date(c, repo) for c in commits}
    known = sorted((d, c) for c, d in dates.items() if d)
    if not known:
        return "- newest run: – (the runs' commits are not in this repository)"
    date, sha = known[-1]
    unknown = len(commits) - len(known)
    return (f"- newest run: {date} (the newest commit behind a run, `{sha[:12]}`; runs record their commit, "
            "not a clock time)" + (f"; {unknown} commit(s) not in this repository" if unknown else ""))


def builds_line(suite: Suite, runs: pd.DataFrame) -> str:
    """One line on the dataset builds behind the numbers (``benchmark.aggregate``: one build per
    dataset; runs on another build are kept with status ``other_build`` and left out of the means),
    with the processor vendor the simulated builds came from (they regenerate byte for byte only
    on that vendor's processors)."""
    other = runs[runs["status"] == "other_build"]
    if other.empty:
        line = ("- dataset builds: one per dataset; every run with a number used it (its sha256 is in the "
                "`dataset_sha256` column of `runs.csv`)")
    else:
        per = ", ".join(f"`{ds}` {n}" for ds, n in other["dataset"].value_counts().sort_index().items())
        line = (f"- dataset builds: {len(other)} run(s) used another build of their dataset than the board's ({per}) "
                "and are left out of the means (`other data build` in the tables)")
    simulated = [d for d, entry in suite.datasets.items() if get_kind(entry.kind).simulated]
    ok = runs[(runs["status"] == "ok") & runs["dataset"].isin(simulated)]
    # Builds made on OpenMM's Reference platform (the run files record the engine) are the same on
    # every x86-64 processor (benchmark/data/lj.py); the others only on the same vendor's.
    engines = (ok["dataset_engine"] if "dataset_engine" in ok else pd.Series("", index=ok.index)).fillna("").astype(str)
    anywhere = sorted(d for d, g in engines.groupby(ok["dataset"]) if g.str.endswith(" Reference").all())
    if anywhere:
        line += ("; " + ", ".join(f"`{d}`" for d in anywhere) + " (OpenMM's Reference platform) regenerate"
                 f"{'s' if len(anywhere) == 1 else ''} byte for byte on any x86-64 processor")
        ok = ok[~ok["dataset"].isin(anywhere)]
    vendors = {d: {cpu_vendor(str(h)) for h in g["hardware"]} for d, g in ok.groupby("dataset")}
    if not vendors or any(None in found for found in vendors.values()):
        return line  # a machine of unknown vendor: say nothing rather than guess
    by_vendor: dict[str, list[str]] = {}
    for d, found in sorted(vendors.items()):
        by_vendor.setdefault(" and ".join(sorted(found)), []).append(d)
    if len(by_vendor) == 1:
        made = f"all made on {next(iter(by_vendor))} processors"
    else:
        made = ("made on " + " and ".join(f"{v} ({', '.join(f'`{d}`' for d in ds)})" for v, ds in by_vendor.items())
                + " processors")
    return (f"{line}; the {'other ' if anywhere else ''}simulated ones were {made} and regenerate byte for byte "
            "only on the same vendor's (README, *Simulated data depend on the processor*; elsewhere, "
            "`mdhorizon data import` takes a board build)")


def checksums_line(ok: pd.DataFrame, results_dir: Path) -> str:
    """The build of each dataset behind the numbers: its sha256 (first 12 hex digits), engine, runs,
    and its data card (``results/data/<dataset>.md``) where there is one."""
    if ok.empty or "dataset_sha256" not in ok:
        return "- builds behind the numbers: –"
    parts = []
    for (ds, sha), g in ok.groupby(["dataset", "dataset_sha256"], sort=True):
        engines = sorted({str(e) for e in g.get("dataset_engine", pd.Series(dtype=object)).dropna() if e})
        made = f", {', '.join(engines)}" if engines else ""
        card = f", [card](data/{ds}.md)" if (results_dir / "data" / f"{ds}.md").exists() else ""
        parts.append(f"`{ds}` `{str(sha)[:12]}` ({len(g)} run{'s' if len(g) != 1 else ''}{made}{card})")
    return "- builds behind the numbers (dataset, sha256, runs): " + "; ".join(parts)


def status_lines(suite: Suite, table: pd.DataFrame) -> list[str]:
    """The status block of LEADERBOARD.md (one line each)."""
    runs = table.drop_duplicates(["task", "dataset", "variant", "seed"])
    ok = runs[runs["status"] == "ok"]
    return [runs_line(runs), train_time_line(ok), hardware_line(ok["hardware"]), builds_line(suite, runs),
            checksums_line(ok, suite.results_dir), git_sha_line(ok["git_sha"]), newest_run_line(ok["git_sha"])]
