"""Speed and memory of the methods: ``python -m benchmark.perf`` (a table) and
``python -m benchmark.perf --report results/perf.md`` (the cost report).

Without ``--report`` it prints, per method variant of the suite (``--suite``, default ``default``:
the variants and hyperparameters are the suite's method entries) and synthetic case
(:mod:`~benchmark.perf.cases`), the training time per epoch (500 samples; measured over
``--batches`` timed batches after one warm-up batch, forward + backward + Adam step; wall clock
and CPU time of the process, which is the steadier figure on a shared machine), the inference
time per sample, the peak memory (CPU: peak resident set of the measuring process above its
baseline; CUDA: peak allocated), the parameter count and the number of ODE function evaluations
where there is an ODE. Every measurement runs in a fresh process (clean peak memory and
allocator); models are untrained (seeded random weights).

Variants ``egnn[reference]`` (the sparse scatter-based layer with the same weights, K target
times batched), ``egnn[reference-per-target]`` (the same, one pass per target time) and
``egnn[reference-glibc]`` (batched, with glibc's default allocator settings) are the baselines of
the fast EGNN layer; the table checks that fast and reference give the same outputs and prints
the speedups.

``--baseline [REV]`` prints instead the optimiser steps per CPU second of every trained method in
this tree and in revision REV, and the ratio (:mod:`~benchmark.perf.baseline`).

``--report PATH`` writes the cost report instead (:mod:`~benchmark.perf.report`): this table,
the speedup over MD and the scaling with box size.

Modules: :mod:`~benchmark.perf.cases` (synthetic inputs), :mod:`~benchmark.perf.variants` (the
suite's variants, built untrained), :mod:`~benchmark.perf.measure` (timing one variant),
:mod:`~benchmark.perf.workers` (fresh processes, the table), :mod:`~benchmark.perf.systems` (the
suite's datasets as systems, MD throughput), :mod:`~benchmark.perf.summary` (speedup, scaling,
merging reports), :mod:`~benchmark.perf.baseline` (before/after), :mod:`~benchmark.perf.report` (measuring the report),
:mod:`~benchmark.perf.render` (its markdown), :mod:`~benchmark.perf.__main__` (the command line).
"""
