"""The suite's datasets as systems to time: one start frame built with the dataset generator's own
settings (no MD), the methods' time to predict one window of it (``window`` and ``scale`` workers),
and the MD time of the same window from the generator's measured throughput."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import numpy as np
import torch

from benchmark.graph import molecular_graph
from benchmark.perf.cases import WAVELET_ATOMS, WINDOW_FRAMES, K, context_for, subset_atoms
from benchmark.perf.measure import n_params, timed_predict
from benchmark.perf.variants import build, is_fitted, observed_frames, suite_variants
from benchmark.stats import TRIVIAL_BASELINES
from methods import TorchMethod
from methods.nn.model import GraphModel

# Short set-up for the MD measurement (only the production steps are timed): overrides and frames measured
MD_MEASUREMENT = {
    # 50 steps/frame: 1000 steps timed. On the CPU platform, not the dataset's default Reference
    # platform (2.4x slower, chosen for bytes that are the same on every processor): a speedup
    # over MD is over the fastest MD.
    "lj_argon": ({"equilibration_steps": 500, "platform": "CPU"}, 21),
    "tip3p_water": ({"npt_ps": 1.0, "nvt_equilibration_ps": 0.2}, 9),  # 400 steps
    "tip4pew_water": ({"npt_ps": 1.0, "nvt_equilibration_ps": 0.2}, 9),
    "md17_xtb": ({"equilibration_ps": 0.25}, 301),  # 1 step/frame: 300 steps
}
KB_J_PER_K = 1.380649e-23
DALTON_KG = 1.66053906660e-27


def dataset_params(suite, dataset: str) -> tuple[str, dict]:
    entry = suite.datasets[dataset]
    params = dict(entry.params)
    params.setdefault("structure_seed", entry.seed)
    return entry.kind, params


def thermal_velocities(masses, temperature_K: float, seed: int = 0) -> np.ndarray:
    """Maxwell-Boltzmann velocities (A/fs) of atoms of ``masses`` (Da) at ``temperature_K``."""
    m = np.asarray(masses, dtype=np.float64)
    sigma = np.sqrt(KB_J_PER_K * temperature_K / (m * DALTON_KG)) * 1e-5  # m/s -> A/fs
    return np.random.default_rng(seed).normal(size=(len(m), 3)) * sigma[:, None]


def water_box(params: dict, n_molecules: int):
    """(positions A [N, 3], atomic numbers, masses Da, box A [3]) of a Modeller water box."""
    from openmm import unit

    from benchmark.data.water import build_box

    topology, positions_nm, _ = build_box({**params, "n_molecules": int(n_molecules)})
    atoms = list(topology.atoms())
    real = [i for i, a in enumerate(atoms) if a.element is not None]  # TIP4P-Ew: drop the virtual site
    z = np.array([atoms[i].element.atomic_number for i in real])
    masses = np.array([atoms[i].element.mass.value_in_unit(unit.dalton) for i in real])
    vectors = topology.getPeriodicBoxVectors()
    box = np.array([vectors[i][i].value_in_unit(unit.angstrom) for i in range(3)])
    return positions_nm[real] * 10.0, z, masses, box


def system(suite, dataset: str, n_molecules: int | None = None) -> dict:
    """The start frame of one of the suite's datasets, built with its generator's own settings (no MD)."""
    kind, params = dataset_params(suite, dataset)
    dt = float(params["timestep_fs"] * params["steps_per_frame"])
    edges, box = None, None
    if kind == "lj_argon":
        from benchmark.data import lj

        n = params["n_particles"]
        edge = lj.box_edge_A(n, params["reduced_density"])
        x = lj.initial_structure(n, edge, np.random.default_rng(params["structure_seed"]))
        z, masses, box = np.full(n, lj.ARGON["atomic_number"]), np.full(n, lj.ARGON["mass"]), np.full(3, edge)
        label = f"LJ argon, {n} atoms"
    elif kind in ("tip3p_water", "tip4pew_water"):
        n_mol = int(n_molecules or params["n_molecules"])
        x, z, masses, box = water_box(params, n_mol)
        label = f"{params['model'].upper()} water, {n_mol} molecules ({len(z)} atoms)"
    elif kind == "md17_xtb":
        from benchmark.data.md17_xtb import build_molecule
        z, x, masses, bonds = build_molecule(params)
        graph = molecular_graph_params(suite, dataset)
        edges = molecular_graph(x, np.asarray(bonds), graph.get("cutoff", 1.6), graph.get("two_hop", True))
        label = f"MD17-xTB {params['molecule']}, {len(z)} atoms"
    else:
        raise ValueError(f"no perf system for dataset kind {kind!r}")
    v = thermal_velocities(masses, params["temperature_K"])
    return {"dataset": dataset, "kind": kind, "label": label, "positions": x, "velocities": v,
            "atomic_numbers": z, "masses": masses, "edges": edges, "box": box, "dt_fs": dt,
            "steps_per_frame": int(params["steps_per_frame"]), "n_atoms": len(z)}


def molecular_graph_params(suite, dataset: str) -> dict:
    for entry in suite.tasks.values():
        if dataset in entry.datasets and entry.graph["kind"] == "molecular":
            return entry.graph
    return {"kind": "molecular"}


def system_context(suite, variant: str, sys_: dict):
    """(context, query_times) of one window: batch 1, 8 regular query times over delta_frame frames."""
    observed = observed_frames(suite, variant, sys_["dataset"])
    ctx = context_for(sys_["positions"][None], sys_["velocities"][None], sys_["atomic_numbers"],
                           sys_["masses"], sys_["edges"], sys_["box"], sys_["dt_fs"], observed)
    frames = torch.tensor([WINDOW_FRAMES * i // K for i in range(1, K + 1)], dtype=torch.float32)
    return ctx, (frames * sys_["dt_fs"])[None]


def system_variants(suite, dataset: str) -> list[str]:
    """The fitted variants the suite runs on ``dataset`` (in suite order); the trivial baselines
    (``benchmark.stats.TRIVIAL_BASELINES``: the mean structure is fitted, but only as a statistic of the
    training frames) are not timed."""
    names = []
    for task, entry in suite.tasks.items():
        if dataset in entry.datasets:
            names += [m for m in suite.task_methods(task) if m not in names]
    variants = suite_variants(suite)
    return [v for v in suite.methods
            if v in names and is_fitted(variants[v][0]) and variants[v][0] not in TRIVIAL_BASELINES]


def predict_cost(suite, variant: str, sys_: dict):
    """(result, method): the variant's time to predict one window of ``sys_``."""
    ctx, query = system_context(suite, variant, sys_)
    method = build(suite, variant, ctx, "cpu", dataset=sys_["dataset"])
    out = {"variant": variant, "dataset": sys_["dataset"], "n_atoms": sys_["n_atoms"],
           "observed_frames": ctx.observed_positions.shape[1], "n_params": n_params(method), "note": ""}
    n = sys_["n_atoms"]
    if not isinstance(method, TorchMethod) and ctx.observed_positions.shape[1] > 1:
        sub = min(WAVELET_ATOMS, n)  # independent per-series fits: time a few atoms, scale to N
        t = timed_predict(method, subset_atoms(ctx, sub), query)
        t["wall_s"], t["cpu_s"] = t["wall_s"] * n / sub, t["cpu_s"] * n / sub
        out["note"] = f"fit + forecast timed on {sub} atoms ({3 * sub} series), scaled to {n}"
    else:
        t = timed_predict(method, ctx, query)
    return {**out, **t}, method


def window_worker(suite, variant: str, dataset: str) -> dict:
    return predict_cost(suite, variant, system(suite, dataset))[0]


def scale_worker(suite, variant: str, dataset: str, n_molecules: int) -> dict:
    sys_ = system(suite, dataset, n_molecules)
    r, method = predict_cost(suite, variant, sys_)
    model = method.model
    if isinstance(model, GraphModel):
        r["neighbour_list"] = ("dense all pairs (radius_pairs, <= 1024 atoms)" if sys_["n_atoms"] <= 1024
                               and model.neighbor_backend == "auto" else f"radius_pairs ({model.neighbor_backend}; "
                               "vesin cell list above 1024 atoms)")
        if hasattr(model, "operator"):  # NDCN: the pairs fill a dense N x N Laplacian, multiplied densely
            r["neighbour_list"] += "; then a dense N x N graph operator"
    else:
        r["neighbour_list"] = ("dense all pairs (methods.painn.radius_graph -> radius_pairs, <= 1024 atoms)"
                               if sys_["n_atoms"] <= 1024 else
                               "methods.painn.radius_graph -> radius_pairs (vesin cell list above 1024 atoms)")
    r["n_molecules"] = n_molecules
    return r


def md_cost(suite, dataset: str, window_frames: int, frames: int | None = None) -> dict:
    """The dataset generator's production throughput (one thread) -> the MD time of ``window_frames`` frames."""
    kind, params = dataset_params(suite, dataset)
    overrides, default_frames = MD_MEASUREMENT[kind]
    overrides = {**{k: v for k, v in suite.datasets[dataset].overrides.items()
                    if k not in ("n_frames", "n_trajectories")}, **overrides, "threads": 1}
    frames = frames or default_frames
    cmd = [sys.executable, "-m", "benchmark.data.throughput", kind,
           *[f"{k}={json.dumps(v)}" for k, v in overrides.items()], "--frames", str(frames)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"dataset": dataset, "error": (proc.stderr.strip().splitlines() or ["no output"])[-1][-300:]}
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    steps = window_frames * int(params["steps_per_frame"])
    engine = "GFN2-xTB (tblite, ASE)" if kind == "md17_xtb" else "OpenMM CPU platform"
    return {"dataset": dataset, "engine": engine, "steps_measured": (frames - 1) * int(params["steps_per_frame"]),
            "steps_per_cpu_s": m["steps_per_cpu_s"], "steps_per_wall_s": m["steps_per_wall_s"],
            "window_steps": steps, "window_frames": window_frames,
            "timestep_fs": params["timestep_fs"], "command": shlex.join(["python", *cmd[1:]]),
            "load_average": m["load_average"]}
