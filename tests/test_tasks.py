import numpy as np
import pytest
import torch
from conftest import make_chain_dataset

from benchmark.evaluation import stored_to_task_atoms
from benchmark.samples import open_parts
from benchmark.specs import ExtrapolateSpec, TaskError, WindowSpec
from benchmark.splits import build_split, build_window_split, regular_offsets


def test_regular_offsets_match_published_formula():
    # EGNO/GF-NODE: frames start + 3000*i//8, i = 1..8 (every 375 frames)
    assert regular_offsets(3000, 8).tolist() == [375, 750, 1125, 1500, 1875, 2250, 2625, 3000]


def test_irregular_offsets_distinct_sorted_fixed_by_seed(chain_dataset):
    spec = WindowSpec(delta_frame=20, num_queries=8, sampling="irregular", n_train=10, n_val=5, n_test=5)
    a = build_window_split(chain_dataset, spec, "by_trajectory", {}, seed=3)
    b = build_window_split(chain_dataset, spec, "by_trajectory", {}, seed=3)
    assert a == b
    offsets = np.array(a["parts"]["train"]["offsets"])
    assert (np.diff(offsets, axis=1) > 0).all() and offsets.min() >= 1 and offsets.max() <= 20
    assert len({tuple(o) for o in offsets}) > 1  # drawn per sample


def test_by_trajectory_parts_disjoint_and_inside(chain_dataset):
    spec = WindowSpec(delta_frame=20, num_queries=4, n_train=10, n_val=5, n_test=5)
    split = build_window_split(chain_dataset, spec, "by_trajectory", {}, seed=0)
    trajs = {p: set(split["parts"][p]["traj"]) for p in ("train", "val", "test")}
    assert not (trajs["train"] & trajs["test"]) and not (trajs["val"] & trajs["test"])
    for p in trajs:
        t0 = np.array(split["parts"][p]["t0"])
        assert (t0 + 20 <= 79).all() and (t0 >= 0).all()


def test_blocks_split_is_leak_free(chain_dataset):
    spec = WindowSpec(delta_frame=5, num_queries=2, n_train=20, n_val=5, n_test=5)
    split = build_window_split(chain_dataset, spec, "blocks", {}, seed=0)
    for traj in range(len(chain_dataset)):
        spans = {}
        for p in ("train", "val", "test"):
            part = split["parts"][p]
            sel = [i for i, t in enumerate(part["traj"]) if t == traj]
            if sel:
                t0 = np.array(part["t0"])[sel]
                spans[p] = (t0.min(), t0.max() + 5)
        order = [spans[p] for p in ("train", "val", "test") if p in spans]
        for (_a0, a1), (b0, _b1) in zip(order, order[1:]):
            assert b0 - a1 >= 5  # gap of at least delta_frame between any two windows of different parts


def test_too_many_windows_is_a_clear_error(chain_dataset):
    spec = WindowSpec(delta_frame=70, num_queries=4, n_train=500, n_val=5, n_test=5)
    with pytest.raises(TaskError, match="n_train=500"):
        build_window_split(chain_dataset, spec, "by_trajectory", {}, seed=0)


@pytest.mark.parametrize("params,match", [
    ({"delta_frame": 0}, "delta_frame"),
    ({"delta_frame": 4, "num_queries": 8}, "num_queries"),
    ({"delta_frame": 8, "sampling": "random"}, "sampling"),
    ({"delta_frame": 8, "horizon": 3}, "unknown"),
])
def test_bad_task_params(params, match):
    with pytest.raises(TaskError, match=match):
        WindowSpec.from_params(params)


def test_context_holds_only_the_past(chain_dataset):
    spec = WindowSpec(delta_frame=10, num_queries=2, observed=3, n_train=4, n_val=2, n_test=2)
    split = build_window_split(chain_dataset, spec, "by_trajectory", {}, seed=0)
    test = open_parts(chain_dataset, split, {"kind": "molecular"})["test"]
    traj = chain_dataset.trajectory(test.traj_idx[0])
    t0 = test.t0[0]
    ctx = test.context([0])
    np.testing.assert_array_equal(ctx.observed_positions[0].numpy(), traj.positions[t0 - 2:t0 + 1])
    assert ctx.observed_times.tolist() == [-2 * traj.dt_fs, -traj.dt_fs, 0.0]
    np.testing.assert_array_equal(test.targets([0])[0].numpy(), traj.positions[t0 + test.offsets[0]])
    assert torch.allclose(test.query_times([0])[0], torch.tensor(test.offsets[0] * traj.dt_fs, dtype=torch.float32))
    # forward-difference velocity (no stored velocities in this fixture), A/fs
    v = (traj.positions[t0 + 1] - traj.positions[t0]) / traj.dt_fs
    np.testing.assert_allclose(ctx.velocities[0].numpy(), v, rtol=1e-6)
    # molecular graph from the bonds, plus 2-hop pairs, both directions
    edges = set(map(tuple, ctx.edges.T.tolist()))
    assert (0, 1) in edges and (1, 0) in edges and (0, 2) in edges and (0, 3) not in edges


def test_heavy_atoms_only(tmp_path):
    """``atoms: heavy`` keeps Z > 1, renumbers the bonds and the graph, and reads only those atoms."""
    ds = make_chain_dataset(tmp_path / "chain_h", atomic_numbers=(6, 1, 8, 6, 1, 6))
    spec = WindowSpec(delta_frame=10, num_queries=2, observed=1, n_train=4, n_val=2, n_test=2)
    split = build_window_split(ds, spec, "by_trajectory", {}, seed=0)
    test = open_parts(ds, split, {"kind": "molecular", "two_hop": False}, atoms="heavy")["test"]
    keep = [0, 2, 3, 5]
    assert test.atom_index.tolist() == keep and test.n_atoms == 4
    assert test.atomic_numbers.tolist() == [6, 8, 6, 6]
    traj, t0 = ds.trajectory(test.traj_idx[0]), test.t0[0]
    np.testing.assert_array_equal(test.context([0]).positions[0].numpy(), traj.positions[t0][keep])
    np.testing.assert_array_equal(test.targets([0])[0].numpy(), traj.positions[t0 + test.offsets[0]][:, keep])
    # the chain's bonds 0-1 ... 4-5: only 2-3 joins two kept atoms (new numbers 1-2)
    assert test.bonds.tolist() == [[1, 2]]
    assert set(map(tuple, test.edges.T.tolist())) == {(1, 2), (2, 1)}
    assert stored_to_task_atoms([0, 2, 3, 5], test.atom_index, "phi") == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="dihedrals.psi: atoms \\[1\\]"):
        stored_to_task_atoms([0, 1, 2, 3], test.atom_index, "psi")
    with pytest.raises(TaskError, match="'all' or 'heavy'"):
        open_parts(ds, split, None, atoms="hydrogens")


def test_velocities_difference_replaces_stored_velocities(lj_dataset):
    """``velocities: difference`` feeds the one-frame forward difference even where velocities are stored."""
    spec = WindowSpec(delta_frame=10, num_queries=2, observed=1, n_train=4, n_val=2, n_test=2)
    split = build_window_split(lj_dataset, spec, "by_trajectory", {}, seed=0)
    stored = open_parts(lj_dataset, split, {"kind": "none"}, ("test",))["test"]
    diff = open_parts(lj_dataset, split, {"kind": "none"}, ("test",), velocities="difference")["test"]
    traj, t0 = lj_dataset.trajectory(stored.traj_idx[0]), stored.t0[0]
    assert traj.velocities is not None
    np.testing.assert_array_equal(stored.context([0]).velocities[0].numpy(), traj.velocities[t0])
    v = (traj.positions[t0 + 1] - traj.positions[t0]) / traj.dt_fs
    np.testing.assert_allclose(diff.context([0]).velocities[0].numpy(), v, rtol=1e-5)
    assert not np.allclose(v, traj.velocities[t0], rtol=0.05)  # the fixture's frames are not infinitesimal
    # protocol-A windows drawn for training keep the choice
    windows = diff.windows(delta_frame=5, num_queries=2, n=2, seed=0)
    assert windows.velocity_source == "difference"
    with pytest.raises(TaskError, match="'velocities' must be one of stored, difference"):
        open_parts(lj_dataset, split, None, ("test",), velocities="instant")


# ------------------------------------------------------------ protocol B


def test_extrapolate_split_one_sample_per_trajectory(chain_dataset):
    params = {"observed": 20, "horizon": 50, "n_full_domain": 10, "windows": [[0, 5], [45, 50]], "curve_bin": 10}
    split = build_split(chain_dataset, "extrapolate", params, "by_trajectory", {}, seed=0)
    parts = open_parts(chain_dataset, split, {"kind": "none"})
    test = parts["test"]
    assert len(test) == 1 and test.offsets.shape == (1, 50)
    ctx = test.context([0])
    traj = chain_dataset.trajectory(test.traj_idx[0])
    np.testing.assert_array_equal(ctx.observed_positions[0].numpy(), traj.positions[:20])
    np.testing.assert_array_equal(test.targets([0])[0].numpy(), traj.positions[20:70])
    # no peeking: the last observed velocity is a backward difference
    v = (traj.positions[19] - traj.positions[18]) / traj.dt_fs
    np.testing.assert_allclose(ctx.velocities[0].numpy(), v, rtol=1e-5)
    # normalisation from TRAINING positions only
    train_traj = chain_dataset.trajectory(parts["train"].traj_idx[0])
    assert split["normalisation"]["min"] <= float(np.min(train_traj.positions[:70]))
    assert len(split["full_domain_offsets"]) == 10 and max(split["full_domain_offsets"]) <= 50
    # training helpers
    seq = parts["train"].sequence([0])
    np.testing.assert_array_equal(seq[0].numpy(), train_traj.positions[:70])
    win = parts["train"].windows(delta_frame=10, num_queries=2, n=5, seed=0)
    assert len(win) == 5 and set(win.traj_idx.tolist()) <= set(parts["train"].traj_idx.tolist())
    assert (win.t0 + 10 <= 69).all()


def test_extrapolate_too_long_is_a_clear_error(chain_dataset):
    with pytest.raises(TaskError, match="observed \\+ horizon = 2100"):
        build_split(chain_dataset, "extrapolate", {"observed": 100, "horizon": 2000}, "by_trajectory", {}, 0)
    with pytest.raises(TaskError, match="windows"):
        ExtrapolateSpec.from_params({"horizon": 10, "windows": [[5, 20]]})


def test_interleaved_split_is_disjoint_but_leaks(chain_dataset):
    spec = WindowSpec(delta_frame=10, num_queries=2, n_train=30, n_val=10, n_test=10)
    split = build_window_split(chain_dataset, spec, "interleaved", {}, seed=0)
    starts = {p: set(zip(split["parts"][p]["traj"], split["parts"][p]["t0"])) for p in ("train", "val", "test")}
    assert not (starts["train"] & starts["test"]) and not (starts["train"] & starts["val"])
    # the flaw it reproduces: some test window starts within delta_frame of a train window
    close = [(t, a) for t, a in starts["test"] for u, b in starts["train"] if t == u and abs(a - b) < 10]
    assert close


def test_extrapolate_normalisation_of_periodic_systems_is_the_box(lj_dataset):
    split = build_split(lj_dataset, "extrapolate", {"observed": 20, "horizon": 30}, "by_trajectory", {}, seed=0)
    box = lj_dataset.trajectory(0).box
    assert split["normalisation"]["min"] == 0.0 and split["normalisation"]["max"] == pytest.approx(max(box))
