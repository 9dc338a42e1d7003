"""Every measurement in a fresh process (clean peak memory and allocator): ``python -m
benchmark.perf --worker SPEC`` runs one and prints its JSON; the table of every variant on every
synthetic case, and the fast EGNN layer against its references."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

from benchmark.perf.cases import CASES
from benchmark.perf.measure import equal_outputs, train_worker
from benchmark.perf.variants import REFERENCE_VARIANTS, load
from benchmark.report.formatting import or_dash


def run_worker(spec: dict, threads: int, malloc: str, timeout: float | None = None,
               mem_limit_gb: float | None = None, device: str = "cpu") -> dict:
    """Run one measurement (``spec``: {"kind": ..., ...}) in a fresh process: its JSON result, or
    {"error": ...} (the last line of its stderr, or the timeout)."""
    cmd = [sys.executable, "-m", "benchmark.perf", "--worker", json.dumps(spec), "--threads", str(threads),
           "--malloc", malloc, "--device", device]
    if mem_limit_gb:
        cmd += ["--mem-limit-gb", str(mem_limit_gb)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {err[-300:]}"}
    return json.loads(lines[-1])


def dispatch_worker(spec: dict, device: str) -> dict:
    """The measurement ``spec`` names, in this process (the worker's side of :func:`run_worker`)."""
    from benchmark.perf.systems import scale_worker, window_worker

    suite = load(spec["suite"])
    if spec["kind"] == "train":
        return train_worker(suite, spec["variant"], spec["case"], spec["batches"], device)
    if spec["kind"] == "window":
        return window_worker(suite, spec["variant"], spec["dataset"])
    if spec["kind"] == "scale":
        return scale_worker(suite, spec["variant"], spec["dataset"], spec["n_molecules"])
    raise ValueError(f"unknown worker kind {spec['kind']!r}; kinds: train, window, scale")


def set_memory_limit(gb: float) -> None:
    """Cap this process's address space: an allocation beyond it fails instead of swamping the machine."""
    limit = int(gb * 2 ** 30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def measure_table(suite_name: str, cases, variants, batches: int, threads: int, malloc: str,
                  device: str = "cpu", echo=print) -> dict:
    """{(case, variant): result} of every variant on every case, each in a fresh process."""
    results = {}
    for case in cases:
        for variant in variants:
            if variant.endswith("per-target]") and CASES[case]["periodic"]:
                continue  # the per-target baseline is the molecule prototype's; skip the slow box case
            m = "default" if variant == "egnn[reference-glibc]" else malloc
            r = run_worker({"kind": "train", "suite": suite_name, "variant": variant, "case": case,
                            "batches": batches}, threads, m, device=device)
            r.setdefault("variant", variant)
            r.setdefault("case", case)
            results[(case, variant)] = r
            echo(table_line(r))
    return results


def egnn_comparison(suite, cases, results) -> list[str]:
    """The fast EGNN layer against its reference implementations (speedups, output equality)."""
    lines = []
    for case in cases:
        fast = results.get((case, "egnn"))
        if not fast or "error" in fast:
            continue
        for ref in REFERENCE_VARIANTS:
            r = results.get((case, ref))
            if r and "error" not in r:
                lines.append(f"speedup {case}: egnn (fast layer) vs {ref}: {r['epoch_s'] / fast['epoch_s']:.2f}x "
                             f"per epoch (wall), {r['epoch_cpu_s'] / fast['epoch_cpu_s']:.2f}x (CPU time)")
        if (case, "egnn[reference]") in results:
            lines.append(f"outputs {case}: max |fast - reference| = {equal_outputs(suite, case):.2e} A")
    return lines


TABLE_HEADER = (f"{'case':7} {'method':28} {'batch':>5} {'s/epoch':>9} {'cpu s/epoch':>11} {'ms/sample (infer)':>18} "
                f"{'peak MB':>8} {'params':>10} {'ODE nfe':>8}")


def table_line(r: dict) -> str:
    """One printed line of the table (:data:`TABLE_HEADER`)."""
    if "error" in r:
        return f"{r['case']:7} {r['variant']:28} FAILED: {r['error']}"
    return (f"{r['case']:7} {r['variant']:28} {r['batch']:5d} {or_dash(r['epoch_s'], '9.1f'):>9} "
            f"{or_dash(r['epoch_cpu_s'], '11.1f'):>11} {r['infer_ms_per_sample']:18.2f} {r['peak_mb']:8.0f} "
            f"{r['n_params']:>10} {or_dash(r['nfe'], '.0f'):>8}")
