"""Training throughput of this tree against an earlier revision, in one run:
``python -m benchmark.perf --baseline [REV]``.

The revision's files are exported (``git archive REV``, no worktree, nothing written to the
repository) into a temporary directory, and every measurement runs as a fresh worker process
(``python -m benchmark.perf --worker SPEC``, which every revision since the restructuring has) with
that directory or this tree first on the path. Per (case, method) the two sides alternate
``--repeat`` times so both see the same machine load, and the best of the repeats counts (the
least disturbed one: the CPU may be shared). The figure is optimiser steps per CPU second of the
worker process, ``(samples per epoch / batch) / CPU seconds per epoch``, one forward + backward +
Adam step on the case's synthetic batch.

:data:`BASELINE_REV` is the commit before the speed work on the EGNN layer (the default REV).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from benchmark.perf.cases import EPOCH_SAMPLES

BASELINE_REV = "c392018"  # the last commit before the speed work of the EGNN family (issue 30, item 6)
REPO = Path(__file__).resolve().parents[2]


def export_revision(rev: str, dest: Path, repo: Path = REPO) -> Path:
    """The files of ``rev`` under ``dest`` (``git archive``); raises ValueError naming the revision."""
    proc = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", rev], capture_output=True)
    if proc.returncode != 0:
        raise ValueError(f"--baseline {rev!r}: git archive failed ({proc.stderr.decode().strip()[-200:]}); "
                         f"give a commit of {repo}")
    tar = dest / "rev.tar"
    tar.write_bytes(proc.stdout)
    with tarfile.open(tar) as t:
        t.extractall(dest / "tree", filter="data")
    return dest / "tree"


def run_worker_in(tree: Path, spec: dict, threads: int, malloc: str) -> dict:
    """One training measurement with ``tree`` first on the path, in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "benchmark.perf", "--worker", json.dumps(spec), "--threads", str(threads),
           "--malloc", malloc]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tree, env=env)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {(proc.stderr.strip().splitlines() or ['no output'])[-1][-300:]}"}
    return json.loads(lines[-1])


def steps_per_cpu_s(result: dict) -> float | None:
    """Optimiser steps per CPU second of a training measurement (None when it has none)."""
    if "error" in result or not result.get("epoch_cpu_s"):
        return None
    return EPOCH_SAMPLES / result["batch"] / result["epoch_cpu_s"]


def compare(rev: str, suite: str, cases, variants, batches: int, threads: int, malloc: str, repeat: int,
            echo=print) -> list[dict]:
    """Rows {case, variant, before, after, ratio} (steps per CPU second, best of ``repeat``)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="perf-baseline-") as tmp:
        old = export_revision(rev, Path(tmp))
        echo(f"# baseline {rev} exported to {old}; {threads} thread(s), malloc {malloc}, "
             f"best of {repeat} alternating runs per side, {batches} timed steps each")
        echo(f"{'case':7} {'method':22} {'before steps/s':>15} {'after steps/s':>14} {'ratio':>7}")
        for case in cases:
            for variant in variants:
                spec = {"kind": "train", "suite": suite, "variant": variant, "case": case, "batches": batches}
                before, after, errors = [], [], []
                for _ in range(repeat):
                    for tree, out in ((old, before), (REPO, after)):
                        r = run_worker_in(tree, spec, threads, malloc)
                        s = steps_per_cpu_s(r)
                        (out.append(s) if s is not None else errors.append(r.get("error", "no training")))
                row = {"case": case, "variant": variant, "before": max(before, default=None),
                       "after": max(after, default=None), "errors": errors}
                row["ratio"] = row["after"] / row["before"] if row["before"] and row["after"] else None
                rows.append(row)
                echo(format_row(row))
    return rows


def format_row(row: dict) -> str:
    def f(x, spec):
        return "-" if x is None else format(x, spec)
    note = f"  ({row['errors'][0]})" if row["errors"] else ""
    return (f"{row['case']:7} {row['variant']:22} {f(row['before'], '15.3f')} {f(row['after'], '14.3f')} "
            f"{f(row['ratio'], '6.2f')}x{note}")
