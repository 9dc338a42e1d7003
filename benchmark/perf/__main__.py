"""``python -m benchmark.perf``: the table of every method's cost on the synthetic cases, or with
``--report PATH`` the cost report (:mod:`benchmark.perf.report`; its options there). Options:
``--suite``, ``--cases``, ``--methods``, ``--batches``, ``--threads``, ``--device``,
``--malloc default|tuned`` (see ``benchmark.devices.tune_malloc``); ``--baseline [REV]`` instead prints the
optimiser steps per CPU second of every trained method before (revision REV, default
:data:`~benchmark.perf.baseline.BASELINE_REV`) and after (this tree), and the ratio
(:mod:`benchmark.perf.baseline`; ``--repeat`` runs per side, the best counts)."""

from __future__ import annotations

import argparse
import json
import sys

import torch

from benchmark.devices import tune_malloc
from benchmark.perf import baseline, report
from benchmark.perf.cases import CASES, EPOCH_SAMPLES, K
from benchmark.perf.variants import REFERENCE_VARIANTS, is_trained, load, suite_variants
from benchmark.perf.workers import TABLE_HEADER, dispatch_worker, egnn_comparison, measure_table, set_memory_limit


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a == "--report" or a.startswith("--report=") for a in argv):  # the report has its own options
        return report.main(argv)
    ap = argparse.ArgumentParser(prog="python -m benchmark.perf",
                                 description="Speed and memory of the methods (see benchmark/perf/__init__.py).")
    ap.add_argument("--suite", default="default", help="the suite whose method entries are measured")
    ap.add_argument("--cases", default="mol21,box250")
    ap.add_argument("--methods", default="", help="comma-separated variants (default: all of the suite)")
    ap.add_argument("--batches", type=int, default=2, help="timed training batches per measurement")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--malloc", choices=["default", "tuned"], default="tuned")
    ap.add_argument("--report", help="write the cost report (markdown) here and a .json next to it; see "
                                     "`python -m benchmark.perf --report PATH --help` for its options")
    ap.add_argument("--baseline", nargs="?", const=baseline.BASELINE_REV, metavar="REV",
                    help="compare the training steps per CPU second of every trained method with revision REV "
                         f"(default {baseline.BASELINE_REV}, the commit before the speed work)")
    ap.add_argument("--repeat", type=int, default=3, help="with --baseline: runs per side (the best counts)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--mem-limit-gb", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.worker:
        if args.mem_limit_gb:
            set_memory_limit(args.mem_limit_gb)
        if args.malloc == "tuned":
            tune_malloc()
        print(json.dumps(dispatch_worker(json.loads(args.worker), args.device)))
        return 0
    suite = load(args.suite)
    cases = [c for c in args.cases.split(",") if c]
    known = suite_variants(suite)
    variants = [v for v in args.methods.split(",") if v] or list(known)
    for bad in [c for c in cases if c not in CASES] + [v for v in variants if v not in known]:
        ap.error(f"unknown case or method variant {bad!r}; cases: {list(CASES)}; variants: {list(known)}")
    if args.baseline:
        trained = [v for v in variants if v not in REFERENCE_VARIANTS and is_trained(known[v][0])]
        try:
            baseline.compare(args.baseline, suite.name, cases, trained, args.batches, args.threads, args.malloc,
                             args.repeat)
        except ValueError as err:
            ap.error(str(err))
        return 0
    print(f"# torch {torch.__version__}, {args.threads} thread(s), device {args.device}, malloc {args.malloc}; "
          f"epoch = {EPOCH_SAMPLES} samples, K = {K}; suite {suite.name}; {args.batches} timed batches")
    print(TABLE_HEADER)
    results = measure_table(suite.name, cases, variants, args.batches, args.threads, args.malloc, args.device)
    for line in egnn_comparison(suite, cases, results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
