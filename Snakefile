# mdhorizon workflow: data -> split -> train -> evaluate -> aggregate -> tables.
#
#   snakemake --cores 8 all                           # the default suite
#   snakemake --cores 2 all --config suite=smoke      # seconds, tiny data
#   snakemake -n --cores 8 all                        # dry run: list the matrix
#   snakemake --cores 2 results/runs/<task>/<dataset>/<method>/seed0.json --forcerun train_cell
#
# --config keys (validated, unknown keys fail): suite, work_dir, results_dir, methods, datasets, device.
# The suite YAML is validated against benchmark/schema/suite.schema.json before any job runs.

import sys
from dataclasses import replace
from pathlib import Path

from benchmark.config import Cell, check_workflow_config, load_suite
from benchmark.errors import UserError, one_line
from benchmark.report.leaderboard import leaderboard_outputs
from benchmark.report.spectrum import fig4_cell, fig4_inputs, fig4_outputs
from benchmark.runner import data_jobs, reused_model, reused_seed

try:  # a bad suite or --config key: one line naming the file or key, no traceback
    check_workflow_config(config)
    SUITE = load_suite(
        str(config.get("suite", "default")),
        work_dir=config.get("work_dir"),
        results_dir=config.get("results_dir"),
        device=config.get("device"),
        methods=config.get("methods"),
        datasets=config.get("datasets"),
    )
except UserError as exc:
    print(one_line(exc), file=sys.stderr)
    sys.exit(exc.exit_code)
# Every path comes from the suite's layout (benchmark/suite.py, Layout), with wildcards as arguments.
PATHS = SUITE.layout
CELL = ("{task}", "{dataset}", "{variant}", "{seed}")
CLI = f"{sys.executable} -m benchmark.cli"
COMMON = f"--suite {SUITE.path} --work-dir {PATHS.work_dir} --results-dir {PATHS.results_dir} --device {SUITE.device}"

# Per-rule resources grow with the retry attempt (--retries N); `gpu` lets a scheduler
# (--resources gpu=N locally, the SLURM executor on clusters) place training on GPUs.
GPU = 0 if SUITE.device == "cpu" else 1


def mem_mb(base):
    return lambda wildcards, attempt: base * attempt


def runtime_min(base):
    return lambda wildcards, attempt: base * attempt


wildcard_constraints:
    task="[a-z0-9_]+",
    dataset="[a-z0-9_]+",
    variant="[a-z0-9_]+",
    seed="[0-9]+",


rule all:
    input:
        SUITE.metrics_path,
        SUITE.runs_path,
        SUITE.skill_path,
        [PATHS.table(task) for task in SUITE.tasks],
        leaderboard_outputs(SUITE),
        fig4_outputs(SUITE),  # GF-NODE Fig. 4, when the suite trains the gfnode model it needs
        # The physical validation report of every dataset of the suite (rule data_report).
        [PATHS.data_report(d) for d in SUITE.selected_datasets()],


rule data:
    output:
        PATHS.manifest("{dataset}"),
    log:
        PATHS.data_log("{dataset}"),
    # one process per simulated trajectory, as many at once as --cores allows (same bytes as one)
    threads: lambda wildcards: data_jobs(SUITE, wildcards.dataset)
    resources:
        # ~0.5 GB per simulating process seen (TIP4P-Ew, 774 atoms); 2 GB for the parent and imports
        mem_mb=lambda wildcards, attempt, threads: (2000 + 1000 * threads) * attempt,
        runtime=runtime_min(240),
    shell:
        "{CLI} data make {wildcards.dataset} --jobs {threads} {COMMON} 2> >(tee {log} >&2)"


rule data_report:
    input:
        PATHS.manifest("{dataset}"),
    output:
        # Plots land beside it in <results>/data/{dataset}/ (temperature, RDF, Ramachandran, bonds).
        PATHS.data_report("{dataset}"),
    threads: 1
    shell:
        "{CLI} data report {wildcards.dataset} {COMMON}"


rule split:
    input:
        PATHS.manifest("{dataset}"),
    output:
        PATHS.split("{task}", "{dataset}"),
    shell:
        "{CLI} split --task {wildcards.task} --dataset {wildcards.dataset} {COMMON}"


def reused(kind):
    """A cell that copies another cell's model (a seed-independent method's other seeds; an entry
    with shares_training_with) or run file (the former) has that file as an input
    (benchmark.runner.reused_model / reused_seed)."""

    def inputs(wildcards):
        cell = Cell(wildcards.task, wildcards.dataset, wildcards.variant, int(wildcards.seed))
        if kind == "model":
            ref = reused_model(SUITE, cell)
            return [] if ref is None else [SUITE.model_path(ref)]
        seed = reused_seed(SUITE, cell)
        return [] if seed is None else [SUITE.run_path(replace(cell, seed=seed))]

    return inputs


rule train_cell:
    input:
        PATHS.manifest("{dataset}"),
        PATHS.split("{task}", "{dataset}"),
        reused("model"),
    output:
        # The final model only: resumable checkpoints live in <work>/checkpoints, which is
        # not a declared output, so Snakemake does not delete them when a job fails.
        PATHS.model(*CELL),
    params:
        # a changed config of this cell (dataset, task or method entry) reruns it (rerun trigger "params")
        config_hash=lambda wc: SUITE.config_hash(Cell(wc.task, wc.dataset, wc.variant, int(wc.seed))),
    log:
        PATHS.cell_log("train", *CELL),
    threads: 1
    resources:
        mem_mb=mem_mb(8000),
        runtime=runtime_min(360),
        gpu=GPU,
    shell:
        "{CLI} train --task {wildcards.task} --dataset {wildcards.dataset} --method {wildcards.variant}"
        " --seed {wildcards.seed} --threads {threads} {COMMON} > {log} 2>&1"


rule evaluate_cell:
    # evaluate a trained model before training the next one: an interrupted run leaves numbers
    priority: 10
    input:
        PATHS.model(*CELL),
        reused("run"),
    output:
        PATHS.run(*CELL),
    log:
        PATHS.cell_log("evaluate", *CELL),
    threads: 1
    resources:
        mem_mb=mem_mb(8000),
        runtime=runtime_min(120),
        gpu=GPU,
    shell:
        "{CLI} evaluate --task {wildcards.task} --dataset {wildcards.dataset} --method {wildcards.variant}"
        " --seed {wildcards.seed} --threads {threads} {COMMON} > {log} 2>&1"


rule aggregate:
    input:
        [SUITE.run_path(cell) for cell in SUITE.cells],
    output:
        SUITE.metrics_path,  # one row per metric value, keyed by run_id
        SUITE.runs_path,  # one row per run: its provenance (benchmark/aggregate.py)
        SUITE.skill_path,  # skill against the best trivial baseline, with intervals (benchmark/effects.py)
    shell:
        "{CLI} aggregate {COMMON}"


# `snakemake --report results/report.html` bundles the tables and figures below: one category
# per paper, captions from configs/report/<name>.rst (the per-task tables share task_table.rst).
REPORT_CATEGORY = {"gfnode": "GF-NODE (Sun et al.)", "domino": "DoMiNO (Sun et al.)", "cross": "Cross-paper",
                   "leakage": "Cross-paper", "claims": "Cross-paper", "LEADERBOARD": "Leaderboard",
                   "predictability": "Predictability horizon", "skill": "Predictability horizon"}


def reported(paths, caption=None):
    return [report(p, caption=caption or f"configs/report/{Path(p).stem}.rst",
                   category=REPORT_CATEGORY.get(Path(p).stem.split("_")[0], "Per-task tables"))
            if Path(p).parent.name != "curves"  # learning curves (benchmark/report/curves.py): one caption
            else report(p, caption="configs/report/learning_curves.rst", category="Learning curves") for p in paths]


rule tables:
    input:
        SUITE.metrics_path,
        SUITE.runs_path,
        SUITE.skill_path,
    output:
        reported([PATHS.table(task) for task in SUITE.tasks], caption="configs/report/task_table.rst"),
    shell:
        "{CLI} tables {COMMON}"


rule leaderboard:
    input:
        SUITE.metrics_path,
        SUITE.runs_path,
        SUITE.skill_path,
        "benchmark/published.yaml",
    output:
        reported(leaderboard_outputs(SUITE)),
    shell:
        "{CLI} leaderboard {COMMON}"


# GF-NODE Fig. 4 (benchmark/report/spectrum.py): the temporal spectrum of the graph Fourier modes of the
# trained gfnode model of the GF-NODE Table 1 task (benzene, lowest seed), when the suite has it.
FIG4 = fig4_cell(SUITE)
if FIG4 is not None:

    rule gfnode_fig4:
        input:
            # model, split and evaluated run (the stale check compares figure and run); none on a fresh
            # clone whose committed figure already goes with the committed run (spectrum.fig4_inputs)
            lambda wildcards: fig4_inputs(SUITE),
        output:
            reported([PATHS.plots_dir / "gfnode_fig4.png"]),
            PATHS.plots_dir / "gfnode_fig4.json",
        threads: 1
        shell:
            "{CLI} spectrum --threads {threads} {COMMON}"
