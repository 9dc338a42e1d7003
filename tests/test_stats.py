"""Skill and its paired, blocked bootstrap on synthetic data with a known answer."""

import numpy as np
import pytest

from benchmark.metrics import position_sq_error, valid_frames
from benchmark.stats import (
    Skill,
    block_length,
    bootstrap_skill,
    cell_valid,
    decode_rows,
    encode_rows,
    read_window_errors,
    significant_win,
    skill,
    skill_by_offset,
    skill_from_runs,
)

N_ATOMS, K = 5, 4


def ar1(n, rho, rng):
    """n steps of a unit-variance AR(1) series: neighbouring windows of one trajectory are correlated."""
    z = rng.normal(size=n)
    out = np.empty(n)
    out[0] = z[0]
    for i in range(1, n):
        out[i] = rho * out[i - 1] + np.sqrt(1 - rho ** 2) * z[i]
    return out


def synthetic(rng, n_traj=4, per_traj=60, rho=0.9):
    """Start frames x0 [S, N, 3], true future frames [S, K, N, 3] (x0 plus a displacement whose size
    varies slowly along each trajectory and between trajectories), trajectory id and t0 per window."""
    traj = np.repeat(np.arange(n_traj), per_traj)
    t0 = np.tile(np.arange(per_traj) * 10, n_traj)
    scale = np.concatenate([0.3 * np.exp(0.3 * ar1(per_traj, rho, rng) + 0.3 * rng.normal()) for _ in range(n_traj)])
    x0 = rng.normal(size=(len(traj), N_ATOMS, 3)) * 1.5
    disp = scale[:, None, None, None] * rng.normal(size=(len(traj), K, N_ATOMS, 3))
    return x0, x0[:, None] + disp, traj, t0


def per_window(pred, target):
    return position_sq_error(pred, target).mean(axis=1)  # [S]: mean over the K offsets


def test_skill_by_hand():
    assert skill(1.0, 4.0) == pytest.approx(0.75)
    assert skill(5.0, 4.0) == pytest.approx(-0.25)
    assert np.isnan(skill(1.0, 0.0))
    result = Skill(0.2, 0.05, 0.3, "trajectories", 10, 2, 1)
    assert result.beats and not Skill(0.2, -0.01, 0.3, "blocks", 10, 1, 1).beats


def test_static_plus_tiny_noise_is_never_a_significant_win():
    for rep in range(10):
        rng = np.random.default_rng(rep)
        x0, target, traj, t0 = synthetic(rng)
        static = np.repeat(x0[:, None], K, axis=1)
        base = per_window(static, target)
        seeds = np.stack([per_window(static + 0.01 * rng.normal(size=static.shape), target) for _ in range(3)])
        result = bootstrap_skill(seeds, base, traj, t0, n_boot=400, seed=rep)
        assert result.scheme == "trajectories" and result.n_seeds == 3 and result.n_trajectories == 4
        assert result.low <= result.value <= result.high and result.low < result.high
        assert not result.beats, result


def test_half_the_error_is_a_significant_win():
    rng = np.random.default_rng(0)
    x0, target, traj, t0 = synthetic(rng)
    static = np.repeat(x0[:, None], K, axis=1)
    half = target + (static - target) / np.sqrt(2)  # every displacement error scaled by 1/sqrt(2)
    result = bootstrap_skill(per_window(half, target), per_window(static, target), traj, t0, n_boot=400)
    assert result.value == pytest.approx(0.5)
    assert result.beats and result.low <= 0.5 <= result.high


def test_collapsed_predictor_is_invalid_and_never_wins():
    rng = np.random.default_rng(1)
    shape = np.array([[0.0, 0, 0], [1.5, 0, 0], [1.5, 1.5, 0], [0, 0.5, 2.0], [-1.0, 1.0, 0.5]])
    bonds = np.array([[0, 1], [1, 2], [0, 3], [0, 4]])
    # the molecule tumbles: the future frame is the start frame in a random orientation
    x0 = np.stack([shape + rng.normal(size=3) for _ in range(80)])
    rotations = np.linalg.qr(rng.normal(size=(80, 3, 3)))[0]
    rotations *= np.sign(np.linalg.det(rotations))[:, None, None]
    centre = x0.mean(axis=1, keepdims=True)
    target = ((x0 - centre) @ np.swapaxes(rotations, -1, -2) + centre)[:, None]
    static = x0[:, None]
    collapsed = np.broadcast_to(centre[:, None], target.shape)  # every atom at the centroid
    traj, t0 = np.repeat(np.arange(4), 20), np.tile(np.arange(20) * 100, 4)
    result = bootstrap_skill(per_window(collapsed, target), per_window(static, target), traj, t0, n_boot=400)
    assert result.beats  # lower MSE than holding the frame ...
    valid = valid_frames(collapsed, target, bonds)
    assert not valid.any()
    assert not cell_valid([valid.mean()])
    assert not significant_win(result, cell_valid([valid.mean()]))  # ... yet no win
    assert valid_frames(static, target, bonds).all() and cell_valid([1.0, 0.97])
    assert cell_valid([None]) is None and significant_win(result, None)


def test_blocked_intervals_are_wider_than_naive_on_correlated_windows():
    rng = np.random.default_rng(2)
    # one long test trajectory whose windows are strongly correlated over ~20 windows (200 frames)
    n = 400
    t0 = np.arange(n) * 10
    base = np.exp(0.5 * ar1(n, 0.95, rng))
    errors = base * np.exp(0.3 * ar1(n, 0.95, rng) - 0.2)
    traj = np.zeros(n, dtype=int)
    naive = bootstrap_skill(errors, base, traj, t0, scheme="windows", n_boot=1000)
    blocked = bootstrap_skill(errors, base, traj, t0, block_frames=400, n_boot=1000)
    assert blocked.scheme == "blocks" and blocked.block_windows == 40 and naive.scheme == "windows"
    assert blocked.value == naive.value
    assert blocked.high - blocked.low > 1.5 * (naive.high - naive.low)
    # several trajectories with their own level: the hierarchical interval is wider than the naive one
    traj4 = np.repeat(np.arange(4), 100)
    level = np.repeat(np.exp(0.5 * rng.normal(size=4)), 100)
    hier = bootstrap_skill(errors * level, base, traj4, t0, n_boot=1000)
    flat = bootstrap_skill(errors * level, base, traj4, t0, scheme="windows", n_boot=1000)
    assert hier.scheme == "trajectories"
    assert flat.beats and not hier.beats  # the naive interval would have claimed a win
    assert hier.high - hier.low > 1.5 * (flat.high - flat.low)


def test_block_bootstrap_needs_a_length_shorter_than_the_data():
    traj, t0 = np.zeros(10, dtype=int), np.arange(10) * 5
    with pytest.raises(ValueError, match="block_frames"):
        bootstrap_skill(np.ones(10), np.ones(10), traj, t0)
    with pytest.raises(ValueError, match="not shorter"):
        bootstrap_skill(np.ones(10), np.ones(10), traj, t0, block_frames=100)
    with pytest.raises(ValueError, match="same 10 windows"):
        bootstrap_skill(np.ones(10), np.ones(9), traj, t0)
    assert block_length(t0, 12) == 3 and block_length(t0, 1) == 1


def test_skill_by_offset_pairs_slots():
    rng = np.random.default_rng(3)
    base = rng.uniform(1, 2, size=(30, 3))
    out = skill_by_offset(0.5 * base, base, np.repeat([0, 1, 2], 10), n_boot=50)
    assert set(out) == {"mean_over_offsets", 1, 2, 3}
    assert all(r.value == pytest.approx(0.5) and r.low == pytest.approx(0.5) for r in out.values())


def test_window_errors_round_trip():
    values = np.array([[0.012345, 3.0, np.inf], [1e-7, 123456.0, 0.5]])
    rows = encode_rows(values)
    assert rows[0] == "0.0123 3 inf"
    np.testing.assert_allclose(decode_rows(rows), values, rtol=5e-3)
    run = {"artifacts": {"window_errors": {"metric": "mse", "convention": "mean_over_offsets", "traj": "0 1",
                                           "t0": "5 7", "offsets": "10 20 30", "mse": rows}}}
    got = read_window_errors(run)
    assert got["traj"].tolist() == [0, 1] and got["offsets"].tolist() == [10, 20, 30]
    assert got["mse"].shape == (2, 3)
    assert read_window_errors({"rows": []}) is None


def _run(mse, traj=(0, 0, 1, 1), t0=(0, 50, 0, 50)):
    return {"artifacts": {"window_errors": {"metric": "mse", "convention": "mean_over_offsets", "offsets": "5 10",
                                            "traj": " ".join(map(str, traj)), "t0": " ".join(map(str, t0)),
                                            "mse": encode_rows(np.asarray(mse))}}}


def test_skill_from_run_files():
    base = np.array([[1.0, 2.0], [2.0, 4.0], [1.0, 3.0], [2.0, 2.0]])
    out = skill_from_runs([_run(0.5 * base), _run(0.5 * base)], [_run(base)], n_boot=50)
    assert out["mean_over_offsets"].value == pytest.approx(0.5) and out["mean_over_offsets"].n_seeds == 2
    assert out[2].beats
    assert skill_from_runs([{"rows": []}], [_run(base)]) is None  # an old run file: no interval
    with pytest.raises(ValueError, match="different test windows"):
        skill_from_runs([_run(base, t0=(0, 60, 0, 50))], [_run(base)])


@pytest.mark.parametrize("dataset", ["chain", "lj"])
def test_evaluation_stores_window_errors_and_physical_rows(request, dataset):
    from conftest import SPEC

    from benchmark.evaluation import evaluate_part
    from benchmark.samples import open_parts
    from benchmark.splits import build_window_split
    from methods import make_method

    ds = request.getfixturevalue(f"{dataset}_dataset")
    split = build_window_split(ds, SPEC, "by_trajectory", {}, seed=0)
    test = open_parts(ds, split, {"kind": "none"})["test"]
    rows, bad, artifacts, _ = evaluate_part(make_method("static"), test, split, {}, 4)
    by = {(r["metric"], r["convention"]): r["value"] for r in rows}
    got = read_window_errors({"artifacts": artifacts})
    assert bad == 0 and got["mse"].shape == (len(test), SPEC.num_queries)
    assert got["traj"].tolist() == test.traj_idx.tolist() and got["t0"].tolist() == test.t0.tolist()
    assert got["mse"].mean() == pytest.approx(by[("mse", "mean_over_offsets")], rel=1e-2)
    if dataset == "lj":  # periodic: the box ceiling, no alignment or validity
        assert by[("ceiling", "box2_over_12")] == pytest.approx(float((test.box.numpy() ** 2).mean() / 12))
        assert not any(metric in ("mse_aligned", "valid") for metric, _ in by)
        return
    assert by[("valid", "bond_0.1A_overlap_0.5A")] == 1.0  # holding a real frame keeps bonds and distances
    assert 0 < by[("mse_aligned", "mean_over_offsets")] <= by[("mse", "mean_over_offsets")]
    assert by[("ceiling", "far_pairs")] > 0
    loose = evaluate_part(make_method("static"), test, split, {"validity": {"bond_tolerance": 0.5}}, 4)[0]
    assert any(r["metric"] == "valid" and r["convention"] == "bond_0.5A_overlap_0.5A" for r in loose)
