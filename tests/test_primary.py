"""The task key ``primary`` (mse | mse_aligned): config checks, the aligned errors in evaluation,
and tables, ranks and skill.csv following the task's choice (benchmark.metrics.primary)."""

import numpy as np
import pytest
import torch
import yaml

from benchmark.aggregate import collect, read_metrics, write_metrics
from benchmark.config import SUITES_DIR, ConfigError, load_suite
from benchmark.effects import read_skill
from benchmark.io import write_json
from benchmark.metrics import placeholder_rows, primary
from benchmark.report.cross_paper import cross_paper
from benchmark.report.evidence import cell_evidence
from benchmark.report.ranking import rank_columns
from benchmark.report.task_tables import task_table
from benchmark.stats import encode_rows, read_window_errors

TRAJ = [0] * 6 + [1] * 6  # 12 test windows in two test trajectories
STATIC = np.array([[1.0 + 0.1 * (w % 3)] * 8 for w in range(12)])  # [windows, offsets], mean 1.1


def _raw_suite(primary_key: str | None = "mse_aligned", kind: str = "ala2_sim") -> dict:
    """The smoke suite cut to one window task on one tiny dataset of ``kind``, methods egnn and static."""
    raw = yaml.safe_load((SUITES_DIR / "smoke.yaml").read_text())
    raw["name"] = "prim"
    raw["datasets"] = {"mol": {"kind": kind, "seed": 0, "params": {"n_frames": 200, "n_trajectories": 3}}}
    task = {**raw["tasks"]["lj_window"], "datasets": ["mol"], "methods": ["egnn", "static"]}
    if primary_key is not None:
        task["primary"] = primary_key
    raw["tasks"] = {"mol_window": task}
    raw["methods"] = {"egnn": raw["methods"]["egnn"], "static": None}
    return raw


def _load(tmp_path, raw):
    path = tmp_path / "prim.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_suite(str(path), work_dir=str(tmp_path / "w"), results_dir=str(tmp_path / "r"))


# ---------------------------------------------------------------- config
def test_schema_accepts_the_key_and_an_unset_key_changes_no_hash(tmp_path):
    aligned = _load(tmp_path, _raw_suite("mse_aligned"))
    assert aligned.tasks["mol_window"].primary == "mse_aligned"
    assert primary(aligned.tasks["mol_window"]) == [("mse_aligned", "mean_over_offsets"),
                                                    ("mse_aligned", "last_offset")]
    unset = _load(tmp_path, _raw_suite(None))
    assert unset.tasks["mol_window"].primary == "mse"
    assert "primary" not in unset.tasks["mol_window"].hashed  # hashes come from the entry as written
    cell = unset.cells[0]
    assert unset.config_hash(cell) != aligned.config_hash(cell)  # the choice changes the cell's numbers
    assert primary(unset.tasks["mol_window"]) == [("mse", "mean_over_offsets"), ("mse", "last_offset")]


def test_schema_rejects_an_unknown_metric(tmp_path):
    with pytest.raises(ConfigError, match=r"tasks\.mol_window\.primary: 'rmsd' is not allowed; valid: mse, "
                                          "mse_aligned"):
        _load(tmp_path, _raw_suite("rmsd"))


def test_aligned_primary_on_a_periodic_dataset_is_a_config_error(tmp_path):
    raw = _raw_suite("mse_aligned", kind="lj_argon")
    raw["datasets"]["mol"]["params"] = {"n_frames": 200, "n_trajectories": 3}
    with pytest.raises(ConfigError, match=r"tasks\.mol_window\.primary: mse_aligned .* 'mol' .* periodic box"):
        _load(tmp_path, raw)


def test_placeholder_rows_carry_the_aligned_rows(tmp_path):
    suite = _load(tmp_path, _raw_suite("mse_aligned"))
    rows = placeholder_rows(suite.tasks["mol_window"])
    pairs = [(r["split"], r["metric"], r["convention"]) for r in rows]
    assert pairs == [(s, m, c) for s in ("val", "test") for m, c in
                     [("mse", "mean_over_offsets"), ("mse", "last_offset"),
                      ("mse_aligned", "mean_over_offsets"), ("mse_aligned", "last_offset")]]
    assert all(r["value"] is None and r["horizon"] == 40 for r in rows)
    table, missing = collect(suite, runs={})  # nothing run yet: the missing cells show the aligned rows too
    assert len(missing) == len(suite.cells)
    assert set(table.loc[table["metric"] == "mse_aligned", "status"]) == {"missing"}
    unset = _load(tmp_path, _raw_suite(None))
    assert {r["metric"] for r in placeholder_rows(unset.tasks["mol_window"])} == {"mse"}


# ---------------------------------------------------------------- evaluation
def _rotate(x: np.ndarray) -> np.ndarray:
    """Each frame [..., N, 3] turned 90 degrees about z around its centroid, then moved 5 A along x."""
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    centre = x.mean(axis=-2, keepdims=True)
    return (x - centre) @ rot.T + centre + np.array([5.0, 0.0, 0.0])


class _Rotated:
    """A 'method' answering each batch with the true frames rigidly rotated and moved (the right shape)."""

    name = "rotated"

    def __init__(self, sample_set, batch_size):
        self.answers = iter([_rotate(t.numpy()) for _, _, t in sample_set.batches(batch_size)])

    def predict(self, context, query_times):
        return torch.as_tensor(next(self.answers), dtype=torch.float32)


@pytest.fixture
def chain_test(chain_dataset):
    from conftest import SPEC

    from benchmark.samples import open_parts
    from benchmark.splits import build_window_split

    split = build_window_split(chain_dataset, SPEC, "by_trajectory", {}, seed=0)
    return split, open_parts(chain_dataset, split, {"kind": "none"})["test"]


def test_rotated_perfect_prediction_scores_zero_aligned_and_the_artifact_holds_aligned_errors(chain_test):
    from benchmark.evaluation import evaluate_part

    split, test = chain_test
    rows, bad, artifacts, _ = evaluate_part(_Rotated(test, 4), test, split, {}, 4, primary="mse_aligned")
    by = {(r["metric"], r["convention"]): r["value"] for r in rows}
    assert bad == 0
    assert by[("mse_aligned", "mean_over_offsets")] == pytest.approx(0.0, abs=1e-8)
    # raw: a shift of 5 A in x alone is 25 / 3 A^2 per coordinate, the rotation adds more
    assert by[("mse", "mean_over_offsets")] > 25.0 / 3.0
    got = read_window_errors({"artifacts": artifacts})
    assert (got["metric"], got["convention"]) == ("mse_aligned", "mean_over_offsets")
    assert got["mse"].shape == (len(test), 4) and np.abs(got["mse"]).max() < 1e-8
    _, _, raw_artifacts, _ = evaluate_part(_Rotated(test, 4), test, split, {}, 4)  # default: raw errors
    raw = read_window_errors({"artifacts": raw_artifacts})
    assert raw["metric"] == "mse" and raw["mse"].mean() == pytest.approx(by[("mse", "mean_over_offsets")], rel=1e-2)


def test_aligned_primary_on_periodic_data_fails_in_evaluation(lj_dataset):
    from conftest import SPEC

    from benchmark.evaluation import evaluate_part
    from benchmark.samples import open_parts
    from benchmark.specs import TaskError
    from benchmark.splits import build_window_split
    from methods import make_method

    split = build_window_split(lj_dataset, SPEC, "by_trajectory", {}, seed=0)
    test = open_parts(lj_dataset, split, {"kind": "none"})["test"]
    with pytest.raises(TaskError, match="primary: mse_aligned .* periodic box"):
        evaluate_part(make_method("static"), test, split, {}, 4, primary="mse_aligned")


# ---------------------------------------------------------------- tables, ranks, skill
def _write_runs(suite, raw: dict, aligned: dict):
    """Run files of every cell: raw and aligned rows from [12, 8] errors per variant; the per-window
    errors artifact carries the aligned ones (the task's primary metric)."""
    for cell in suite.cells:
        rows = []
        for metric, err in (("mse", raw[cell.variant]), ("mse_aligned", aligned[cell.variant])):
            rows += [{"split": "test", "metric": metric, "convention": "mean_over_offsets", "horizon": 40,
                      "offset": None, "value": float(err.mean()), "unit": "A^2"},
                     {"split": "test", "metric": metric, "convention": "last_offset", "horizon": 40,
                      "offset": None, "value": float(err[:, -1].mean()), "unit": "A^2"}]
        run = {"suite": suite.name, "protocol": "window", "task": cell.task, "dataset": cell.dataset,
               "split_variant": "by_trajectory", "method": cell.variant, "variant": cell.variant, "seed": cell.seed,
               "status": "ok", "note": "", "n_params": 0 if cell.variant == "static" else 100,
               "train_seconds": 0.0 if cell.variant == "static" else 60.0, "predict_seconds": 0.1,
               "device": "cpu", "hardware": "cpu x2", "git_sha": "abc", "config_hash": suite.config_hash(cell),
               "dataset_sha256": "d" * 64, "metrics_version": "4", "command": "snakemake", "rows": rows,
               "artifacts": {"window_errors": {
                   "metric": "mse_aligned", "convention": "mean_over_offsets", "traj": " ".join(map(str, TRAJ)),
                   "t0": " ".join(str(10 * i) for i in range(12)), "offsets": " ".join(str(5 * k) for k in range(1, 9)),
                   "mse": encode_rows(aligned[cell.variant])}}}
        write_json(suite.run_path(cell), run)


def test_ranks_skill_and_tables_follow_the_aligned_metric(tmp_path):
    """egnn beats static on raw MSE (0.5 x) but is worse aligned (2 x): with ``primary: mse_aligned``
    static ranks first, egnn's skill is 1 - 2 = -1, and the table says which metric it ranks on."""
    suite = _load(tmp_path, _raw_suite("mse_aligned"))
    _write_runs(suite, raw={"egnn": 0.5 * STATIC, "static": STATIC},
                aligned={"egnn": 0.2 * STATIC, "static": 0.1 * STATIC})
    write_metrics(suite)
    table = read_metrics(suite.metrics_path)
    _, _, cells, ranks, ranked = rank_columns(suite, table)
    assert ranked == [("mol_window", "mol")]
    assert ranks == {"egnn": [(2, 2)], "static": [(1, 2)]}
    assert cells[("egnn", ("mol_window", "mol"))]["mean"] == pytest.approx(0.22)  # aligned mean, 0.2 x 1.1
    skill = read_skill(suite.skill_path)
    row = skill[skill["offset"] == "mean"].iloc[0]
    assert (row["variant"], row["baseline"]) == ("egnn", "static")
    assert (row["skill"], row["ci_low"], row["ci_high"]) == (-1.0, -1.0, -1.0)
    evidence = cell_evidence(suite, table, skill, "mol_window", "mol")
    assert evidence.means == pytest.approx({"egnn": 0.22, "static": 0.11})
    assert (evidence.ceiling, evidence.ceiling_source, evidence.saturated) == (None, "raw only", None)
    text = task_table(suite, table, "mol_window")
    assert "**Primary metric: aligned MSE**" in text
    assert "heavy atoms) (Å²) — primary metric" in text
    assert "## Skill against the best trivial baseline (1 - MSE / MSE(reference), primary metric: aligned MSE)" in text
    assert "| egnn | -1.000 [-1.000, -1.000] |" in text
    matrix = cross_paper(suite, table)
    assert "mol_window<br>mol (aligned)" in matrix and "for the tasks marked (aligned): mol_window" in matrix


def test_default_primary_ranks_on_raw_mse(tmp_path):
    """The same numbers without the key: raw MSE ranks egnn first, and the aligned errors of the
    artifact are not mixed into skill.csv (another metric than the primary one)."""
    suite = _load(tmp_path, _raw_suite(None))
    _write_runs(suite, raw={"egnn": 0.5 * STATIC, "static": STATIC},
                aligned={"egnn": 0.2 * STATIC, "static": 0.1 * STATIC})
    write_metrics(suite)
    table = read_metrics(suite.metrics_path)
    assert rank_columns(suite, table)[3] == {"egnn": [(1, 2)], "static": [(2, 2)]}
    assert read_skill(suite.skill_path).empty
    text = task_table(suite, table, "mol_window")
    assert "Primary metric: aligned MSE" not in text and "— primary metric" not in text
    assert "(aligned)" not in cross_paper(suite, table)
