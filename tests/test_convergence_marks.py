"""Tables mark a cell with a run that did not converge (only runs that carry the flag), and the ranks
leave that cell out; runs without the flag (every committed run file) render as before."""

import numpy as np
import pandas as pd

from benchmark.aggregate import COLUMNS
from benchmark.config import load_suite
from benchmark.report.cells import UNCONVERGED_MARK, converged_only, unconverged
from benchmark.report.task_tables import task_table


def _table(flags: dict) -> pd.DataFrame:
    """Test-split MSE rows of the smoke suite's lj_window task: {variant: [converged flag per seed]}."""
    rows = []
    for variant, per_seed in flags.items():
        for seed, flag in enumerate(per_seed):
            for convention in ("mean_over_offsets", "last_offset"):
                rows.append({"suite": "smoke", "protocol": "window", "task": "lj_window", "dataset": "lj_tiny",
                             "split_variant": "by_trajectory", "method": variant, "variant": variant, "seed": seed,
                             "split": "test", "metric": "mse", "convention": convention, "horizon": 40,
                             "offset": None, "value": 0.1 + seed + (variant == "egnn"), "unit": "A^2",
                             "status": "ok", "note": "", "n_params": 10, "train_seconds": 1.0,
                             "converged": flag})
    return pd.DataFrame(rows, columns=COLUMNS)


def test_unconverged_cells_are_marked_and_left_out_of_the_ranks():
    suite = load_suite("smoke")
    table = _table({"static": [np.nan, np.nan], "egnn": [True, False], "ndcn": [True, True]})
    assert unconverged(table).tolist() == [False] * 6 + [True] * 2 + [False] * 4
    text = task_table(suite, table, "lj_window")
    egnn = next(line for line in text.splitlines() if line.startswith("| egnn |"))
    ndcn = next(line for line in text.splitlines() if line.startswith("| ndcn |"))
    assert UNCONVERGED_MARK in egnn and UNCONVERGED_MARK not in ndcn
    assert f"{UNCONVERGED_MARK} = at least one seed's training did not converge" in text
    ranked = converged_only(table)
    assert set(ranked[ranked["variant"] == "egnn"]["status"]) == {"not_applicable"}  # both seeds: the cell
    assert set(ranked[ranked["variant"] != "egnn"]["status"]) == {"ok"}


def test_runs_without_the_flag_render_as_before():
    suite = load_suite("smoke")
    table = _table({"static": [np.nan, np.nan], "egnn": [np.nan, np.nan]})
    assert not unconverged(table).any() and converged_only(table) is table
    assert UNCONVERGED_MARK not in task_table(suite, table, "lj_window")
    diverged = _table({"egnn": [False, False]}).assign(status="diverged")
    assert not unconverged(diverged).any()  # a diverged run stays a failure, not an unconverged cell
