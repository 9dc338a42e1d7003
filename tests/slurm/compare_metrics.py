"""Compare two ``metrics.csv`` files: a run through SLURM against a local run of the same suite.

    python tests/slurm/compare_metrics.py SLURM_METRICS_CSV LOCAL_METRICS_CSV

(each with its ``runs.csv`` next to it).

Exits 0 when both tables hold the same rows with the same values, 1 otherwise (printing every
difference).  Ignored are only the provenance columns that legitimately differ between two runs
of the same cells: wall-clock timings, the hardware string, the reproduce command (it names the
run's own work and results directories) and the git commit (printed; it changes when a commit
lands between the two runs).  Dataset checksums and config hashes are compared.  Values are compared exactly as written
(``%.8g``): the same code on the same machine with the same seeds must give the same numbers.
Both tables must also be complete (no missing, failed or diverged cell), so that two empty
or two broken runs cannot pass as "the same".

Used by tests/slurm/run_slurm_test.sh (``make test-slurm``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

# git_sha: the commit at evaluation time; it moves when someone commits while the two runs go
# (a shared working tree), so it is reported, not compared.
IGNORED = ["train_seconds", "predict_seconds", "hardware", "command", "git_sha"]
KEY = ["suite", "protocol", "task", "dataset", "split_variant", "method", "variant", "seed",
       "split", "metric", "convention", "horizon", "offset"]


def load(path: str) -> pd.DataFrame:
    # Strings only: values are compared as written, NaN as the empty string.  metrics.csv holds the
    # metric rows, the runs.csv next to it their runs' columns: joined on run_id.
    metrics = pd.read_csv(path, dtype=str, keep_default_na=False)
    runs = pd.read_csv(Path(path).with_name("runs.csv"), dtype=str, keep_default_na=False)
    table = metrics.merge(runs, on="run_id", how="inner", validate="many_to_one").drop(columns="run_id")
    missing = sorted(set(KEY + IGNORED + ["value", "status"]) - set(table.columns))
    if missing:
        raise SystemExit(f"{path}: not a metrics.csv, columns {missing} are missing")
    return table.sort_values(KEY, kind="stable").reset_index(drop=True)


def compare(slurm: pd.DataFrame, local: pd.DataFrame) -> list[str]:
    problems = []
    for name, table in (("slurm", slurm), ("local", local)):
        if table.empty:
            problems.append(f"{name}: metrics.csv has no rows")
        bad = table[table["status"] != "ok"]
        for _, row in bad.drop_duplicates(["task", "dataset", "variant", "seed"]).iterrows():
            problems.append(f"{name}: cell {row['task']}/{row['dataset']}/{row['variant']}/seed{row['seed']} "
                            f"has status {row['status']!r} ({row['note']})")
        if (table["value"] == "").all() and not table.empty:
            problems.append(f"{name}: no metric has a value")
    if list(slurm.columns) != list(local.columns):
        problems.append(f"columns differ: {list(slurm.columns)} vs {list(local.columns)}")
        return problems
    keys_s = set(map(tuple, slurm[KEY].values))
    keys_l = set(map(tuple, local[KEY].values))
    for key in sorted(keys_s - keys_l):
        problems.append(f"row only in the SLURM run: {dict(zip(KEY, key))}")
    for key in sorted(keys_l - keys_s):
        problems.append(f"row only in the local run: {dict(zip(KEY, key))}")
    if problems or len(slurm) != len(local):
        if len(slurm) != len(local):
            problems.append(f"row counts differ: {len(slurm)} vs {len(local)}")
        return problems
    compared = [c for c in slurm.columns if c not in IGNORED]
    for i in range(len(slurm)):
        for column in compared:
            a, b = slurm.at[i, column], local.at[i, column]
            if a != b:
                where = ", ".join(f"{k}={slurm.at[i, k]}" for k in KEY if slurm.at[i, k] != "")
                problems.append(f"{column}: SLURM {a!r} != local {b!r} at {where}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    slurm, local = load(argv[0]), load(argv[1])
    problems = compare(slurm, local)
    for line in problems:
        print(f"DIFFERENCE {line}")
    if problems:
        print(f"metrics differ: {len(problems)} problem(s)")
        return 1
    shas = sorted(set(slurm["git_sha"]) | set(local["git_sha"]))
    if len(shas) > 1:
        print(f"note: the runs saw {len(shas)} git commits (not compared): {shas}")
    n_values = int((slurm["value"] != "").sum())
    print(f"metrics equal: {len(slurm)} rows, {n_values} metric values, "
          f"{len(slurm.drop_duplicates(['task', 'dataset', 'variant', 'seed']))} cells; "
          f"ignored columns {IGNORED}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
