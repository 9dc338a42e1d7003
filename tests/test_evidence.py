"""Evaluation v2 on the board, with hand-computed numbers: skill against the best trivial baseline
with its interval, saturation, validity, convergence, the ranks and the five-line summary; and a
custom suite of one learned method, run through load + aggregate + tables + leaderboard."""

import numpy as np
import pandas as pd
import pytest
import yaml

from benchmark.aggregate import read_metrics, write_metrics
from benchmark.config import SUITES_DIR, load_suite
from benchmark.effects import read_skill
from benchmark.io import write_json
from benchmark.report.cross_paper import headline
from benchmark.report.evidence import CellEvidence, ranked_only, skill_text
from benchmark.report.leaderboard import leaderboard_md, render_tables
from benchmark.report.ranking import wins_text
from benchmark.report.summary import budget_line, summary_lines
from benchmark.report.task_tables import task_table
from benchmark.stats import Skill, encode_rows

TRAJ = [0] * 6 + [1] * 6  # 12 test windows in two test trajectories
STATIC = np.array([[1.0 + 0.1 * (w % 3)] * 8 for w in range(12)])  # [windows, offsets], mean 1.1


def _one_method_suite(tmp_path):
    """A user's suite: one task that lists only the user's own learned method (egnn)."""
    raw = yaml.safe_load((SUITES_DIR / "smoke.yaml").read_text())
    raw["name"] = "mine"
    raw["tasks"] = {"lj_window": {**raw["tasks"]["lj_window"], "methods": ["egnn"]}}
    raw["methods"] = {"egnn": raw["methods"]["egnn"]}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_suite(str(path), work_dir=str(tmp_path / "w"), results_dir=str(tmp_path / "r"))


def _write_runs(suite, errors: dict, ceiling: float | None = None, converged: dict | None = None,
                train_seconds: float = 1800.0):
    """Run files of every cell: per-window errors ``errors[variant]`` [12, 8], the rows they make up,
    a ``ceiling`` row when given, and ``converged`` per (variant, seed) when given."""
    for cell in suite.cells:
        err = errors[cell.variant]
        rows = [{"split": "test", "metric": "mse", "convention": "mean_over_offsets", "horizon": 40, "offset": None,
                 "value": float(err.mean()), "unit": "A^2"},
                {"split": "test", "metric": "mse", "convention": "last_offset", "horizon": 40, "offset": None,
                 "value": float(err[:, -1].mean()), "unit": "A^2"}]
        if ceiling is not None:
            rows.append({"split": "test", "metric": "ceiling", "convention": "box2_over_12", "horizon": 40,
                         "offset": None, "value": ceiling, "unit": "A^2"})
        run = {"suite": suite.name, "protocol": "window", "task": cell.task, "dataset": cell.dataset,
               "split_variant": "by_trajectory", "method": cell.variant, "variant": cell.variant, "seed": cell.seed,
               "status": "ok", "note": "", "n_params": 0 if cell.variant == "static" else 100,
               "train_seconds": 0.0 if cell.variant == "static" else train_seconds, "predict_seconds": 0.1,
               "device": "cpu", "hardware": "cpu x2", "git_sha": "abc", "config_hash": suite.config_hash(cell),
               "dataset_sha256": "d" * 64, "metrics_version": "4", "command": "snakemake", "rows": rows,
               "artifacts": {"window_errors": {
                   "metric": "mse", "convention": "mean_over_offsets", "traj": " ".join(map(str, TRAJ)),
                   "t0": " ".join(str(10 * i) for i in range(12)), "offsets": " ".join(str(5 * k) for k in range(1, 9)),
                   "mse": encode_rows(err)}}}
        if converged and (cell.variant, cell.seed) in converged:
            run["converged"] = converged[(cell.variant, cell.seed)]
        write_json(suite.run_path(cell), run)


@pytest.fixture
def mine(tmp_path):
    suite = _one_method_suite(tmp_path)
    assert suite.tasks["lj_window"].methods == ("egnn", "static")  # the reference added to the task
    assert list(suite.methods) == ["egnn", "static"] and not suite.methods["static"].trained
    return suite


def test_one_learned_method_suite_runs_through_aggregate_tables_and_leaderboard(mine):
    """Half the static error on every window: skill exactly 0.5 in every bootstrap resample, so the
    interval is [0.5, 0.5], a significant win, and the summary and headline say so."""
    _write_runs(mine, {"egnn": 0.5 * STATIC, "static": STATIC})
    table, missing = write_metrics(mine)
    assert missing == []
    skill = read_skill(mine.skill_path)
    assert list(skill["offset"]) == ["mean", *map(str, range(1, 9))]
    row = skill.iloc[0]
    assert (row["variant"], row["baseline"], row["scheme"]) == ("egnn", "static", "trajectories")
    assert (row["skill"], row["ci_low"], row["ci_high"]) == (0.5, 0.5, 0.5)
    assert (row["n_windows"], row["n_trajectories"], row["n_seeds"], row["metrics_version"]) == (12, 2, 2, "4")
    table = read_metrics(mine.metrics_path)
    text = task_table(mine, table, "lj_window")
    assert "| egnn | +0.500 [+0.500, +0.500] ✓ |" in text and "| static | reference |" in text
    tables = render_tables(mine, table)  # the leaderboard's tables: no KeyError without the other baselines
    assert "+0.500 [+0.500, +0.500] ✓" in tables["cross_paper"]
    assert "| egnn | 0.00 | 1.00 | 1 | 1/1 | lj_tiny |" in headline(mine, table)
    board = leaderboard_md(mine, table, tables)
    assert board.splitlines()[2].startswith("- **Significant:** 1 of 1 (method, cell) results with an interval "
                                            "beat their cell's best trivial baseline")
    assert board.splitlines()[2].endswith(": egnn; 0 have no interval.")


def test_a_worse_method_is_no_win_and_the_summary_line_follows_the_numbers(mine):
    _write_runs(mine, {"egnn": 1.5 * STATIC, "static": STATIC})
    write_metrics(mine)
    table = read_metrics(mine.metrics_path)
    assert read_skill(mine.skill_path).iloc[0]["skill"] == -0.5
    assert "| egnn | 1.00 | 2.00 | 1 | 0/1 | lj_tiny |" in headline(mine, table)  # last of the cell's 2, no win
    first = summary_lines(mine, table)[0]
    assert first.startswith("- **Significant:** 0 of 1 (method, cell) results")
    assert first.endswith("; 0 have no interval.")


def test_saturated_cell_is_marked_and_left_out_of_the_ranks(mine):
    """Static's MSE 1.1; ceiling 1.15: 1.1 >= 0.95 x 1.15 = 1.0925, saturated; ceiling 1.2: 1.1 < 1.14, not."""
    _write_runs(mine, {"egnn": 0.5 * STATIC, "static": STATIC}, ceiling=1.15)
    write_metrics(mine)
    table = read_metrics(mine.metrics_path)
    text = task_table(mine, table, "lj_window")
    assert "| lj_tiny | 1.150 | static | 1.100 | 95.7 % | yes ⊘ |" in text
    assert "| egnn | +0.500 [+0.500, +0.500] ✓ ⊘ |" in text
    block = headline(mine, table)
    assert "Not ranked: egnn (left out: saturated); static (left out: saturated)." in block
    assert "0 of 1 cells are complete; 1 saturated, left out." in block
    assert summary_lines(mine, table)[1].startswith("- **Saturated:** 1 of 1 cells sit within 5 % of the ceiling")
    _write_runs(mine, {"egnn": 0.5 * STATIC, "static": STATIC}, ceiling=1.2)
    write_metrics(mine)
    table = read_metrics(mine.metrics_path)
    assert "| lj_tiny | 1.200 | static | 1.100 | 91.7 % | no |" in task_table(mine, table, "lj_window")
    assert "| egnn | 0.00 | 1.00 | 1 | 1/1 | lj_tiny |" in headline(mine, table)
    assert summary_lines(mine, table)[1].startswith("- **Saturated:** 0 of 1 cells")


def test_unconverged_method_is_left_out_and_says_why(mine):
    """The old 'Not ranked yet (no complete cell)' misread a method left out for not converging."""
    _write_runs(mine, {"egnn": 0.5 * STATIC, "static": STATIC}, converged={("egnn", 0): True, ("egnn", 1): False})
    write_metrics(mine)
    table = read_metrics(mine.metrics_path)
    assert "Not ranked: egnn (left out: not converged)." in headline(mine, table)
    assert summary_lines(mine, table)[3].startswith("- **Not converged:** 1 (method, cell) results have a run")


def test_budget_line_follows_the_train_times(mine):
    """Two egnn seeds of 1800 s: 1.0 h, median 30.0 min; of 3600 s: 2.0 h, 60.0 min."""
    for seconds, expected in ((1800.0, "1.0 h of training over 2 trained models (median 30.0 min, longest 30 min"),
                              (3600.0, "2.0 h of training over 2 trained models (median 60.0 min, longest 60 min")):
        _write_runs(mine, {"egnn": 0.5 * STATIC, "static": STATIC}, train_seconds=seconds)
        write_metrics(mine)
        assert expected in budget_line(mine, read_metrics(mine.metrics_path))


def _evidence(skill, valid=None, saturated=False) -> CellEvidence:
    return CellEvidence(task="t", dataset="d", means={"static": 1.0, "m": 0.5}, baseline="static", ceiling=2.0,
                        ceiling_source="runs", saturated=saturated, skills={"m": skill}, valid={"m": valid})


def test_invalid_cell_never_counts_as_a_win():
    win = Skill(value=0.5, low=0.4, high=0.6, scheme="trajectories", n_windows=12, n_trajectories=2, n_seeds=1)
    assert _evidence(win).wins("m") and _evidence(win, valid=True).wins("m")
    invalid = _evidence(win, valid=False)
    assert not invalid.wins("m") and invalid.excluded("m") == "invalid"
    assert skill_text(invalid, "m") == "+0.500 [+0.400, +0.600] ✗"
    assert wins_text({("t", "d"): invalid}, "m", [("t", "d")]) == "0/1"
    table = pd.DataFrame({"task": ["t", "t"], "dataset": ["d", "d"], "variant": ["static", "m"],
                          "status": ["ok", "ok"]})
    assert list(ranked_only(table, {("t", "d"): invalid})["status"]) == ["ok", "not_applicable"]


def test_no_interval_no_win():
    """A point estimate alone (runs that predate per-window errors) is never a win."""
    e = _evidence(0.5)
    assert not e.wins("m") and e.interval("m") is None and skill_text(e, "m") == "+0.500"
    assert wins_text({("t", "d"): e}, "m", [("t", "d")]) == "n/a"
    straddles = Skill(value=0.1, low=-0.05, high=0.2, scheme="trajectories", n_windows=12, n_trajectories=2, n_seeds=1)
    assert not _evidence(straddles).wins("m")
