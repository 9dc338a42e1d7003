"""Shared fixtures: tiny datasets made in seconds (never committed binaries).

``tiny_datasets`` gives every fixture dataset the generic method test runs on:
a periodic Lennard-Jones box simulated by OpenMM (the real generator, tiny
parameters) and a non-periodic "molecule" (a noisy harmonic chain with known
bonds) written through the same on-disk format.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.data.format import open_dataset, write_manifest, write_trajectory
from benchmark.data.registry import make_dataset
from benchmark.samples import open_parts
from benchmark.specs import WindowSpec
from benchmark.splits import build_window_split

TINY_LJ = {"n_particles": 64, "cutoff_sigma": 2.5, "n_frames": 60, "n_trajectories": 3, "steps_per_frame": 10}


def make_chain_dataset(path, n_traj=3, n_frames=80, n_atoms=6, seed=0, dt_fs=0.5,
                       atomic_numbers=(6, 6, 8, 6, 7, 6)):
    """A noisy 6-atom chain vibrating around a zig-zag, with bonds; in the project format."""
    rng = np.random.default_rng(seed)
    base = np.stack([np.arange(n_atoms) * 1.4, (np.arange(n_atoms) % 2) * 0.8, np.zeros(n_atoms)], -1)
    t = np.arange(n_frames)[:, None, None] * dt_fs
    for i in range(n_traj):
        phase = rng.uniform(0, 2 * np.pi, size=(1, n_atoms, 3))
        pos = base + 0.1 * np.sin(0.05 * t + phase) + 0.01 * rng.normal(size=(n_frames, n_atoms, 3))
        write_trajectory(path / f"traj_{i:03d}", pos.astype(np.float32), dt_fs=dt_fs,
                         atomic_numbers=list(atomic_numbers)[:n_atoms],
                         masses=[12.0, 12.0, 16.0, 12.0, 14.0, 12.0][:n_atoms],
                         bonds=[[j, j + 1] for j in range(n_atoms - 1)], provenance={"fixture": "chain"})
    write_manifest(path, name="chain_tiny", kind="fixture_chain", params={"seed": seed},
                   info={"periodic": False, "graph": "bonds"})
    return open_dataset(path)


@pytest.fixture(scope="session")
def lj_dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("lj") / "lj_tiny", "lj_tiny", "lj_argon", TINY_LJ, seed=0,
                        progress=False)


@pytest.fixture(scope="session")
def chain_dataset(tmp_path_factory):
    return make_chain_dataset(tmp_path_factory.mktemp("chain") / "chain_tiny")


SPEC = WindowSpec(delta_frame=16, num_queries=4, sampling="irregular", n_train=12, n_val=6, n_test=6)


@pytest.fixture(scope="session")
def tiny_tasks(lj_dataset, chain_dataset):
    """{name: (train, val, test)} sample sets of every fixture dataset."""
    out = {}
    for name, ds, graph in [("lj", lj_dataset, {"kind": "none"}),
                            ("chain", chain_dataset, {"kind": "molecular", "cutoff": 1.6, "two_hop": True})]:
        split = build_window_split(ds, SPEC, "by_trajectory", {}, seed=0)
        parts = open_parts(ds, split, graph)
        out[name] = (parts["train"], parts["val"], parts["test"])
    return out


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The Snakemake workflow run once for real on the smoke suite (minutes): its results folder
    (work folder beside it), shared by the tests that check its outputs."""
    import subprocess
    import sys
    from pathlib import Path

    root = tmp_path_factory.mktemp("smoke")
    work, results = root / "work", root / "results"
    out = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "all", "--config", "suite=smoke",
                          f"work_dir={work}", f"results_dir={results}"], cwd=Path(__file__).resolve().parent.parent,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return results


def random_rotation(gen: torch.Generator) -> torch.Tensor:
    """A uniformly random proper rotation [3, 3] (float64) from ``gen`` (QR of a Gaussian matrix)."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q
