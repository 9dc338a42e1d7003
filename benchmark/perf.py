"""Speed and memory of the methods: ``python -m benchmark.perf`` (table) and ``--report`` (results/perf.md).

Without ``--report`` it prints, per method variant of the suite (``--suite``,
default ``default``: the variants and hyperparameters are the suite's method
entries) and synthetic case, the training time per epoch (500 samples;
measured over ``--batches`` timed batches after one warm-up batch, forward +
backward + Adam step; wall clock and CPU time of the process, which is the
steadier figure on a shared machine), the inference time per sample, the peak
memory (CPU: peak resident set of the measuring process above its baseline;
CUDA: peak allocated), the parameter count and the number of ODE function
evaluations where there is an ODE.  Cases (8 target times within 3000 frames):

  mol21   a synthetic 21-atom molecule, fully connected (420 directed edges), batch 50
  box250  250 atoms in a periodic box at liquid-argon density, radius graph, batch 5

Each variant is built as the suite runs it: for its window task when it has
one, else for its extrapolation task (protocol B, 8000-frame horizon), and is
given a synthetic history of that task's observed frames.  Wavelet-ARIMA has nothing to train; its fit + forecast runs per sample and
per coordinate series, so it is timed on ``WAVELET_ATOMS`` atoms and scaled
linearly to the case's atom count.

Variants ``egnn[reference]`` (the sparse scatter-based layer with the same
weights, K target times batched), ``egnn[reference-per-target]`` (the same,
one pass per target time) and ``egnn[reference-glibc]`` (batched, with glibc's
default allocator settings) are the baselines of the fast EGNN layer; the
script checks that fast and reference give the same outputs and prints the
speedups.  Every measurement runs in a fresh process (clean peak memory and
allocator).  Models are untrained (seeded random weights).

``--report PATH`` writes the cost report instead (:mod:`benchmark.perf_report`):
this table, the speedup over MD and the scaling with box size.

Options: ``--suite``, ``--cases``, ``--methods``, ``--batches``, ``--threads``,
``--device``, ``--malloc default|tuned`` (see ``methods.layers.tune_malloc``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import torch

CASES = {
    "mol21": {"n_atoms": 21, "batch": 50, "periodic": False},
    "box250": {"n_atoms": 250, "batch": 5, "periodic": True},
}
EPOCH_SAMPLES = 500
K = 8
WINDOW_FRAMES = 3000  # the query times lie within 3000 frames (protocol A's delta_frame)
WAVELET_ATOMS = 2  # wavelet-ARIMA is timed on this many atoms (3 series each) and scaled to N
# the reference implementations of the fast EGNN layer: name -> (layer implementation, one pass per target time)
REFERENCE_VARIANTS = {
    "egnn[reference]": ("reference", False),
    "egnn[reference-per-target]": ("reference", True),
    "egnn[reference-glibc]": ("reference", False),  # and glibc's default allocator
}


# --------------------------------------------------------------------------- the suite's variants


def load(suite_name: str):
    from benchmark.config import load_suite

    return load_suite(suite_name)


def suite_variants(suite) -> dict[str, tuple[str, dict]]:
    """variant -> (registered method, params): the suite's method entries and the EGNN reference layers."""
    out = {}
    for variant in suite.methods:
        entry = suite.method_entry(variant)
        out[variant] = (entry["method"], dict(entry["params"]))
    if "egnn" in out:
        out.update({ref: out["egnn"] for ref in REFERENCE_VARIANTS})
    return out


def variant_spec(suite, variant: str, dataset: str | None = None):
    """(protocol, task spec) the suite runs ``variant`` under (on ``dataset`` when the suite runs it
    there, else on any dataset): a window task when the variant is in any such window task, else its
    extrapolate task."""
    from benchmark.tasks import make_spec

    base = variant.split("[")[0]
    found = {}
    for task, entry in suite.tasks.items():
        if base in suite.task_methods(task) and (dataset is None or dataset in entry["datasets"]):
            found.setdefault(entry["protocol"], make_spec(entry["protocol"], entry["params"]))
    if not found and dataset is not None:
        return variant_spec(suite, variant)
    if not found:
        raise KeyError(f"variant {variant!r} is in no task of suite {suite.name!r}")
    protocol = "window" if "window" in found else "extrapolate"
    return protocol, found[protocol]


def observed_frames(suite, variant: str, dataset: str | None = None) -> int:
    return int(variant_spec(suite, variant, dataset)[1].observed)


def is_fitted(name: str) -> bool:
    """Whether the method learns or fits anything (trainable, or fitted per sample like wavelet-ARIMA)."""
    from methods import REGISTRY, Method

    return REGISTRY[name].fit is not Method.fit


# --------------------------------------------------------------------------- inputs


def context_for(positions, velocities, atomic_numbers, masses, edges, box, dt_fs: float, observed: int,
                seed: int = 0):
    """A :class:`Context` of B samples: the frame t0 ``positions`` [B, N, 3] (A) plus, when ``observed``
    > 1, a synthetic history (a random walk of ~0.02 A per frame ending at t0)."""
    from benchmark.tasks import Context

    x0 = torch.as_tensor(positions, dtype=torch.float32)
    v0 = torch.as_tensor(velocities, dtype=torch.float32)
    b, n, _ = x0.shape
    if observed > 1:
        gen = torch.Generator().manual_seed(seed + 1)
        walk = torch.cumsum(0.02 * torch.randn(b, observed, n, 3, generator=gen), dim=1)
        x = x0[:, None] + walk - walk[:, -1:]
        v = v0[:, None] + 0.1 * v0.std() * torch.randn(b, observed, n, 3, generator=gen)
        v[:, -1] = v0
    else:
        x, v = x0[:, None], v0[:, None]
    times = torch.arange(-(observed - 1), 1, dtype=torch.float32) * dt_fs
    return Context(x, v, times, torch.as_tensor(atomic_numbers, dtype=torch.long),
                   torch.as_tensor(masses, dtype=torch.float32), edges,
                   None if box is None else torch.as_tensor(box, dtype=torch.float32), float(dt_fs))


def subset_atoms(context, m: int, samples: int | None = None):
    """The context restricted to its first ``m`` atoms (edges among them kept) and ``samples`` samples."""
    edges = context.edges
    if edges is not None:
        edges = edges[:, (edges[0] < m) & (edges[1] < m)]
    b = slice(None) if samples is None else slice(0, samples)
    return replace(context, observed_positions=context.observed_positions[b, :, :m],
                   observed_velocities=context.observed_velocities[b, :, :m],
                   atomic_numbers=context.atomic_numbers[:m], masses=context.masses[:m], edges=edges)


def synthetic(case: str, observed: int = 1, seed: int = 0):
    """(context, query_times, targets) of one batch of the case; deterministic."""
    c = CASES[case]
    n, b = c["n_atoms"], c["batch"]
    gen = torch.Generator().manual_seed(seed)
    if c["periodic"]:
        edge = (n / 0.0127) ** (1 / 3)  # number density of LJ argon at reduced density 0.5 (sigma 3.4 A)
        box = torch.full((3,), edge)
        x = torch.rand(b, n, 3, generator=gen) * box
        v = 0.005 * torch.randn(b, n, 3, generator=gen)
        z, edges, dt = torch.full((n,), 18), None, 100.0
    else:
        box = None
        x = 1.5 * torch.randn(b, n, 3, generator=gen)
        v = 0.01 * torch.randn(b, n, 3, generator=gen)
        z = torch.tensor([6, 1, 8, 7] * 6)[:n]
        edges = torch.stack(torch.nonzero(~torch.eye(n, dtype=torch.bool), as_tuple=True))
        dt = 0.5
    ctx = context_for(x, v, z, torch.ones(n), edges, box, dt, observed, seed)
    offsets = torch.sort(torch.randperm(WINDOW_FRAMES, generator=gen)[:K] + 1).values.float()
    query = offsets.expand(b, K) * dt
    target = x[:, None] + 0.1 * torch.randn(b, K, n, 3, generator=gen)
    return ctx, query, target


def training_stub(spec, protocol: str, context) -> SimpleNamespace:
    """What ``Method.setup(train)`` reads from a training :class:`SampleSet`, for a synthetic system."""
    if protocol == "window":
        offsets = np.array([[spec.delta_frame * i // spec.num_queries for i in range(1, spec.num_queries + 1)]])
    else:
        offsets = np.arange(1, spec.horizon + 1)[None]
    return SimpleNamespace(spec=spec, n_atoms=context.positions.shape[1], atomic_numbers=context.atomic_numbers,
                           offsets=offsets, dt_fs=context.dt_fs, observed_positions=context.observed_positions)


# --------------------------------------------------------------------------- building a method


def build(suite, variant: str, context, device: str, dataset: str | None = None, batch: int = 1):
    """The variant with the suite's hyperparameters and an untrained model for ``context``'s system."""
    from methods import TorchMethod, make_method

    name, params = suite_variants(suite)[variant]
    method = make_method(name, params)
    if "tune_malloc" in method.params:
        method.params["tune_malloc"] = False  # the worker decides (``--malloc``)
    if not isinstance(method, TorchMethod):
        return method
    protocol, spec = variant_spec(suite, variant, dataset)
    if hasattr(method, "perf_setup"):
        setup = method.perf_setup(context.positions.shape[1], spec.delta_frame * context.dt_fs)
    else:
        setup = method.setup(training_stub(spec, protocol, context))
    torch.manual_seed(0)
    model = method.build(**setup).to(device)
    method.setup_args, method.model = setup, model
    if variant in REFERENCE_VARIANTS:
        impl, per_target = REFERENCE_VARIANTS[variant]
        for sub in model.modules():
            if hasattr(sub, "impl"):
                sub.impl = impl
        if per_target:
            model.max_graphs = batch  # chunks of one target time: one pass per target time
    return method


# --------------------------------------------------------------------------- measurements


def peak_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def n_params(method) -> int:
    return method.n_params()


class EvaluationCounter:
    """Network evaluations during one ``predict``: passes of the model (graph methods: one per chunk of
    query times), ODE function evaluations, denoiser passes (ITO)."""

    def __init__(self, method):
        self.model = getattr(method, "model", None)
        self.counts = {"passes": 0, "ode_evaluations": 0, "denoiser_evaluations": 0}
        self.undo = []

    def _ode_total(self) -> int:
        solver = getattr(self.model, "solver", None)
        total = solver.total_nfe if hasattr(solver, "total_nfe") else 0
        return total + sum(int(getattr(m, "nfe", 0)) for m in self.model.modules())

    def _bump(self, key):
        def hook(*_):
            self.counts[key] += 1
        return hook

    def __enter__(self):
        if self.model is None:
            return self
        from methods.layers import GraphModel

        if isinstance(self.model, GraphModel):
            original = self.model.forward_chunk

            def counted(*a, **kw):
                self.counts["passes"] += 1
                return original(*a, **kw)

            self.model.forward_chunk = counted
            self.undo.append(lambda: delattr(self.model, "forward_chunk"))
        else:
            self.undo.append(self.model.register_forward_hook(self._bump("passes")).remove)
        if hasattr(self.model, "ema"):  # ITO samples with its EMA denoiser
            self.undo.append(self.model.ema.register_forward_hook(self._bump("denoiser_evaluations")).remove)
        self.ode_start = self._ode_total()
        return self

    def __exit__(self, *exc):
        if self.model is not None:
            self.counts["ode_evaluations"] = self._ode_total() - self.ode_start
            for undo in self.undo:
                undo()
        return False


def timed_predict(method, ctx, query, repeat_below_cpu_s: float = 20.0) -> dict:
    """Wall and CPU seconds of ``method.predict``: a warm-up call, then a timed one (the warm-up's
    figures when it took ``repeat_below_cpu_s`` CPU seconds or more), and the network evaluations of a call."""
    def once():
        start, cpu = time.perf_counter(), time.process_time()
        with EvaluationCounter(method) as counter, torch.no_grad():
            out = method.predict(ctx, query)
        return time.perf_counter() - start, time.process_time() - cpu, counter.counts, out

    wall, cpu, counts, out = once()
    first = cpu >= repeat_below_cpu_s
    if not first:
        wall, cpu, counts, out = once()
    # untrained weights can give non-finite outputs (e.g. ITO's denoiser at close contacts): the cost
    # is still the cost of the computation, so it is recorded, with the fact
    return {"wall_s": wall, "cpu_s": cpu, "timed_call": "first" if first else "second",
            "finite": bool(torch.isfinite(out).all()), **counts}


def train_worker(suite, variant: str, case: str, batches: int, device: str) -> dict:
    """Epoch time, inference time per sample, peak memory and parameter count of one variant on a case."""
    from methods import TorchMethod

    observed = observed_frames(suite, variant)
    batch, atoms = CASES[case]["batch"], CASES[case]["n_atoms"]
    ctx, query, target = synthetic(case, observed)
    method = build(suite, variant, ctx, device, batch=batch)
    ctx, query, target = ctx.to(device), query.to(device), target.to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    base = peak_mb(device) if not device.startswith("cuda") else 0.0
    result = {"variant": variant, "case": case, "batch": batch, "n_atoms": atoms, "observed_frames": observed,
              "n_params": n_params(method), "epoch_s": None, "epoch_cpu_s": None, "nfe": None, "note": ""}
    if isinstance(method, TorchMethod):
        model = method.model
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step():
            optimiser.zero_grad(set_to_none=True)
            data = method.perf_batch(ctx, query, target) if hasattr(method, "perf_batch") else (ctx, query, target)
            loss = method.training_loss(data, device)[0]
            loss.backward()
            optimiser.step()

        model.train()
        step()  # warm-up
        sync()
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(batches):
            step()
        sync()
        result["epoch_s"] = (time.perf_counter() - start) / batches * EPOCH_SAMPLES / batch
        result["epoch_cpu_s"] = (time.process_time() - cpu) / batches * EPOCH_SAMPLES / batch
        solver = getattr(model, "solver", None)
        result["nfe"] = solver.stats()["mean_nfe"] if hasattr(solver, "stats") else None
    if observed > 1 and not isinstance(method, TorchMethod):  # per-series fits: time a few atoms, scale to N
        sub = min(WAVELET_ATOMS, atoms)
        t = timed_predict(method, subset_atoms(ctx, sub, samples=1), query[:1])
        scale = atoms / sub
        result["note"] = f"fit + forecast timed on {sub} atoms ({3 * sub} series), scaled to {atoms}"
    else:
        t = timed_predict(method, ctx, query)
        scale = 1.0 / batch
    if not t["finite"]:
        result["note"] = "non-finite predictions (untrained weights); timed all the same"
    result["infer_ms_per_sample"] = 1000 * t["wall_s"] * scale
    result["infer_cpu_ms_per_sample"] = 1000 * t["cpu_s"] * scale
    sync()
    result["peak_mb"] = peak_mb(device) - base
    return result


def equal_outputs(suite, case: str) -> float:
    """Max |fast - reference| of the EGNN model's predictions (same weights, same batch)."""
    ctx, query, _ = synthetic(case)
    fast = build(suite, "egnn", ctx, "cpu").model
    ref = build(suite, "egnn[reference]", ctx, "cpu").model
    ref.load_state_dict(fast.state_dict())
    with torch.no_grad():
        return float((fast(ctx, query) - ref(ctx, query)).abs().max())


# --------------------------------------------------------------------------- fresh processes


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
    suite = load(spec["suite"])
    if spec["kind"] == "train":
        return train_worker(suite, spec["variant"], spec["case"], spec["batches"], device)
    from benchmark import perf_report

    if spec["kind"] == "window":
        return perf_report.window_worker(suite, spec["variant"], spec["dataset"])
    if spec["kind"] == "scale":
        return perf_report.scale_worker(suite, spec["variant"], spec["dataset"], spec["n_molecules"])
    raise ValueError(f"unknown worker kind {spec['kind']!r}")


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


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table_line(r: dict) -> str:
    if "error" in r:
        return f"{r['case']:7} {r['variant']:28} FAILED: {r['error']}"
    return (f"{r['case']:7} {r['variant']:28} {r['batch']:5d} {fmt(r['epoch_s'], '9.1f'):>9} "
            f"{fmt(r['epoch_cpu_s'], '11.1f'):>11} {r['infer_ms_per_sample']:18.2f} {r['peak_mb']:8.0f} "
            f"{r['n_params']:>10} {fmt(r['nfe'], '.0f'):>8}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark.perf", description=__doc__.split("\n")[0])
    ap.add_argument("--suite", default="default", help="the suite whose method entries are measured")
    ap.add_argument("--cases", default="mol21,box250")
    ap.add_argument("--methods", default="", help="comma-separated variants (default: all of the suite)")
    ap.add_argument("--batches", type=int, default=2, help="timed training batches per measurement")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--malloc", choices=["default", "tuned"], default="tuned")
    ap.add_argument("--report", help="write the cost report (markdown) here and a .json next to it; see "
                                     "`python -m benchmark.perf_report --help` for its options")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--mem-limit-gb", type=float, help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args(argv)
    if args.report:
        from benchmark import perf_report

        return perf_report.main(sys.argv[1:] if argv is None else argv)
    if rest:
        ap.error(f"unrecognised arguments: {' '.join(rest)}")
    torch.set_num_threads(args.threads)
    if args.worker:
        if args.mem_limit_gb:
            set_memory_limit(args.mem_limit_gb)
        if args.malloc == "tuned":
            from methods.layers import tune_malloc

            tune_malloc()
        print(json.dumps(dispatch_worker(json.loads(args.worker), args.device)))
        return 0
    suite = load(args.suite)
    cases = [c for c in args.cases.split(",") if c]
    known = suite_variants(suite)
    variants = [v for v in args.methods.split(",") if v] or list(known)
    for bad in [c for c in cases if c not in CASES] + [v for v in variants if v not in known]:
        ap.error(f"unknown case or method variant {bad!r}; cases: {list(CASES)}; variants: {list(known)}")
    print(f"# torch {torch.__version__}, {args.threads} thread(s), device {args.device}, malloc {args.malloc}; "
          f"epoch = {EPOCH_SAMPLES} samples, K = {K}; suite {suite.name}; {args.batches} timed batches")
    print(f"{'case':7} {'method':28} {'batch':>5} {'s/epoch':>9} {'cpu s/epoch':>11} {'ms/sample (infer)':>18} "
          f"{'peak MB':>8} {'params':>10} {'ODE nfe':>8}")
    results = measure_table(suite.name, cases, variants, args.batches, args.threads, args.malloc, args.device)
    for line in egnn_comparison(suite, cases, results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
