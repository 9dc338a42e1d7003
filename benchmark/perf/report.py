"""The measured cost of every method: ``python -m benchmark.perf --report results/perf.md``.

Writes a markdown report (:mod:`benchmark.perf.render`) and a JSON sidecar (same name, ``.json``)
with three sections, all measured in one run on one machine, every measurement in a fresh process
with ``--threads`` torch threads (default 1):

1. **Methods**: per variant of the suite (its hyperparameters from the suite config), training
   time per epoch of 500 samples, inference time per sample, peak memory and parameter count on
   the synthetic cases of :mod:`benchmark.perf.cases`.
2. **Speedup over MD**: for each system (the suite's LJ argon, TIP3P water and one MD17-xTB
   molecule) the simulator's time for ``delta_frame`` frames' worth of MD steps, measured over a
   few hundred production steps of the dataset's own generator (``benchmark.data.throughput``,
   its settings from the suite; one thread) and extrapolated linearly, against each method's time
   to predict one window of 8 query times on that system (batch 1, untrained weights, the suite's
   hyperparameters), both in CPU seconds of the measuring process (the fair figure on a shared
   machine) and in wall seconds.  Untrained weights cost what trained ones do, except for
   adaptive ODE solvers, whose step count depends on the learned dynamics.
3. **Scaling**: inference time per sample and per atom of the neighbour-list methods on TIP3P
   water boxes of increasing size (built with OpenMM's Modeller as the water generator does; not
   simulated), the per-atom cost ratio largest/smallest box and whether it is within the target
   (1.2).

``--sections`` measures some of them, ``--merge`` makes one report of several (sections measured
side by side), ``--render-only`` re-renders the markdown from the JSON. The numbers are printed by
this command; no test asserts timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from benchmark.io import git_sha, hardware_string, read_json, write_json, write_text
from benchmark.perf.cases import EPOCH_SAMPLES, WINDOW_FRAMES, K
from benchmark.perf.render import render
from benchmark.perf.summary import merge, scaling_summary, speedup
from benchmark.perf.systems import md_cost, system, system_variants
from benchmark.perf.variants import load, suite_variants
from benchmark.perf.workers import egnn_comparison, measure_table, run_worker

DESCRIPTION = "The measured cost of every method: a markdown report and its JSON."
DEFAULT_SYSTEMS = "lj_argon,tip3p_water,md17xtb_aspirin"
SCALING_DATASET = "tip3p_water"
DEFAULT_SIZES = "258,1032,4128"
SCALING_METHODS = "egnn,egno,gfnode,ndcn,lgode,domino,ito_1step"


def provenance(argv: list[str], threads: int) -> dict:
    return {"command": shlex.join(["python", "-m", "benchmark.perf", *argv]), "git_sha": git_sha(),
            "hardware": hardware_string("cpu"), "torch": torch.__version__, "python": platform.python_version(),
            "threads": threads, "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_average_start": [round(x, 2) for x in os.getloadavg()]}


def measure_methods(args, suite, only, echo) -> dict:
    """The methods section: every (selected) variant on every synthetic case, and the EGNN layer comparison."""
    variants = [v for v in suite_variants(suite) if only is None or v in only]
    cases = [c for c in args.cases.split(",") if c]
    echo(f"# methods: {len(variants)} variants x {cases}")
    res = measure_table(suite.name, cases, variants, args.batches, args.threads, args.malloc, echo=echo)
    return {"methods": [res[k] for k in res], "egnn_layer": egnn_comparison(suite, cases, res)}


def measure_speedup(args, suite, only, echo) -> list[dict]:
    """The speedup section: per system, the MD cost of a window and each fitted method's prediction of it."""
    out = []
    for dataset in [d for d in args.systems.split(",") if d]:
        md = md_cost(suite, dataset, WINDOW_FRAMES, args.md_frames)
        echo(f"# MD {dataset}: {md}")
        sys_ = system(suite, dataset)
        entry = {"dataset": dataset, "kind": sys_["kind"], "label": sys_["label"], "n_atoms": sys_["n_atoms"],
                 "md": md, "methods": []}
        for variant in system_variants(suite, dataset):
            if only is not None and variant not in only:
                continue
            r = run_worker({"kind": "window", "suite": suite.name, "variant": variant, "dataset": dataset},
                           args.threads, args.malloc, timeout=args.timeout, mem_limit_gb=args.mem_limit_gb)
            r.setdefault("variant", variant)
            if "error" not in r and "error" not in md:
                r.update(speedup(md, r))
            echo(f"  {dataset} {variant}: {json.dumps(r)}")
            entry["methods"].append(r)
        out.append(entry)
    return out


def measure_scaling(args, suite, only, echo) -> dict:
    """The scaling section: each scaling method on water boxes of ``--sizes`` molecules."""
    sizes = [int(s) for s in args.sizes.split(",") if s]
    out = {"dataset": SCALING_DATASET, "n_molecules": sizes, "methods": []}
    for variant in [v for v in args.scaling_methods.split(",") if v]:
        if only is not None and variant not in only:
            continue
        rows = []
        for n in sizes:
            r = run_worker({"kind": "scale", "suite": suite.name, "variant": variant, "dataset": SCALING_DATASET,
                            "n_molecules": n}, args.threads, args.malloc, timeout=args.timeout,
                           mem_limit_gb=args.mem_limit_gb)
            r.setdefault("n_atoms", 3 * n)
            r.setdefault("n_molecules", n)
            echo(f"  scaling {variant} {n}: {json.dumps(r)}")
            rows.append(r)
        out["methods"].append({"variant": variant, "rows": rows, **scaling_summary(rows)})
    return out


def run(args, argv: list[str], echo=print) -> dict:
    """Measure the sections of ``--sections``: the report's JSON."""
    suite = load(args.suite)
    only = [v for v in args.methods.split(",") if v] or None
    sections = set(args.sections.split(","))
    data = {"provenance": provenance(argv, args.threads), "suite": suite.name,
            "epoch_samples": EPOCH_SAMPLES, "k": K, "window_frames": WINDOW_FRAMES}
    if "methods" in sections:
        data.update(measure_methods(args, suite, only, echo))
    if "speedup" in sections:
        data["speedup"] = measure_speedup(args, suite, only, echo)
    if "scaling" in sections:
        data["scaling"] = measure_scaling(args, suite, only, echo)
    data["provenance"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return data


def main(argv=None) -> int:
    """``python -m benchmark.perf --report PATH [options]``: measure (or re-render, or merge) the report."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m benchmark.perf --report PATH", description=DESCRIPTION)
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

