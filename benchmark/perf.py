"""Speed and memory of the graph methods on fixed synthetic systems: ``python -m benchmark.perf``.

Prints, per method variant and case, the training time per epoch (500
samples; measured over ``--batches`` timed batches after one warm-up batch,
forward + backward + Adam step; wall clock and CPU time of the process, which
is the steadier figure on a shared machine), the inference time per sample and the peak
memory (CPU: peak resident set of the measuring process above its baseline;
CUDA: peak allocated), and the number of ODE function evaluations where
there is an ODE.  Cases (hidden 64, 5 layers, 8 target times):

  mol21   a synthetic 21-atom molecule, fully connected (420 directed edges), batch 50
  box250  250 atoms in a periodic box at liquid-argon density, radius graph
          (cutoff 7.5 A, ~22 neighbours), batch 5

Variants ``egnn[reference]`` (the sparse scatter-based layer with the same
weights, K target times batched), ``egnn[reference-per-target]`` (the same,
one pass per target time) and ``egnn[reference-glibc]`` (batched, with glibc's
default allocator settings: the straightforward implementation as it runs
without any tuning) are the baselines of the fast layer; the script checks
that fast and reference give the same outputs and prints the speedups.
Every measurement runs in a fresh process (clean peak memory and allocator).

Options: ``--cases``, ``--methods``, ``--batches``, ``--threads``,
``--device``, ``--malloc default|tuned`` (see ``methods.layers.tune_malloc``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

CASES = {
    "mol21": {"n_atoms": 21, "batch": 50, "periodic": False},
    "box250": {"n_atoms": 250, "batch": 5, "periodic": True},
}
EPOCH_SAMPLES = 500
K = 8
VARIANTS = {  # name -> (registered method, params, layer implementation, one pass per target time)
    "egnn": ("egnn", {}, "fast", False),
    "egnn[reference]": ("egnn", {}, "reference", False),
    "egnn[reference-per-target]": ("egnn", {}, "reference", True),
    "egnn[reference-glibc]": ("egnn", {}, "reference", False),  # and glibc's default allocator
    "egno": ("egno", {}, "fast", False),
    "gfnode": ("gfnode", {}, "fast", False),
    "gfnode_no_fourier": ("gfnode", {"no_fourier": True}, "fast", False),
    "gfnode_no_ode": ("gfnode", {"no_ode": True}, "fast", False),
    "ndcn": ("ndcn", {}, "fast", False),
    # latent-ODE / generative methods (their own training batches: ``perf_setup`` / ``perf_batch``)
    "lgode": ("lgode", {}, "fast", False),
    # DoMiNO at the paper's sizes (hidden 128, one rk4 step per stride) runs out of 23 GB at batch 50:
    # measured at the default suite's CPU sizes
    "domino[cpu]": ("domino", {"hidden": 32, "ode_hidden": 32, "augment": 16, "segment_steps": 5}, "fast", False),
    "domino_l0[cpu]": ("domino", {"levels": 1, "hidden": 32, "ode_hidden": 32, "augment": 16, "segment_steps": 5},
                       "fast", False),
    "ito_1step": ("ito", {"mode": "1step"}, "fast", False),
    "ito_rollout": ("ito", {"mode": "rollout"}, "fast", False),
}


def synthetic(case: str, seed: int = 0):
    """(context, query_times, targets) of one batch of the case; deterministic."""
    from benchmark.tasks import Context

    c = CASES[case]
    n, b = c["n_atoms"], c["batch"]
    gen = torch.Generator().manual_seed(seed)
    if c["periodic"]:
        edge = (n / 0.0127) ** (1 / 3)  # number density of LJ argon at reduced density 0.5 (sigma 3.4 A)
        box = torch.full((3,), edge)
        x = torch.rand(b, 1, n, 3, generator=gen) * box
        v = 0.005 * torch.randn(b, 1, n, 3, generator=gen)
        z, edges, dt = torch.full((n,), 18), None, 100.0
    else:
        box = None
        x = 1.5 * torch.randn(b, 1, n, 3, generator=gen)
        v = 0.01 * torch.randn(b, 1, n, 3, generator=gen)
        z = torch.tensor([6, 1, 8, 7] * 6)[:n]
        edges = torch.stack(torch.nonzero(~torch.eye(n, dtype=torch.bool), as_tuple=True))
        dt = 0.5
    ctx = Context(x, v, torch.zeros(1), z, torch.ones(n), edges, box, dt)
    offsets = torch.sort(torch.randperm(3000, generator=gen)[:K] + 1).values.float()
    query = offsets.expand(b, K) * dt
    target = x + 0.1 * torch.randn(b, K, n, 3, generator=gen)
    return ctx, query, target


def build(variant: str, case: str, device: str):
    from methods import make_method

    name, params, impl, per_target = VARIANTS[variant]
    from methods import REGISTRY

    c = CASES[case]
    if hasattr(REGISTRY[name], "perf_setup"):
        method = make_method(name, params)
        setup = method.perf_setup(c["n_atoms"], 3000 * (100.0 if c["periodic"] else 0.5))
    else:
        method = make_method(name, {**params, "tune_malloc": False})
        setup = {"n_atoms": c["n_atoms"], "z_max": 18 if c["periodic"] else 8, "horizon": 3000, "train_queries": K}
    torch.manual_seed(0)
    model = method.build(**setup).to(device)
    method.setup_args, method.model = setup, model
    for sub in model.modules():
        if hasattr(sub, "impl"):
            sub.impl = impl
    if per_target:
        model.max_graphs = c["batch"]  # chunks of one target time: one pass per target time
    return method, model


def peak_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def worker(variant: str, case: str, batches: int, device: str) -> dict:
    method, model = build(variant, case, device)
    ctx, query, target = synthetic(case)
    ctx, query, target = ctx.to(device), query.to(device), target.to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def step():
        optimiser.zero_grad(set_to_none=True)
        if hasattr(method, "perf_batch"):
            loss = method.training_loss(method.perf_batch(ctx, query, target), device)[0]
        else:
            loss = method.loss(model(ctx, query), target)
        loss.backward()
        optimiser.step()

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    base = peak_mb(device) if not device.startswith("cuda") else 0.0
    model.train()
    step()  # warm-up
    sync()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        step()
    sync()
    per_batch = (time.perf_counter() - start) / batches
    cpu_per_batch = (time.process_time() - cpu) / batches
    model.eval()
    with torch.no_grad():
        model(ctx, query)
        sync()
        start = time.perf_counter()
        model(ctx, query)
        sync()
        infer = time.perf_counter() - start
    solver = getattr(model, "solver", None)
    return {"variant": variant, "case": case, "batch": CASES[case]["batch"],
            "epoch_s": per_batch * EPOCH_SAMPLES / CASES[case]["batch"],
            "epoch_cpu_s": cpu_per_batch * EPOCH_SAMPLES / CASES[case]["batch"],
            "infer_ms_per_sample": 1000 * infer / CASES[case]["batch"],
            "peak_mb": peak_mb(device) - base, "nfe": None if solver is None else solver.stats()["mean_nfe"]}


def equal_outputs(case: str) -> float:
    """Max |fast - reference| of the EGNN model's predictions (same weights, same batch)."""
    _, fast = build("egnn", case, "cpu")
    _, ref = build("egnn[reference]", case, "cpu")
    ref.load_state_dict(fast.state_dict())
    ctx, query, _ = synthetic(case)
    with torch.no_grad():
        return float((fast(ctx, query) - ref(ctx, query)).abs().max())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark.perf", description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="mol21,box250")
    ap.add_argument("--methods", default=",".join(VARIANTS))
    ap.add_argument("--batches", type=int, default=2, help="timed training batches per measurement")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--malloc", choices=["default", "tuned"], default="tuned")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.worker:
        if args.malloc == "tuned" and not args.worker.startswith("egnn[reference-glibc]"):
            from methods.layers import tune_malloc

            tune_malloc()
        variant, case = args.worker.split("@")
        print(json.dumps(worker(variant, case, args.batches, args.device)))
        return 0
    cases = [c for c in args.cases.split(",") if c]
    variants = [v for v in args.methods.split(",") if v]
    for bad in [c for c in cases if c not in CASES] + [v for v in variants if v not in VARIANTS]:
        ap.error(f"unknown case or method variant {bad!r}; cases: {list(CASES)}; variants: {list(VARIANTS)}")
    print(f"# torch {torch.__version__}, {args.threads} thread(s), device {args.device}, malloc {args.malloc}; "
          f"epoch = {EPOCH_SAMPLES} samples, K = {K}, hidden 64, 5 layers; {args.batches} timed batches")
    print(f"{'case':7} {'method':28} {'batch':>5} {'s/epoch':>9} {'cpu s/epoch':>11} {'ms/sample (infer)':>18} "
          f"{'peak MB':>8} {'ODE nfe':>8}")
    results = {}
    for case in cases:
        for variant in variants:
            if variant.endswith("per-target]") and CASES[case]["periodic"]:
                continue  # the per-target baseline is the molecule prototype's; skip the slow box case
            cmd = [sys.executable, "-m", "benchmark.perf", "--worker", f"{variant}@{case}", "--batches",
                   str(args.batches), "--threads", str(args.threads), "--device", args.device,
                   "--malloc", args.malloc]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{case:7} {variant:28} FAILED: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            results[(case, variant)] = r
            nfe = "-" if r["nfe"] is None else f"{r['nfe']:.0f}"
            print(f"{case:7} {variant:28} {r['batch']:5d} {r['epoch_s']:9.1f} {r['epoch_cpu_s']:11.1f} "
                  f"{r['infer_ms_per_sample']:18.2f} "
                  f"{r['peak_mb']:8.0f} {nfe:>8}", flush=True)
    for case in cases:
        fast = results.get((case, "egnn"))
        for ref in ("egnn[reference]", "egnn[reference-per-target]", "egnn[reference-glibc]"):
            if fast and (case, ref) in results:
                r = results[(case, ref)]
                print(f"speedup {case}: egnn (fast layer) vs {ref}: {r['epoch_s'] / fast['epoch_s']:.2f}x per "
                      f"epoch (wall), {r['epoch_cpu_s'] / fast['epoch_cpu_s']:.2f}x (CPU time)")
        if fast and (case, "egnn[reference]") in results:
            print(f"outputs {case}: max |fast - reference| = {equal_outputs(case):.2e} A")
    return 0


if __name__ == "__main__":
    sys.exit(main())
