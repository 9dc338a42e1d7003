"""The method variants measured: the suite's method entries (each built as the suite runs it: for
its window task when it has one, else for its extrapolation task) and the reference
implementations of the fast EGNN layer, each built with an untrained model."""

from __future__ import annotations

import torch

from benchmark.config import load_suite
from benchmark.perf.cases import training_stub
from methods import REGISTRY, Method, TorchMethod, make_method

# the reference implementations of the fast EGNN layer: name -> (layer implementation, one pass per target time)
REFERENCE_VARIANTS = {
    "egnn[reference]": ("reference", False),
    "egnn[reference-per-target]": ("reference", True),
    "egnn[reference-glibc]": ("reference", False),  # and glibc's default allocator
}


def load(suite_name: str):
    return load_suite(suite_name)


def suite_variants(suite) -> dict[str, tuple[str, dict]]:
    """variant -> (registered method, params): the suite's method entries and the EGNN reference layers."""
    out = {}
    for variant in suite.methods:
        entry = suite.method_entry(variant)
        out[variant] = (entry.method, dict(entry.params))
    if "egnn" in out:
        out.update({ref: out["egnn"] for ref in REFERENCE_VARIANTS})
    return out


def variant_spec(suite, variant: str, dataset: str | None = None):
    """(protocol, task spec) the suite runs ``variant`` under (on ``dataset`` when the suite runs it
    there, else on any dataset): a window task when the variant is in any such window task, else its
    extrapolate task."""
    base = variant.split("[")[0]
    found = {}
    for task, entry in suite.tasks.items():
        if base in suite.task_methods(task) and (dataset is None or dataset in entry.datasets):
            found.setdefault(entry.protocol, entry.spec)
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
    return REGISTRY[name].fit is not Method.fit


def is_trained(name: str) -> bool:
    """Whether the method trains a network by optimiser steps (a :class:`TorchMethod`)."""
    return issubclass(REGISTRY[name], TorchMethod)


def build(suite, variant: str, context, device: str, dataset: str | None = None, batch: int = 1):
    """The variant with the suite's hyperparameters and an untrained model for ``context``'s system."""
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
