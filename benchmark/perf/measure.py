"""Timing one variant in this process: an epoch of training, inference per sample, peak memory,
parameters and network evaluations (run by :mod:`benchmark.perf.workers` in a fresh process)."""

from __future__ import annotations

import resource
import time

import torch

from benchmark.perf.cases import CASES, EPOCH_SAMPLES, WAVELET_ATOMS, subset_atoms, synthetic
from benchmark.perf.variants import build, observed_frames
from methods.nn.model import GraphModel


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
        self.model = method.model
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
            data = method.perf_batch(ctx, query, target)
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
