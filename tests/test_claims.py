"""The papers' claims tested on synthetic run files with per-window errors (benchmark/report/claims.py)."""

import json

import numpy as np
import pandas as pd
import pytest

from benchmark.aggregate import COLUMNS
from benchmark.config import ConfigError, load_suite
from benchmark.report.claims import (
    PREDATE,
    CellResult,
    claim_verdict,
    claims_table,
    judge_cell,
    known_names,
    load_claims,
    paired_errors,
    parse_claim,
)
from benchmark.stats import encode_rows
from benchmark.suite import Cell

TASK, DATASET, SEEDS = "lj_window", "lj_tiny", (0, 1)
CEILING = 10.0
TRAJ, T0 = np.repeat([0, 1], 30), np.tile(np.arange(30) * 5, 2)  # 2 test trajectories x 30 windows


def claim(better="egnn", worse="gfnode", **extra):
    spec = {"source": "Test paper, Table 1", "text": f"{better} beats {worse}", "better": better, "worse": worse,
            "tasks": [TASK], "datasets": {"LJ": [DATASET]}, "data": "tiny LJ (stand-in)", "metric": "mse",
            "convention": "mean_over_offsets", "combine": "every", **extra}
    return parse_claim("test_claim", spec, known_names(("smoke",)))


def window_errors(mse):
    return {"metric": "mse", "convention": "mean_over_offsets", "offsets": "10 20 30 40",
            "traj": " ".join(map(str, TRAJ)), "t0": " ".join(map(str, T0)), "mse": encode_rows(mse)}


@pytest.fixture
def board(tmp_path):
    """A smoke-suite layout in a temporary folder: ``write(variant, [mse per seed])`` writes the run files
    (per-window errors [60 windows, 4 offsets]) and the metric rows of a method; ``table()`` the long table."""
    suite = load_suite("smoke", work_dir=str(tmp_path / "work"), results_dir=str(tmp_path / "results"))
    rows = []

    def write(variant, per_seed, static_mse=None, artifacts=True):
        for seed, mse in zip(SEEDS, per_seed):
            path = suite.run_path(Cell(TASK, DATASET, variant, seed))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"artifacts": {"window_errors": window_errors(mse)} if artifacts else {}}))
            base = {"task": TASK, "dataset": DATASET, "variant": variant, "method": variant, "seed": seed,
                    "split": "test", "status": "ok", "protocol": "window"}
            rows.append({**base, "metric": "mse", "convention": "mean_over_offsets", "value": float(np.mean(mse))})
            rows.append({**base, "metric": "ceiling", "convention": "box2_over_12", "value": CEILING})

    def table():
        return pd.DataFrame(rows, columns=COLUMNS)

    return suite, write, table


def _base(seed=0):
    return np.random.default_rng(seed).uniform(1.0, 2.0, size=(60, 4))


def test_half_the_error_is_supported_and_reversed_is_contradicted(board):
    suite, write, table = board
    base = _base()
    write("egnn", [0.5 * base, 0.5 * base])
    write("gfnode", [base, base])
    write("static", [2 * base, 2 * base])  # far below the ceiling: not saturated
    got = judge_cell(suite, table(), claim(), "egnn", "gfnode", TASK, DATASET, n_boot=300)
    assert got.verdict == "supported" and got.result.value == pytest.approx(0.5, abs=2e-3)
    assert got.result.low > 0 and got.result.scheme == "trajectories" and got.result.n_seeds == 2
    back = judge_cell(suite, table(), claim("gfnode", "egnn"), "gfnode", "egnn", TASK, DATASET, n_boot=300)
    assert back.verdict == "contradicted" and back.result.value == pytest.approx(-1.0, abs=5e-3)
    assert back.result.high < 0


def test_equal_errors_with_tiny_noise_are_not_separable(board):
    suite, write, table = board
    base, rng = _base(), np.random.default_rng(1)
    write("egnn", [base * (1 + 1e-3 * rng.normal(size=base.shape)) for _ in SEEDS])
    write("gfnode", [base * (1 + 1e-3 * rng.normal(size=base.shape)) for _ in SEEDS])
    write("static", [2 * base, 2 * base])
    got = judge_cell(suite, table(), claim(), "egnn", "gfnode", TASK, DATASET, n_boot=300)
    assert got.verdict == "not separable" and got.result.low <= 0 <= got.result.high
    assert abs(got.result.value) < 1e-3


def test_saturated_old_and_missing_cells_are_not_testable(board):
    suite, write, table = board
    base = _base()
    write("egnn", [0.5 * base, 0.5 * base])
    write("gfnode", [base, base])
    write("static", [np.full_like(base, 0.97 * CEILING)] * 2)  # static at 97 % of the ceiling
    got = judge_cell(suite, table(), claim(), "egnn", "gfnode", TASK, DATASET, n_boot=50)
    assert got.verdict == "not testable" and got.reason == "saturated: static at 97 % of the ceiling"
    missing = judge_cell(suite, table(), claim("egnn", "egno"), "egnn", "egno", TASK, DATASET, n_boot=50)
    assert missing.verdict == "not testable" and missing.reason.startswith("no run of egno")


def test_runs_without_per_window_errors_are_not_testable(board):
    suite, write, table = board
    base = _base()
    write("egnn", [0.5 * base, 0.5 * base], artifacts=False)
    write("gfnode", [base, base], artifacts=False)
    got = judge_cell(suite, table(), claim(), "egnn", "gfnode", TASK, DATASET)
    assert got.verdict == "not testable" and got.reason == PREDATE
    text = claims_table(suite, table(), [claim()])
    assert f"| not testable: {PREDATE} (1 cell) | 0 | 0 | 0 | 1 |" in text


def test_claims_table_shows_the_cells(board):
    suite, write, table = board
    base = _base()
    write("egnn", [0.5 * base, 0.5 * base])
    write("gfnode", [base, base])
    write("static", [2 * base, 2 * base])
    text = claims_table(suite, table(), [claim()], n_boot=100)
    assert "| supported in every cell (1 of 1) | 1 | 0 | 0 | 0 | [1 cells](#test_claim) |" in text
    assert "| egnn | gfnode | lj_window | lj_tiny | +50.0 % [" in text


def test_verdict_of_a_claim_follows_its_rule():
    def cells(*verdicts):
        return [CellResult("a", "b", "t", "d", None, v, "old runs" if v == "not testable" else "") for v in verdicts]

    every, majority = claim(), claim(combine="majority")
    assert claim_verdict(every, cells("supported", "supported"))[0] == "supported"
    assert claim_verdict(every, cells("supported", "contradicted", "supported"))[0] == "contradicted"
    assert claim_verdict(every, cells("supported", "not separable"))[0] == "not separable"
    assert claim_verdict(every, cells("not testable", "not testable")) == (
        "not testable", "not testable: old runs (2 cells)")
    assert claim_verdict(majority, cells("supported", "supported", "not separable"))[0] == "supported"
    assert claim_verdict(majority, cells("supported", "contradicted", "contradicted"))[0] == "contradicted"
    assert claim_verdict(majority, cells("supported", "not separable", "contradicted"))[0] == "not separable"
    assert claim_verdict(every, []) == ("not testable", "not testable: the suite has none of its cells")


def test_extrapolation_units_are_the_sampled_frames_inside_the_window():
    c = parse_claim("w", {"source": "s", "text": "t", "better": "domino", "worse": "lgode", "tasks": ["lj_extrapolate"],
                          "datasets": {"LJ": "lj_tiny"}, "data": "d", "metric": "mse", "convention": "full_domain",
                          "combine": "every", "windows": ["10-20"]}, known_names(("smoke",)))
    mse = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])  # 2 test trajectories x 4 sampled frames
    art = {"metric": "mse", "convention": "full_domain", "traj": "0 1", "t0": "40 40", "offsets": "5 12 20 31"}
    runs = [{"artifacts": {"window_errors": {**art, "mse": encode_rows(mse)}}}]
    worse = [{"artifacts": {"window_errors": {**art, "mse": encode_rows(2 * mse)}}}]
    mine, base, traj, t0 = paired_errors(c, runs, worse, "10-20")  # frames 11..20: offsets 12 and 20
    np.testing.assert_allclose(mine, [[2.0, 3.0, 6.0, 7.0]])
    np.testing.assert_allclose(base, [4.0, 6.0, 12.0, 14.0])
    assert traj.tolist() == [0, 0, 1, 1] and t0.tolist() == [12, 20, 12, 20]
    assert paired_errors(c, runs, worse, "32-40") == "no sampled future frame in window 32-40"
    assert paired_errors(c, [{"rows": []}], worse, None) == PREDATE


@pytest.mark.parametrize("key, value, message", [
    ("worse", ["gfnode", "gfnode_typo"], "claims.bad.worse: unknown method 'gfnode_typo'"),
    ("better", "egnn_x", "claims.bad.better: unknown method 'egnn_x'"),
    ("tasks", [["md17_irregular", "no_such_task"]], "claims.bad.tasks: unknown task 'no_such_task'"),
    ("datasets", {"LJ": ["lj_argon", "lj_tiny2"]}, "claims.bad.datasets.LJ: unknown dataset 'lj_tiny2'"),
    ("combine", "most", "claims.bad.combine: 'most' is not one of every, majority"),
    ("windows", ["100-80"], "claims.bad.windows: '100-80' is not a window"),
])
def test_bad_claims_name_the_claim_and_the_key(key, value, message):
    spec = {"source": "s", "text": "t", "better": "gfnode", "worse": "egnn", "tasks": ["md17_irregular"],
            "datasets": {"LJ": ["lj_argon"]}, "data": "d", "metric": "mse", "convention": "mean_over_offsets",
            "combine": "every", key: value}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_claims({"bad": spec})
    with pytest.raises(ConfigError, match="claims.bad.text: missing"):
        load_claims({"bad": {k: v for k, v in spec.items() if k != "text"}})


def test_published_claims_are_valid_and_cover_the_issue():
    claims = {c.id: c for c in load_claims()}
    assert {"gfnode_lowest_md17", "gfnode_beats_ablations", "egno_loses_irregular", "domino_beats_lgode",
            "domino_levels", "ito_rollout_worse"} <= set(claims)
    assert claims["domino_levels"].pairs == (("domino", "domino_l01"), ("domino_l01", "domino_l0"))
    assert claims["ito_rollout_worse"].pairs == (("ito_1step", "ito_rollout"),)
    assert claims["gfnode_beats_ablations"].combine == "majority"
    assert len(claims["gfnode_lowest_md17"].pairs) == 6 and len(claims["gfnode_lowest_md17"].datasets) == 8
    assert all("stand-in" in c.data for c in claims.values() if any("md17xtb" in n or "ala2_sim" in n
                                                                     for v in c.datasets.values() for n in v))
