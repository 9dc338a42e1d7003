"""The vendored MD17 split, the ``published`` strategy, and the leak-free ``blocks`` split on MD17.

Windows are checked against the published MD17 frame counts (``md17.md`` data
card) on manifest-only datasets: the split builder reads frame counts from the
manifest, so no 200 MB trajectory is needed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.config import SCHEMA_PATH
from benchmark.data.format import Dataset
from benchmark.data.md17 import MOLECULES
from benchmark.specs import TaskError, WindowSpec
from benchmark.splits import build_window_split
from benchmark.splits.published import MD17_SPLITS, MD17_SPLITS_SHA256, md17_published_starts
from benchmark.splits.window import WINDOW_STRATEGIES

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED_FRAMES = {"aspirin": 211762, "benzene_old": 627983, "ethanol": 555092, "malonaldehyde": 993237,
                    "naphthalene": 326250, "salicylic": 320231, "toluene": 442790, "uracil": 133770}
PAPER = dict(delta_frame=3000, num_queries=8, n_train=500, n_val=2000, n_test=2000)


def md17_manifest_only(mol: str, frames: int | None = None, **info) -> Dataset:
    manifest = {"name": f"md17_{mol}", "checksum": "0" * 64, "params": {"molecule": mol},
                "info": {"kind": "md17", "molecule": mol, "time_series": True, **info},
                "trajectories": [{"name": "traj_000", "n_frames": frames or PUBLISHED_FRAMES[mol],
                                  "n_atoms": MOLECULES[mol][3]}], "files": {}}
    return Dataset(Path("/nonexistent"), manifest)


def touched(part: dict, observed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """First and last frame each window reads (observed history .. last target)."""
    t0 = np.asarray(part["t0"])
    return t0 - observed + 1, t0 + np.asarray(part["offsets"]).max(axis=1)


def test_vendored_split_hashes_to_the_recorded_value():
    assert hashlib.sha256(MD17_SPLITS.read_bytes()).hexdigest() == MD17_SPLITS_SHA256
    assert MD17_SPLITS_SHA256 in (MD17_SPLITS.parent / "README.md").read_text()
    shared = ROOT.parent / "shared" / "data" / "md17_egno_splits.json"
    if shared.exists():  # developers and CI have ../shared beside the project
        assert shared.read_bytes() == MD17_SPLITS.read_bytes()


def test_published_sizes_and_molecules():
    starts = md17_published_starts()
    assert sorted(starts) == sorted(PUBLISHED_FRAMES) == sorted(MOLECULES)
    for mol, parts in starts.items():
        assert [len(parts[p]) for p in ("train", "val", "test")] == [500, 2000, 2000], mol


@pytest.mark.parametrize("sampling", ["regular", "irregular"])
@pytest.mark.parametrize("mol", sorted(PUBLISHED_FRAMES))
def test_every_published_window_stays_inside_its_trajectory(mol, sampling):
    ds = md17_manifest_only(mol)
    split = build_window_split(ds, WindowSpec(sampling=sampling, **PAPER), "published", {}, seed=0)
    published = md17_published_starts()[mol]
    for part in ("train", "val", "test"):
        p = split["parts"][part]
        assert p["t0"] == published[part]  # exactly the published start frames, in file order
        assert set(p["traj"]) == {0}
        first, last = touched(p)
        assert first.min() >= 0 and last.max() + 1 < PUBLISHED_FRAMES[mol]  # +1: forward-difference velocity
        offsets = np.asarray(p["offsets"])
        assert offsets.shape == (len(p["t0"]), 8) and offsets.min() >= 1 and offsets.max() <= 3000
        if sampling == "regular":
            assert offsets[0].tolist() == [375 * i for i in range(1, 9)]


def test_published_split_is_deterministic_and_irregular_offsets_follow_the_seed():
    ds = md17_manifest_only("uracil")
    spec = WindowSpec(sampling="irregular", **PAPER)
    a = build_window_split(ds, spec, "published", {}, seed=3)
    assert a == build_window_split(ds, spec, "published", {}, seed=3)
    b = build_window_split(ds, spec, "published", {}, seed=4)
    assert a["parts"]["test"]["t0"] == b["parts"]["test"]["t0"]  # the seed changes the offsets only
    assert a["parts"]["test"]["offsets"] != b["parts"]["test"]["offsets"]


def test_published_split_refuses_a_short_trajectory_and_unknown_molecule():
    with pytest.raises(TaskError, match="frames"):
        build_window_split(md17_manifest_only("aspirin", frames=150_000), WindowSpec(**PAPER), "published", {}, 0)
    with pytest.raises(TaskError, match="no published split"):
        build_window_split(md17_manifest_only("aspirin"), WindowSpec(**PAPER), "published",
                           {"molecule": "benzene2018"}, 0)
    with pytest.raises(TaskError, match="n_train=600"):
        build_window_split(md17_manifest_only("aspirin"), WindowSpec(**{**PAPER, "n_train": 600}), "published",
                           {}, 0)


def test_published_split_leaks_train_into_test_as_documented():
    """The known flaw the card reports: aspirin train/test start frames closer than delta_frame."""
    starts = md17_published_starts()["aspirin"]
    gaps = np.abs(np.asarray(starts["train"])[:, None] - np.asarray(starts["test"])[None])
    assert (gaps < 3000).sum() == 30946 and gaps.min() == 1


@pytest.mark.parametrize("mol", ["aspirin", "uracil"])
def test_blocks_split_on_md17_is_leak_free(mol):
    ds = md17_manifest_only(mol)
    split = build_window_split(ds, WindowSpec(sampling="irregular", **PAPER), "blocks", {}, seed=0)
    spans = {}
    for part in ("train", "val", "test"):
        first, last = touched(split["parts"][part])
        spans[part] = (first.min(), last.max() + 1)  # +1: the forward-difference velocity frame
    assert spans["train"][1] + 3000 <= spans["val"][0]
    assert spans["val"][1] + 3000 <= spans["test"][0]
    assert spans["test"][1] < PUBLISHED_FRAMES[mol]


def test_windows_refused_on_a_dataset_that_is_not_a_time_series():
    ds = md17_manifest_only("aspirin", time_series=False)
    with pytest.raises(TaskError, match="not a time series"):
        build_window_split(ds, WindowSpec(**PAPER), "blocks", {}, seed=0)


def test_strategy_table_matches_schema():
    """Every strategy the suite schema accepts for a window task is in the table, and no other."""
    schema = json.loads(SCHEMA_PATH.read_text())
    task = schema["properties"]["tasks"]["additionalProperties"]
    enum = task["properties"]["split"]["properties"]["strategy"]["enum"]
    assert list(WINDOW_STRATEGIES) == enum
