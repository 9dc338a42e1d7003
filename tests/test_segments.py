"""Protocol B training segments (task key ``train_segments``): where they lie, that they are
fixed by the split seed, what they read, and that the sequence-trained methods learn from them."""

import numpy as np
import pytest
import torch

from benchmark.data.format import open_dataset, write_manifest, write_trajectory
from benchmark.samples import SampleSet, SegmentSet, open_parts
from benchmark.specs import ExtrapolateSpec, TaskError
from benchmark.splits import build_split
from methods import make_method
from methods.base import Budget

# 4 trajectories of 50 frames: the task uses frames 0..39 (observed 10 + horizon 30) of each;
# trajectories 0, 1 train, 2 val, 3 test
BASE = {"observed": 10, "horizon": 30, "n_full_domain": 12, "windows": [[0, 10], [20, 30]], "curve_bin": 10}
PARTS = {"train_trajectories": [0, 1], "val_trajectories": [2], "test_trajectories": [3]}
SEGMENTS = {"train_segments": 40, "segment_observed": 5, "segment_horizon": 12}


def make_wave_dataset(path):
    """4 trajectories of 50 frames of a 6-atom chain whose atoms oscillate smoothly (learnable from
    the observed history), with known frame ranges per part."""
    rng = np.random.default_rng(0)
    base = np.stack([np.arange(6) * 1.4, (np.arange(6) % 2) * 0.8, np.zeros(6)], -1)
    t = np.arange(50)[:, None, None]
    for i in range(4):
        phase = rng.uniform(0, 2 * np.pi, size=(1, 6, 3))
        pos = base + 0.3 * np.sin(0.3 * t + phase) + 0.002 * rng.normal(size=(50, 6, 3))
        write_trajectory(path / f"traj_{i:03d}", pos.astype(np.float32), dt_fs=1.0, atomic_numbers=[6, 6, 8, 6, 7, 6],
                         masses=[12.0, 12.0, 16.0, 12.0, 14.0, 12.0], bonds=[[j, j + 1] for j in range(5)],
                         provenance={"fixture": "wave"})
    write_manifest(path, name="wave_tiny", kind="fixture_wave", params={}, info={"periodic": False, "graph": "bonds"})
    return open_dataset(path)


@pytest.fixture(scope="module")
def framed(tmp_path_factory):
    return make_wave_dataset(tmp_path_factory.mktemp("framed") / "framed")


def test_segments_stay_inside_the_training_trajectories_frames(framed):
    split = build_split(framed, "extrapolate", {**BASE, **SEGMENTS}, "by_trajectory", PARTS, seed=0)
    seg = split["parts"]["train"]["segments"]
    traj, t0 = np.array(seg["traj"]), np.array(seg["t0"])
    assert (seg["observed"], seg["horizon"]) == (5, 12) and len(t0) == 40
    assert set(traj.tolist()) == {0, 1}  # never a validation or test trajectory
    assert (t0 - 5 + 1 >= 0).all() and (t0 + 12 <= 39).all()  # first observed .. last predicted frame
    assert len(set(zip(traj.tolist(), t0.tolist()))) == 40  # distinct
    # the whole-trajectory samples, the full-domain frames and val/test are those without segments
    plain = build_split(framed, "extrapolate", BASE, "by_trajectory", PARTS, seed=0)
    assert "segments" not in plain["parts"]["train"] and "train_segments" not in plain["spec"]
    assert plain["full_domain_offsets"] == split["full_domain_offsets"]
    for part in ("val", "test"):
        assert plain["parts"][part] == split["parts"][part]
    assert {k: v for k, v in split["parts"]["train"].items() if k != "segments"} == plain["parts"]["train"]


def test_segments_are_fixed_by_the_split_seed(framed):
    a = build_split(framed, "extrapolate", {**BASE, **SEGMENTS}, "by_trajectory", PARTS, seed=3)
    b = build_split(framed, "extrapolate", {**BASE, **SEGMENTS}, "by_trajectory", PARTS, seed=3)
    c = build_split(framed, "extrapolate", {**BASE, **SEGMENTS}, "by_trajectory", PARTS, seed=4)
    assert a == b
    assert a["parts"]["train"]["segments"] != c["parts"]["train"]["segments"]


def test_segment_set_reads_the_segments_frames_without_peeking(framed):
    split = build_split(framed, "extrapolate", {**BASE, **SEGMENTS}, "by_trajectory", PARTS, seed=0)
    train = open_parts(framed, split, parts=("train",))["train"]
    assert isinstance(train, SampleSet) and len(train) == 2  # the part itself: one sample per trajectory
    seg = train.segments()
    assert isinstance(seg, SegmentSet) and len(seg) == 40 and seg.spec.observed == 5 and seg.horizon == 12
    idx = [0, 17, 39]
    ctx, qt, target = seg.context(idx), seg.query_times(idx), seg.targets(idx)
    for row, s in enumerate(idx):
        pos = np.asarray(framed.trajectory(int(seg.traj_idx[s])).positions)
        t0 = int(seg.t0[s])
        np.testing.assert_array_equal(ctx.observed_positions[row].numpy(), pos[t0 - 4:t0 + 1])
        np.testing.assert_array_equal(target[row].numpy(), pos[t0 + 1:t0 + 13])
        # no stored velocities: backward difference at t0 (never frame t0 + 1)
        np.testing.assert_allclose(ctx.observed_velocities[row, -1].numpy(), (pos[t0] - pos[t0 - 1]) / seg.dt_fs,
                                   rtol=1e-5, atol=1e-6)
    assert torch.allclose(qt[0], torch.arange(1, 13, dtype=torch.float32) * seg.dt_fs)
    cols = np.array([0, 5, 11])
    torch.testing.assert_close(seg.targets(idx, cols), target[:, cols])
    torch.testing.assert_close(seg.query_times(idx, cols), qt[:, cols])


def test_without_segments_the_part_has_none(framed):
    split = build_split(framed, "extrapolate", BASE, "by_trajectory", PARTS, seed=0)
    train = open_parts(framed, split, parts=("train",))["train"]
    assert train.segments() is None
    # the methods see the part as before: one sample per trajectory, no recorded history
    for name in ("lgode", "domino"):
        m = make_method(name, make_method(name).test_params)
        assert set(m.setup(train)) == {"n_atoms", "disp_scale", "vel_scale", "time_scale"}
        assert sum(1 for _ in m.training_batches(train, 16, torch.Generator().manual_seed(0))) == 1


@pytest.mark.parametrize("params,match", [
    ({"train_segments": 400}, "train_segments=400"),  # more than the start frames that fit
    ({"segment_observed": 5}, "segment_observed needs train_segments"),
    ({"train_segments": 4, "segment_observed": 20, "segment_horizon": 30}, "segment_observed \\+ segment_horizon"),
    ({"train_segments": -1}, "train_segments must be"),
])
def test_bad_segment_keys_are_clear_errors(framed, params, match):
    with pytest.raises(TaskError, match=match):
        build_split(framed, "extrapolate", {**BASE, **params}, "by_trajectory", PARTS, seed=0)


def test_spec_round_trips_through_the_split_file(framed):
    split = build_split(framed, "extrapolate", {**BASE, **SEGMENTS}, "by_trajectory", PARTS, seed=0)
    spec = ExtrapolateSpec(**split["spec"])
    assert (spec.train_segments, spec.seg_observed, spec.seg_horizon) == (40, 5, 12)
    assert ExtrapolateSpec(**BASE).as_dict() == {**BASE, "failure_threshold": 10.0}


# ---- the sequence-trained methods on many segments: minibatches, and the loss falls

TRAIN_PARAMS = {
    "lgode": {"eval_every": 100, "lr": 3e-3, "n_samples": 1, "hidden": 16, "ode_hidden": 16, "latent": 8},
    "domino": {"eval_every": 100, "lr": 1e-2, "level_segments": 2, "strides": [4, 2, 1], "reference_horizon": 12},
    "descinet": {"eval_every": 100, "lr": 1e-2, "dropout": 0.0},
}


@pytest.mark.parametrize("name", sorted(TRAIN_PARAMS))
def test_methods_train_on_many_segments(framed, name):
    torch.set_num_threads(1)
    split = build_split(framed, "extrapolate", {**BASE, **SEGMENTS}, "by_trajectory", PARTS, seed=0)
    parts = open_parts(framed, split, {"kind": "molecular", "cutoff": 1.6, "two_hop": True}, ("train", "val"))
    method = make_method(name, {**make_method(name).test_params, **TRAIN_PARAMS[name], "batch_size": 8})
    seg = parts["train"].segments()
    steps = sum(1 for _ in method.training_batches(seg, 8, torch.Generator().manual_seed(0)))
    assert steps == 5  # 40 segments in batches of 8 (one sample per trajectory: 1 step)
    facts = method.fit(parts["train"], parts["val"], Budget(epochs=10), seed=0, device="cpu")
    losses = [h["train_loss"] for h in facts["history"]]
    assert min(losses[-3:]) < 0.85 * losses[0], losses
    if name != "descinet":
        assert facts["train_segments"] == 40 and method.setup_args["history"] == 5
    else:
        assert method.setup_args["lookback"] == 5 and method.setup_args["horizon"] == 12
    # the model predicts the task's horizon from the task's (longer) history
    val = parts["val"]
    pred = method.predict(val.context([0]), val.query_times([0]))
    assert pred.shape == (1, 30, val.n_atoms, 3) and torch.isfinite(pred).all()


def test_domino_level_segments_decode_each_level_inside_the_one_above():
    m = make_method("domino", {**make_method("domino").test_params, "level_segments": 5,
                               "strides": [400, 20, 1], "reference_horizon": 8000})
    levels = m.level_columns(8000, torch.Generator().manual_seed(0))
    offsets = [c + 1 for c in levels]  # 1-based frames after t0
    assert offsets[0].tolist() == list(range(400, 8001, 400))  # level 0: every 400 frames, 20
    assert len(offsets[1]) == 5 * 20 and len(offsets[2]) == 5 * 20  # 5 segments of 20 points per level
    assert (offsets[1] % 20 == 0).all() and len(set((offsets[1] - 1) // 400)) == 5
    for level in (1, 2):  # every frame of level i lies in an interval (a - S, a] of a level i-1 frame
        span = (400, 20)[level - 1]
        upper = offsets[level - 1]
        assert all(((upper >= f) & (upper - span < f)).any() for f in offsets[level])
    assert len(set((offsets[2] - 1) // 20)) == 5
