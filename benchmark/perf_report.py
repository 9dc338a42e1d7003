"""The measured cost of every method: ``python -m benchmark.perf --report results/perf.md``.

Writes a markdown report and a JSON sidecar (same name, ``.json``) with three
sections, all measured in one run on one machine, every measurement in a
fresh process with ``--threads`` torch threads (default 1):

1. **Methods**: per variant of the suite (its hyperparameters from the suite
   config), training time per epoch of 500 samples, inference time per
   sample, peak memory and parameter count on the synthetic cases of
   :mod:`benchmark.perf`.
2. **Speedup over MD**: for each system (the suite's LJ argon, TIP3P water and
   one MD17-xTB molecule) the simulator's time for ``delta_frame`` frames'
   worth of MD steps, measured over a few hundred production steps of the
   dataset's own generator (``benchmark.data.throughput``, its settings from
   the suite; one thread) and extrapolated linearly, against each method's
   time to predict one window of 8 query times on that system (batch 1,
   untrained weights, the suite's hyperparameters), both in CPU seconds of
   the measuring process (the fair figure on a shared machine) and in wall
   seconds.  Untrained weights cost what trained ones do, except for adaptive
   ODE solvers, whose step count depends on the learned dynamics.
3. **Scaling**: inference time per sample and per atom of the neighbour-list
   methods on TIP3P water boxes of increasing size (built with OpenMM's
   Modeller as the water generator does; not simulated), the per-atom cost
   ratio largest/smallest box and whether it is within the target (1.2).

The numbers are printed by this command; no test asserts timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmark import perf

SPEEDUP_TARGET = 1000.0  # the issue's target for the liquids: predict a 3000-step window >= 1000x faster
SCALING_TARGET = 1.2  # per-atom cost largest/smallest box
DEFAULT_SYSTEMS = "lj_argon,tip3p_water,md17xtb_aspirin"
LIQUID_KINDS = ("lj_argon", "tip3p_water", "tip4pew_water")
SCALING_DATASET = "tip3p_water"
DEFAULT_SIZES = "258,1032,4128"
SCALING_METHODS = "egnn,egno,gfnode,ndcn,lgode,domino,ito_1step"
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


# --------------------------------------------------------------------------- systems


def dataset_params(suite, dataset: str) -> tuple[str, dict]:
    from benchmark.data.registry import resolve_params

    entry = suite.datasets[dataset]
    params = resolve_params(entry["kind"], entry.get("params"))
    params.setdefault("structure_seed", entry.get("seed", 0))
    return entry["kind"], params


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
        from benchmark.graph import molecular_graph

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
        if dataset in entry["datasets"] and entry.get("graph", {}).get("kind") == "molecular":
            return entry["graph"]
    return {"kind": "molecular"}


def system_context(suite, variant: str, sys_: dict):
    """(context, query_times) of one window: batch 1, 8 regular query times over delta_frame frames."""
    observed = perf.observed_frames(suite, variant, sys_["dataset"])
    ctx = perf.context_for(sys_["positions"][None], sys_["velocities"][None], sys_["atomic_numbers"],
                           sys_["masses"], sys_["edges"], sys_["box"], sys_["dt_fs"], observed)
    frames = torch.tensor([perf.WINDOW_FRAMES * i // perf.K for i in range(1, perf.K + 1)], dtype=torch.float32)
    return ctx, (frames * sys_["dt_fs"])[None]


def system_variants(suite, dataset: str) -> list[str]:
    """The fitted variants the suite runs on ``dataset`` (in suite order)."""
    names = []
    for task, entry in suite.tasks.items():
        if dataset in entry["datasets"]:
            names += [m for m in suite.task_methods(task) if m not in names]
    variants = perf.suite_variants(suite)
    return [v for v in suite.methods if v in names and perf.is_fitted(variants[v][0])]


# --------------------------------------------------------------------------- workers (fresh processes)


def predict_cost(suite, variant: str, sys_: dict):
    """(result, method): the variant's time to predict one window of ``sys_``."""
    from methods import TorchMethod

    ctx, query = system_context(suite, variant, sys_)
    method = perf.build(suite, variant, ctx, "cpu", dataset=sys_["dataset"])
    out = {"variant": variant, "dataset": sys_["dataset"], "n_atoms": sys_["n_atoms"],
           "observed_frames": ctx.observed_positions.shape[1], "n_params": perf.n_params(method), "note": ""}
    n = sys_["n_atoms"]
    if not isinstance(method, TorchMethod) and ctx.observed_positions.shape[1] > 1:
        sub = min(perf.WAVELET_ATOMS, n)  # independent per-series fits: time a few atoms, scale to N
        t = perf.timed_predict(method, perf.subset_atoms(ctx, sub), query)
        t["wall_s"], t["cpu_s"] = t["wall_s"] * n / sub, t["cpu_s"] * n / sub
        out["note"] = f"fit + forecast timed on {sub} atoms ({3 * sub} series), scaled to {n}"
    else:
        t = perf.timed_predict(method, ctx, query)
    return {**out, **t}, method


def window_worker(suite, variant: str, dataset: str) -> dict:
    return predict_cost(suite, variant, system(suite, dataset))[0]


def scale_worker(suite, variant: str, dataset: str, n_molecules: int) -> dict:
    from methods.layers import GraphModel

    sys_ = system(suite, dataset, n_molecules)
    r, method = predict_cost(suite, variant, sys_)
    model = getattr(method, "model", None)
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
    overrides = {**{k: v for k, v in suite.datasets[dataset].get("params", {}).items()
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


# --------------------------------------------------------------------------- arithmetic


def speedup(md: dict, pred: dict) -> dict:
    """MD seconds for the window (extrapolated from the measured rate) / the method's seconds, CPU and wall."""
    md_cpu = md["window_steps"] / md["steps_per_cpu_s"]
    md_wall = md["window_steps"] / md["steps_per_wall_s"]
    return {"md_cpu_s": md_cpu, "md_wall_s": md_wall,
            "speedup_cpu": md_cpu / pred["cpu_s"] if pred["cpu_s"] > 0 else float("inf"),
            "speedup_wall": md_wall / pred["wall_s"] if pred["wall_s"] > 0 else float("inf")}


def scaling_summary(rows: list[dict], target: float = SCALING_TARGET) -> dict:
    """Per-atom cost (CPU s / atom) per size, ratio largest/smallest box and the verdict.

    ``rows``: [{"n_atoms", "cpu_s"} or {"n_atoms", "error"}] of one method.
    """
    ok = sorted((r for r in rows if "error" not in r), key=lambda r: r["n_atoms"])
    per_atom = {int(r["n_atoms"]): r["cpu_s"] / r["n_atoms"] for r in ok}
    sizes = sorted(int(r["n_atoms"]) for r in rows)
    if len(ok) < 2 or int(ok[-1]["n_atoms"]) != sizes[-1] or int(ok[0]["n_atoms"]) != sizes[0]:
        return {"per_atom_cpu_s": per_atom, "ratio": None, "passes": False,
                "verdict": "incomplete (a size failed)"}
    small, large = ok[0], ok[-1]
    ratio = per_atom[int(large["n_atoms"])] / per_atom[int(small["n_atoms"])]
    # the exponent a of cost ~ atoms^a between smallest and largest box (1 = linear, 2 = all pairs)
    exponent = float(np.log(large["cpu_s"] / small["cpu_s"]) / np.log(large["n_atoms"] / small["n_atoms"]))
    passes = ratio <= target
    return {"per_atom_cpu_s": per_atom, "ratio": ratio, "exponent": exponent, "passes": passes,
            "verdict": f"{'PASS' if passes else 'FAIL'} (target <= {target})"
                       + ("; grows ~quadratically: all-pairs work" if exponent >= 1.5 else "")}


# --------------------------------------------------------------------------- the run


def provenance(argv: list[str], threads: int) -> dict:
    from benchmark.io import git_sha, hardware_string

    return {"command": shlex.join(["python", "-m", "benchmark.perf", *argv]), "git_sha": git_sha(),
            "hardware": hardware_string("cpu"), "torch": torch.__version__, "python": platform.python_version(),
            "threads": threads, "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_average_start": [round(x, 2) for x in os.getloadavg()]}


def run(args, argv: list[str], echo=print) -> dict:
    suite = perf.load(args.suite)
    variants = perf.suite_variants(suite)
    only = [v for v in args.methods.split(",") if v] or None
    sections = set(args.sections.split(","))
    data = {"provenance": provenance(argv, args.threads), "suite": suite.name,
            "epoch_samples": perf.EPOCH_SAMPLES, "k": perf.K, "window_frames": perf.WINDOW_FRAMES}
    if "methods" in sections:
        table_variants = [v for v in variants if only is None or v in only]
        cases = [c for c in args.cases.split(",") if c]
        echo(f"# methods: {len(table_variants)} variants x {cases}")
        res = perf.measure_table(suite.name, cases, table_variants, args.batches, args.threads, args.malloc,
                                 echo=echo)
        data["methods"] = [res[k] for k in res]
        data["egnn_layer"] = perf.egnn_comparison(suite, cases, res)
    if "speedup" in sections:
        data["speedup"] = []
        for dataset in [d for d in args.systems.split(",") if d]:
            md = md_cost(suite, dataset, perf.WINDOW_FRAMES, args.md_frames)
            echo(f"# MD {dataset}: {md}")
            sys_ = system(suite, dataset)
            entry = {"dataset": dataset, "kind": sys_["kind"], "label": sys_["label"], "n_atoms": sys_["n_atoms"],
                     "md": md, "methods": []}
            for variant in system_variants(suite, dataset):
                if only is not None and variant not in only:
                    continue
                r = perf.run_worker({"kind": "window", "suite": suite.name, "variant": variant,
                                     "dataset": dataset}, args.threads, args.malloc, timeout=args.timeout,
                                    mem_limit_gb=args.mem_limit_gb)
                r.setdefault("variant", variant)
                if "error" not in r and "error" not in md:
                    r.update(speedup(md, r))
                echo(f"  {dataset} {variant}: {json.dumps(r)}")
                entry["methods"].append(r)
            data["speedup"].append(entry)
    if "scaling" in sections:
        sizes = [int(s) for s in args.sizes.split(",") if s]
        data["scaling"] = {"dataset": SCALING_DATASET, "n_molecules": sizes, "methods": []}
        for variant in [v for v in args.scaling_methods.split(",") if v]:
            if only is not None and variant not in only:
                continue
            rows = []
            for n in sizes:
                r = perf.run_worker({"kind": "scale", "suite": suite.name, "variant": variant,
                                     "dataset": SCALING_DATASET, "n_molecules": n}, args.threads, args.malloc,
                                    timeout=args.timeout, mem_limit_gb=args.mem_limit_gb)
                r.setdefault("n_atoms", 3 * n)
                r.setdefault("n_molecules", n)
                echo(f"  scaling {variant} {n}: {json.dumps(r)}")
                rows.append(r)
            data["scaling"]["methods"].append({"variant": variant, "rows": rows, **scaling_summary(rows)})
    data["provenance"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return data


def merge(parts: list[dict]) -> dict:
    """One report from the sections of several (each section from one part; provenance of all)."""
    data = {k: v for k, v in parts[0].items() if k not in ("methods", "egnn_layer", "speedup", "scaling")}
    prov = dict(parts[0]["provenance"])
    for key in ("command", "git_sha", "date_utc", "load_average_start", "load_average_end"):
        values = [str(p["provenance"].get(key)) for p in parts]
        prov[key] = values[0] if len(set(values)) == 1 else " ; ".join(values)
    for key in ("hardware", "torch", "threads", "suite"):
        if len({json.dumps(p["provenance"].get(key, p.get(key))) for p in parts}) != 1:
            raise ValueError(f"cannot merge reports measured with different {key}")
    data["provenance"], data["parts"] = prov, [p["provenance"] for p in parts]
    for part in parts:
        for key in ("methods", "egnn_layer", "speedup", "scaling"):
            if key in part:
                if key in data:
                    raise ValueError(f"section {key!r} is in more than one of the merged reports")
                data[key] = part[key]
    return data


# --------------------------------------------------------------------------- markdown


def _f(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def error_text(message: str) -> str:
    """A failure, shortened: an allocation failure as its size."""
    found = re.search(r"can't allocate memory: you tried to allocate (\d+) bytes", message)
    if found:
        return f"out of memory (an allocation of {int(found.group(1)) / 2 ** 30:.1f} GiB failed)"
    return message


def passes_text(r: dict) -> str:
    parts = [f"{r['passes']} pass{'es' if r['passes'] != 1 else ''}"]
    if r.get("ode_evaluations"):
        parts.append(f"{r['ode_evaluations']} ODE evaluations")
    if r.get("denoiser_evaluations"):
        parts.append(f"{r['denoiser_evaluations']} denoiser passes")
    return ", ".join(parts) if r.get("n_params") else "no network"


def render(data: dict) -> str:
    p = data["provenance"]
    if "parts" in data:
        made = (" and ".join(f"`{q['command']}`" for q in data["parts"]) + " (run side by side on this machine), "
                f"combined by `{data.get('merge_command', 'merge')}`")
    else:
        made = f"`{p['command']}`"
    out = ["# Cost of the methods, measured", "",
           f"Generated by {made} (do not edit by hand).", "",
           f"- hardware: {p['hardware']}", f"- git: {p['git_sha']}", f"- torch {p['torch']}, Python {p['python']}",
           f"- torch threads per measurement: {p['threads']} (every measurement in a fresh process)",
           f"- date: {p['date_utc']}; load average at start {p['load_average_start']}, "
           f"at end {p.get('load_average_end')}",
           f"- suite: `{data['suite']}` (method hyperparameters from its config)", "",
           "CPU seconds are the measuring process's CPU time (one thread: close to an idle core's wall "
           "time, and far less sensitive to other jobs on a shared machine than wall time). "
           "Timings vary by 20-40 % from run to run; compare within one run.", ""]
    if "methods" in data:
        out += ["## Methods", "",
                f"Synthetic cases (`benchmark.perf`): `mol21` = 21-atom molecule, fully connected, batch 50; "
                f"`box250` = 250 atoms at liquid-argon density, radius graph, batch 5; {data['k']} query times "
                f"within {data['window_frames']} frames. Epoch = {data['epoch_samples']} samples (forward + "
                "backward + Adam step, timed batches after a warm-up). Each variant is built as the suite "
                "runs it: for its window task when it has one, else for its extrapolation task (8000-frame "
                "horizon), with a synthetic history of the task's observed frames. Peak memory: "
                "peak resident set of the process above its baseline after building the model.", "",
                "| case | method | batch | observed frames | s/epoch (wall) | s/epoch (CPU) | "
                "inference ms/sample (wall) | inference ms/sample (CPU) | peak MB | parameters | "
                "ODE nfe (training) | note |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in data["methods"]:
            if "error" in r:
                out.append(f"| {r['case']} | {r['variant']} | | | | | | | | | | FAILED: {error_text(r['error'])} |")
                continue
            out.append(f"| {r['case']} | {r['variant']} | {r['batch']} | {r['observed_frames']} | "
                       f"{_f(r['epoch_s'], '.1f')} | "
                       f"{_f(r['epoch_cpu_s'], '.1f')} | {r['infer_ms_per_sample']:.2f} | "
                       f"{r['infer_cpu_ms_per_sample']:.2f} | {r['peak_mb']:.0f} | {r['n_params']:,} | "
                       f"{_f(r['nfe'], '.0f')} | {r.get('note', '')} |")
        if data.get("egnn_layer"):
            out += ["", "Fast EGNN layer against its reference implementations:", ""]
            out += [f"- {line}" for line in data["egnn_layer"]]
        out.append("")
    if "speedup" in data:
        out += ["## Speedup over MD", "",
                f"One window of {data['window_frames']} frames: the simulator's time for that many frames' worth "
                "of MD steps (production steps only, set-up excluded; measured over the steps in the table with the "
                "dataset generator's own settings and one thread, then **extrapolated linearly** to the window) "
                f"against the method's time to predict the window at {data['k']} query times (batch 1, untrained "
                "weights, the suite's hyperparameters; passes = forward passes of the network for the whole "
                "window, all query times batched where the method does so). Speedup = MD time / prediction time; "
                f"target for the liquids: >= {SPEEDUP_TARGET:.0f}x (CPU time).", ""]
        for entry in data["speedup"]:
            md = entry["md"]
            out += [f"### {entry['label']} (`{entry['dataset']}`)", ""]
            if "error" in md:
                out += [f"MD measurement FAILED: {md['error']}", ""]
                continue
            liquid = entry["kind"] in LIQUID_KINDS
            md_cpu = md["window_steps"] / md["steps_per_cpu_s"]
            md_wall = md["window_steps"] / md["steps_per_wall_s"]
            out += [f"MD ({md['engine']}): {md['steps_per_cpu_s']:.1f} steps per CPU second "
                    f"({md['steps_per_wall_s']:.1f} per wall second), measured over {md['steps_measured']} steps "
                    f"(`{md['command']}`); the window = {md['window_frames']} frames = {md['window_steps']:,} steps "
                    f"of {md['timestep_fs']} fs -> **{md_cpu:,.1f} CPU s** ({md_wall:,.1f} wall s), extrapolated.", "",
                    "| method | predict CPU s | predict wall s | passes | speedup (CPU) | speedup (wall) | "
                    + ("meets 1000x |" if liquid else "") + " note |",
                    "|---|---:|---:|---|---:|---:|" + ("---|" if liquid else "") + "---|"]
            for r in entry["methods"]:
                if "error" in r:
                    gap = "| | | | | | " + ("| " if liquid else "")
                    out.append(f"| {r['variant']} {gap}FAILED: {error_text(r['error'])} |")
                    continue
                note = r.get("note", "")
                if r.get("finite") is False:
                    note = (note + "; " if note else "") + "non-finite predictions (untrained weights), timed anyway"
                if r.get("timed_call") == "first":
                    note = (note + "; " if note else "") + "one call timed (no warm-up: it took > 20 CPU s)"
                meets = ("yes" if r["speedup_cpu"] >= SPEEDUP_TARGET else "**no**") + " |" if liquid else ""
                out.append(f"| {r['variant']} | {r['cpu_s']:.3f} | {r['wall_s']:.3f} | {passes_text(r)} | "
                           f"{r['speedup_cpu']:,.0f}x | {r['speedup_wall']:,.0f}x | {meets} {note} |")
            out.append("")
            if liquid:
                done = [r for r in entry["methods"] if "error" not in r]
                met = [r["variant"] for r in done if r["speedup_cpu"] >= SPEEDUP_TARGET]
                missed = [r["variant"] for r in done if r["speedup_cpu"] < SPEEDUP_TARGET]
                failed = [r["variant"] for r in entry["methods"] if "error" in r]
                out += [f"{SPEEDUP_TARGET:.0f}x target (CPU time): met by {', '.join(met) or 'none'}; "
                        f"**not met** by {', '.join(missed) or 'none'}"
                        + (f"; not measured (failed): {', '.join(failed)}" if failed else "") + ".", ""]
    if "scaling" in data:
        sc = data["scaling"]
        sizes = sc["n_molecules"]
        out += ["## Scaling with system size", "",
                f"Inference time of one sample (batch 1, {data['k']} query times) on TIP3P water boxes of "
                f"{', '.join(map(str, sizes))} molecules (built with OpenMM Modeller like `benchmark/data/water.py`, "
                "not simulated); per-atom cost = CPU s / atoms. Target: per-atom cost of the largest box within "
                f"{SCALING_TARGET}x of the smallest's (linear in atoms). Exponent a: cost ~ atoms^a between the "
                "smallest and the largest box (1 = linear, 2 = all pairs). A failed allocation means the "
                "measurement needed more than the address-space limit of the command's `--mem-limit-gb`.", "",
                "| method | " + " | ".join(f"{n} mol: CPU s (ms/atom)" for n in sizes)
                + " | ratio largest/smallest per atom | exponent a | verdict | neighbour list (pair search) |",
                "|---|" + "---:|" * len(sizes) + "---:|---:|---|---|"]
        for m in sc["methods"]:
            cells, lists = [], []
            for r in m["rows"]:
                if "error" in r:
                    cells.append(f"FAILED: {error_text(r['error'])}")
                else:
                    cells.append(f"{r['cpu_s']:.2f} ({1000 * r['cpu_s'] / r['n_atoms']:.3f})")
                    if r.get("neighbour_list") and r["neighbour_list"] not in lists:
                        lists.append(r["neighbour_list"])
            out.append(f"| {m['variant']} | " + " | ".join(cells) + f" | {_f(m['ratio'], '.2f')} | "
                       f"{_f(m.get('exponent'), '.2f')} | {m['verdict']} | {'; '.join(lists)} |")
        out.append("")
        linear = [m["variant"] for m in sc["methods"] if m["passes"]]
        worse = [f"{m['variant']} ({_f(m['ratio'], '.2f')}x)" for m in sc["methods"]
                 if not m["passes"] and m["ratio"] is not None]
        broken = [m["variant"] for m in sc["methods"] if m["ratio"] is None]
        incomplete = f"; incomplete (a box failed): {', '.join(broken)}" if broken else ""
        out += [f"Linear within {SCALING_TARGET}x per atom: {', '.join(linear) or 'none'}; **not linear**: "
                f"{', '.join(worse) or 'none'}{incomplete}.", ""]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m benchmark.perf --report PATH", description=__doc__.split("\n")[0])
    ap.add_argument("--report", required=True, help="markdown output; the JSON goes next to it (.json)")
    ap.add_argument("--suite", default="default")
    ap.add_argument("--sections", default="methods,speedup,scaling")
    ap.add_argument("--methods", default="", help="only these variants (default: all)")
    ap.add_argument("--cases", default="mol21,box250", help="synthetic cases of the methods table")
    ap.add_argument("--batches", type=int, default=2, help="timed training batches per measurement")
    ap.add_argument("--systems", default=DEFAULT_SYSTEMS, help="suite datasets of the speedup section")
    ap.add_argument("--md-frames", type=int, default=None, help="frames of MD to time (default: per kind)")
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help="water molecules per box of the scaling section")
    ap.add_argument("--scaling-methods", default=SCALING_METHODS)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--malloc", choices=["default", "tuned"], default="tuned")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per speedup/scaling measurement")
    ap.add_argument("--mem-limit-gb", type=float, default=12.0, help="address-space limit per measurement")
    ap.add_argument("--render-only", action="store_true",
                    help="measure nothing: re-render the markdown from the JSON next to --report")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="measure nothing: write --report (+ .json) from the sections of these reports "
                         "(e.g. --sections methods and --sections speedup,scaling run side by side)")
    args = ap.parse_args(argv)
    from benchmark.io import read_json, write_json, write_text

    path = Path(args.report)
    if args.render_only:
        write_text(path, render(read_json(path.with_suffix(".json"))))
        print(path)
        return 0
    if args.merge:
        data = merge([read_json(p) for p in args.merge])
        data["merge_command"] = shlex.join(["python", "-m", "benchmark.perf", *argv])
        write_text(path, render(data))
        write_json(path.with_suffix(".json"), data)
        print(path)
        return 0
    torch.set_num_threads(args.threads)
    data = run(args, argv)
    write_text(path, render(data))
    write_json(path.with_suffix(".json"), data)
    print(path)
    print(path.with_suffix(".json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
