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
from pathlib import Path

from benchmark.config import check_workflow_config, load_suite
from benchmark.leaderboard import leaderboard_outputs

check_workflow_config(config)
SUITE = load_suite(
    str(config.get("suite", "default")),
    work_dir=config.get("work_dir"),
    results_dir=config.get("results_dir"),
    device=config.get("device"),
    methods=config.get("methods"),
    datasets=config.get("datasets"),
)
WORK, RESULTS = SUITE.work_dir, SUITE.results_dir
CLI = f"{sys.executable} -m benchmark.cli"
COMMON = f"--suite {SUITE.path} --work-dir {WORK} --results-dir {RESULTS} --device {SUITE.device}"

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
        [RESULTS / "tables" / f"{task}.md" for task in SUITE.tasks],
        leaderboard_outputs(SUITE),
        # The physical validation report of every dataset of the suite (rule data_report).
        [RESULTS / "data" / f"{d}.md" for d in SUITE.datasets
         if SUITE.only_datasets is None or d in SUITE.only_datasets],


rule data:
    output:
        WORK / "data" / "{dataset}" / "manifest.json",
    log:
        WORK / "logs" / SUITE.name / "data" / "{dataset}.log",
    threads: 1
    resources:
        mem_mb=mem_mb(4000),
        runtime=runtime_min(240),
    shell:
        "{CLI} data make {wildcards.dataset} {COMMON} 2> >(tee {log} >&2)"


rule data_report:
    input:
        WORK / "data" / "{dataset}" / "manifest.json",
    output:
        # Plots land beside it in RESULTS/data/{dataset}/ (temperature, RDF, Ramachandran, bonds).
        RESULTS / "data" / "{dataset}.md",
    threads: 1
    shell:
        "{CLI} data report {wildcards.dataset} {COMMON}"


rule split:
    input:
        WORK / "data" / "{dataset}" / "manifest.json",
    output:
        WORK / "splits" / SUITE.name / "{task}" / "{dataset}.json",
    shell:
        "{CLI} split --task {wildcards.task} --dataset {wildcards.dataset} {COMMON}"


rule train_cell:
    input:
        WORK / "data" / "{dataset}" / "manifest.json",
        WORK / "splits" / SUITE.name / "{task}" / "{dataset}.json",
    output:
        # The final model only: resumable checkpoints live in WORK/checkpoints, which is
        # not a declared output, so Snakemake does not delete them when a job fails.
        WORK / "models" / SUITE.name / "{task}" / "{dataset}" / "{variant}" / "seed{seed}.pt",
    log:
        WORK / "logs" / SUITE.name / "train" / "{task}" / "{dataset}" / "{variant}" / "seed{seed}.log",
    threads: 1
    resources:
        mem_mb=mem_mb(8000),
        runtime=runtime_min(360),
        gpu=GPU,
    shell:
        "{CLI} train --task {wildcards.task} --dataset {wildcards.dataset} --method {wildcards.variant}"
        " --seed {wildcards.seed} --threads {threads} {COMMON} > {log} 2>&1"


rule evaluate_cell:
    input:
        WORK / "models" / SUITE.name / "{task}" / "{dataset}" / "{variant}" / "seed{seed}.pt",
    output:
        RESULTS / "runs" / "{task}" / "{dataset}" / "{variant}" / "seed{seed}.json",
    log:
        WORK / "logs" / SUITE.name / "evaluate" / "{task}" / "{dataset}" / "{variant}" / "seed{seed}.log",
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
        SUITE.metrics_path,
    shell:
        "{CLI} aggregate {COMMON}"


rule tables:
    input:
        SUITE.metrics_path,
    output:
        [RESULTS / "tables" / f"{task}.md" for task in SUITE.tasks],
    shell:
        "{CLI} tables {COMMON}"


rule leaderboard:
    input:
        SUITE.metrics_path,
        "benchmark/published.yaml",
    output:
        leaderboard_outputs(SUITE),
    shell:
        "{CLI} leaderboard {COMMON}"
