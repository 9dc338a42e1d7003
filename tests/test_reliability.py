"""Faults never corrupt the leaderboard: SIGKILL mid-training, divergence, parallel
writes, missing runs, clean-up. Fault injection on tiny data through the real CLI
and Snakemake workflow."""

import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from benchmark import runner
from benchmark.aggregate import board_builds, collect, read_metrics
from benchmark.clean import clean
from benchmark.config import SUITES_DIR, Cell, load_suite
from benchmark.data.format import DataError, open_dataset, write_manifest
from benchmark.data.registry import get_kind, import_build
from benchmark.io import cpu_vendor, git_sha, read_json, write_json
from benchmark.report.task_tables import summarise
from benchmark.runner import (
    evaluate_cell,
    make_data,
    make_split,
    reused_model,
    reused_seed,
    run_checkpoint_dir,
    train_cell,
)

ROOT = Path(__file__).resolve().parent.parent

FAULTS_SUITE = {
    "name": "faults",
    "seeds": [0],
    "device": "cpu",
    "datasets": {"lj_tiny": {"kind": "lj_argon", "seed": 0, "params": {
        "n_particles": 64, "cutoff_sigma": 2.5, "n_frames": 80, "n_trajectories": 3, "steps_per_frame": 10}}},
    "tasks": {"lj_window": {"protocol": "window", "datasets": ["lj_tiny"], "split": {"strategy": "by_trajectory"},
                            "params": {"delta_frame": 20, "num_queries": 4, "n_train": 40, "n_val": 10, "n_test": 10}}},
    "methods": {
        "static": None,
        "damped_velocity": {"params": {"epochs": 150, "batch_size": 2, "eval_every": 1}},
        "damped_diverge": {"method": "damped_velocity", "params": {"lr": 1e30, "epochs": 5}},
    },
}


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], capture_output=True, text=True, **kw)


def _snakemake(suite_yaml, work, results, *targets, extra=()):
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *extra, *targets, "--config",
                           f"suite={suite_yaml}", f"work_dir={work}", f"results_dir={results}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_sigkill_resume_identical_and_divergence_isolated(tmp_path):
    suite_yaml = tmp_path / "faults.yaml"
    suite_yaml.write_text(yaml.safe_dump(FAULTS_SUITE))
    work, results = tmp_path / "work", tmp_path / "results"
    suite = load_suite(str(suite_yaml), work_dir=str(work), results_dir=str(results))
    cell = Cell("lj_window", "lj_tiny", "damped_velocity", 0)
    common = ["--suite", str(suite_yaml), "--work-dir", str(work), "--results-dir", str(results)]
    cell_args = ["--task", "lj_window", "--dataset", "lj_tiny", "--method", "damped_velocity", "--seed", "0"]

    # 1. reference: uninterrupted run of the cell (data and split through the workflow)
    out = _snakemake(suite_yaml, work, results, str(suite.run_path(cell)))
    assert out.returncode == 0, out.stderr[-3000:]
    reference = read_json(suite.run_path(cell))
    assert reference["status"] == "ok" and reference["fit_info"]["resumed_from_epoch"] == 0
    for path in (suite.run_path(cell), suite.model_path(cell)):
        path.unlink()
    clean(work, results, ["checkpoints"])

    # 2. kill the training process with SIGKILL at a random epoch
    kill_at = random.Random().randint(3, 40)
    proc = subprocess.Popen([sys.executable, "-m", "benchmark.cli", "train", *cell_args, *common, "--threads", "1"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = run_checkpoint_dir(suite, cell, open_dataset(suite.dataset_dir(cell.dataset)).checksum) / "last.pt"
    killed_epoch = None
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if ckpt.exists():
            try:
                epoch = torch.load(ckpt, weights_only=False)["state"]["epoch"]
            except Exception:  # being replaced right now: try again
                continue
            if epoch >= kill_at:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                killed_epoch = epoch
                break
        time.sleep(0.02)
    assert killed_epoch is not None, f"training ended before the kill at epoch {kill_at}: {proc.stderr.read()[-2000:]}"
    assert not suite.model_path(cell).exists()  # no partial output

    # 3. rerun the whole workflow with -k: resumes, diverging entry isolated
    out = _snakemake(suite_yaml, work, results, "all", extra=["-k"])
    assert out.returncode == 0, out.stderr[-3000:]
    resumed = read_json(suite.run_path(cell))
    assert resumed["fit_info"]["resumed_from_epoch"] >= killed_epoch
    assert resumed["train_seconds"] >= resumed["fit_info"]["train_seconds_before_resume"] > 0
    assert resumed["rows"] == reference["rows"]  # bit-identical metrics
    assert resumed["fit_info"]["best_epoch"] == reference["fit_info"]["best_epoch"]

    diverged = read_json(suite.run_path(Cell("lj_window", "lj_tiny", "damped_diverge", 0)))
    assert diverged["status"] == "diverged" and "diverged at epoch" in diverged["note"]
    table = (results / "tables" / "lj_window.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| damped_diverge |"))
    assert "diverged" in row
    static = next(line for line in table.splitlines() if line.startswith("| static |"))
    assert any(ch.isdigit() for ch in static.split("|")[2])
    metrics = read_metrics(results / "metrics.csv")
    assert set(metrics[metrics["variant"] == "static"]["status"]) == {"ok"}


def _writer(path, n, tag):
    for i in range(n):
        write_json(path, {"writer": tag, "i": i, "payload": [tag] * 20000})


def test_parallel_atomic_writes_never_interleave(tmp_path):
    path = tmp_path / "run.json"
    write_json(path, {"writer": -1, "i": -1, "payload": []})
    procs = [mp.get_context("spawn").Process(target=_writer, args=(path, 30, t)) for t in range(4)]
    for p in procs:
        p.start()
    reads = 0
    while any(p.is_alive() for p in procs):
        data = json.loads(path.read_text())  # must always parse: never partial
        assert set(data["payload"]) <= {data["writer"]}
        reads += 1
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert reads > 0
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]  # no temp files left


def test_missing_runs_are_reported_not_dropped(tmp_path):
    suite = load_suite("smoke", work_dir=str(tmp_path / "w"), results_dir=str(tmp_path / "r"))
    table, missing = collect(suite)
    assert len(missing) == len(suite.cells)
    assert set(table["status"]) == {"missing"}
    assert set(table["variant"]) == set(suite.methods)


def test_clean_removes_caches_not_results(tmp_path):
    work, results = tmp_path / "work", tmp_path / "results"
    for d in ("checkpoints/a", "logs/b", "data/c"):
        (work / d).mkdir(parents=True)
        (work / d / "f").write_text("x")
    (results / "runs").mkdir(parents=True)
    (results / "metrics.csv").write_text("keep")
    removed = clean(work, results)
    assert {p.name for p, _ in removed} == {"checkpoints", "logs"}
    assert (work / "data" / "c" / "f").exists() and (results / "metrics.csv").read_text() == "keep"
    with pytest.raises(ValueError, match="overlaps the results directory"):
        clean(work, work / "logs" / "res", ["logs"])
    out = _cli("clean", "--suite", "smoke", "--work-dir", str(work), "--results-dir", str(results), "data")
    assert out.returncode == 0 and "removed" in out.stdout and not (work / "data").exists()


def test_seed_independent_methods_compute_the_first_seed_only(tmp_path):
    """static is seed-independent: seed 1 copies seed 0's model and numbers (marked), and refuses
    to run before seed 0 exists."""
    suite = load_suite("smoke", work_dir=str(tmp_path / "w"), results_dir=str(tmp_path / "r"))
    first, second = (Cell("lj_window", "lj_tiny", "static", s) for s in (0, 1))
    assert reused_seed(suite, first) is None and reused_seed(suite, second) == 0
    make_data(suite, "lj_tiny", progress=False)
    make_split(suite, "lj_window", "lj_tiny")
    with pytest.raises(FileNotFoundError, match="seed0.pt: train static seed 0 first"):
        train_cell(suite, second, device="cpu")
    train_cell(suite, first, device="cpu")
    train_cell(suite, second, device="cpu")
    with pytest.raises(FileNotFoundError, match="seed0.json: evaluate seed 0 first"):
        evaluate_cell(suite, second, device="cpu")
    run0 = evaluate_cell(suite, first, device="cpu")
    run1 = evaluate_cell(suite, second, device="cpu")
    assert run1["rows"] == run0["rows"] and run1["seed"] == 1 and run1["reused_from_seed"] == 0
    assert run1["reused_model_of"] == "static/seed0"  # counted once in the leaderboard's train time
    assert "not recomputed" in run1["note"] and "reused_from_seed" not in run0


def test_shares_training_with_evaluates_the_other_entrys_model(tmp_path):
    """ito_rollout (shares_training_with: ito_1step) copies ito_1step's trained model, then
    predicts with its own sampler; it cannot run before that model exists."""
    from methods.ito import ITO as Ito

    raw = yaml.safe_load((SUITES_DIR / "smoke.yaml").read_text())
    tiny = dict(Ito.test_params)
    raw["methods"] = {"ito_1step": {"method": "ito", "params": {**tiny, "mode": "1step"}, "budget": {"epochs": 1}},
                      "ito_rollout": {"method": "ito", "params": {**tiny, "mode": "rollout"}, "budget": {"epochs": 1},
                                      "shares_training_with": "ito_1step"}}
    raw["tasks"] = {"lj_window": {**raw["tasks"]["lj_window"], "methods": ["ito_1step", "ito_rollout"]}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw))
    suite = load_suite(str(path), work_dir=str(tmp_path / "w"), results_dir=str(tmp_path / "r"))
    one, roll = Cell("lj_window", "lj_tiny", "ito_1step", 0), Cell("lj_window", "lj_tiny", "ito_rollout", 0)
    assert reused_model(suite, one) is None and reused_model(suite, roll) == one
    make_data(suite, "lj_tiny", progress=False)
    make_split(suite, "lj_window", "lj_tiny")
    with pytest.raises(FileNotFoundError, match="train ito_1step seed 0 first"):
        train_cell(suite, roll, device="cpu")
    trained = train_cell(suite, one, device="cpu")
    copied = train_cell(suite, roll, device="cpu")
    assert copied["reused_model_of"] == "ito_1step/seed0"
    assert all(torch.equal(copied["state"][k], v) for k, v in trained["state"].items() if torch.is_tensor(v))
    run = evaluate_cell(suite, roll, device="cpu")
    assert run["status"] == "ok" and run["reused_model_of"] == "ito_1step/seed0"


def test_a_run_from_another_config_is_reported_stale(tmp_path):
    """A run file whose config hash is not the suite's any more is shown as stale, with the
    command that recomputes it, never as a current number."""
    suite = load_suite("smoke", work_dir=str(tmp_path / "w"), results_dir=str(tmp_path / "r"))
    cell = suite.cells[0]
    run = {"suite": "smoke", "task": cell.task, "protocol": "window", "dataset": cell.dataset,
           "split_variant": "by_trajectory", "method": cell.variant, "variant": cell.variant, "seed": cell.seed,
           "status": "ok", "note": "", "config_hash": "0123456789abcdef", "command": "snakemake ...",
           "rows": [{"split": "test", "metric": "mse", "convention": "mean_over_offsets", "horizon": 40,
                     "offset": None, "value": 1.0, "unit": "A^2"}]}
    write_json(suite.run_path(cell), run)
    table, _ = collect(suite)
    mine = table[(table["variant"] == cell.variant) & (table["seed"] == cell.seed) & (table["task"] == cell.task)]
    assert set(mine["status"]) == {"stale"}
    assert "computed with another config (hash 0123456789ab" in mine["note"].iloc[0]
    # (that the hash ignores a task's method list and description: tests/test_config.py)


def test_a_run_on_another_dataset_build_stays_out_of_the_means(tmp_path):
    """Two builds of one simulated dataset (another processor's round-off): the board keeps the
    build most run files used; a run on the other build is listed as `other_build`, with both
    builds in its note, is left out of the table's mean, and `data make` would warn about it."""

    builds = board_builds([("d", {"dataset_sha256": "b"}), ("d", {"dataset_sha256": "a"})])
    assert builds["d"] == ("a", {"a": 1, "b": 1})
    suite = load_suite("smoke", work_dir=str(tmp_path / "w"), results_dir=str(tmp_path / "r"))
    dataset = suite.cells[0].dataset
    cells = [c for c in suite.cells if c.dataset == dataset][:3]
    for i, cell in enumerate(cells):
        write_json(suite.run_path(cell), {
            "suite": "smoke", "task": cell.task, "protocol": "window", "dataset": cell.dataset,
            "split_variant": "by_trajectory", "method": cell.variant, "variant": cell.variant, "seed": cell.seed,
            "status": "ok", "note": "", "config_hash": suite.config_hash(cell), "command": f"snakemake {i}",
            "dataset_sha256": ("b" if i == 2 else "a") * 64, "hardware": f"cpu {i}",
            "rows": [{"split": "test", "metric": "mse", "convention": "mean_over_offsets", "horizon": 40,
                      "offset": None, "value": 1.0 + i, "unit": "A^2"}]})
    table, _ = collect(suite)
    runs = table.drop_duplicates(["task", "variant", "seed"])
    status = {(r.task, r.variant, r.seed): r.status for r in runs.itertuples()
              if r.dataset == dataset and r.status != "missing"}
    assert sorted(status.values()) == ["ok", "ok", "other_build"]
    odd = table[table["status"] == "other_build"]
    assert odd["note"].iloc[0].startswith(
        f"computed on another build of {dataset} (sha256 bbbbbbbbbbbb, 1 run file(s); "
        "this one made on cpu 2) than the board's (aaaaaaaaaaaa, 2 run files)")
    assert summarise(odd)["text"] == "other data build ×1"
    assert "used build aaaaaaaaaaaa (made on cpu 0; cpu 1)" in runner.build_mismatch(suite, dataset, "b" * 64)
    assert runner.build_mismatch(suite, dataset, "a" * 64) is None


def test_data_make_says_before_simulating_when_the_board_build_came_from_another_vendor(tmp_path):
    """The board's runs of a simulated dataset were made on Intel machines: on an AMD machine
    `data make` says, before the simulation, that its build will most likely not be the board's."""
    assert cpu_vendor("Intel(R) Xeon(R) Processor @ 2.80GHz x2") == "Intel"
    assert cpu_vendor("AMD EPYC x2; NVIDIA H200") == "AMD"
    assert cpu_vendor("x86_64 x2; AMD Instinct MI300X") is None  # a GPU's vendor is not the CPU's
    assert get_kind("lj_argon").simulated and not get_kind("md17").simulated
    def smoke_on(platform):
        raw = yaml.safe_load((SUITES_DIR / "smoke.yaml").read_text())
        raw["datasets"]["lj_tiny"]["params"]["platform"] = platform
        (tmp_path / f"{platform}.yaml").write_text(yaml.safe_dump(raw))
        return load_suite(str(tmp_path / f"{platform}.yaml"), work_dir=str(tmp_path / "w"),
                          results_dir=str(tmp_path / "r"))

    suite = smoke_on("CPU")  # the vendor-dependent LJ path
    dataset = suite.cells[0].dataset
    assert get_kind(suite.datasets[dataset].kind).simulated
    assert runner.vendor_notice(suite, dataset, here="AMD EPYC x2") is None  # no board runs yet
    for i, cell in enumerate([c for c in suite.cells if c.dataset == dataset][:2]):
        write_json(suite.run_path(cell), {"dataset": dataset, "status": "ok", "dataset_sha256": "a" * 64,
                                          "hardware": f"Intel(R) Xeon(R) Processor{' @ 2.80GHz' * i} x2"})
    note = runner.vendor_notice(suite, dataset, here="AMD EPYC x2")
    assert note.startswith(f"note: the board's build of {dataset} (aaaaaaaaaaaa, 2 run file(s)) was made on "
                           "Intel(R) Xeon(R) Processor @ 2.80GHz x2; Intel(R) Xeon(R) Processor x2; "
                           "this machine is AMD EPYC x2.")
    assert f"mdhorizon data import {dataset} DIR" in note
    assert runner.vendor_notice(suite, dataset, here="Intel(R) Xeon(R) Gold 6338 x8") is None
    assert runner.vendor_notice(suite, dataset, here="Apple M2 x8") is None  # unknown vendor: no guess
    # LJ argon on the Reference platform (its default) builds the same bytes anywhere: nothing to say
    # before simulating, and a mismatch afterwards blames the generator's version, not the processor.
    suite = smoke_on("Reference")
    assert get_kind("lj_argon").vendor_independent(suite.datasets[dataset].overrides)
    assert get_kind("lj_argon").vendor_independent(None) and get_kind("md17").vendor_independent()
    assert not get_kind("tip3p_water").vendor_independent()
    assert runner.vendor_notice(suite, dataset, here="AMD EPYC x2") is None
    assert "same on every processor" in runner.build_mismatch(suite, dataset, "b" * 64)


def test_data_rule_threads_are_the_simulated_trajectories():
    """The data rule's threads (`mdhorizon data make --jobs`): one per simulated trajectory, one for a
    download, whose files are fetched in order."""
    assert runner.data_jobs(load_suite("default"), "lj_argon") == 8
    assert runner.data_jobs(load_suite("paper"), "md17_aspirin") == 1


def test_import_a_built_dataset_from_another_machine(tmp_path):
    """`mdhorizon data import <dataset> DIR` copies another machine's build after checking every
    file hash and that it is the suite's dataset; a tampered build or other params are refused."""
    suite_yaml = tmp_path / "faults.yaml"
    suite_yaml.write_text(yaml.safe_dump(FAULTS_SUITE))
    there, here = tmp_path / "there", tmp_path / "here"
    made = _cli("data", "make", "lj_tiny", "--no-progress", "--suite", str(suite_yaml), "--work-dir", str(there),
                cwd=ROOT)
    assert made.returncode == 0, made.stderr
    build = there / "data" / "lj_tiny"
    got = _cli("data", "import", "lj_tiny", str(build), "--suite", str(suite_yaml), "--work-dir", str(here), cwd=ROOT)
    assert got.returncode == 0, got.stderr
    checksum = read_json(build / "manifest.json")["checksum"]
    assert read_json(here / "data" / "lj_tiny" / "manifest.json")["checksum"] == checksum
    assert f"checksum {checksum[:16]}" in got.stdout
    params = FAULTS_SUITE["datasets"]["lj_tiny"]["params"]
    assert import_build(here / "data" / "lj_tiny", build, "lj_tiny", "lj_argon", params, 0).checksum == checksum
    with pytest.raises(DataError, match=r"params \(n_frames: 80, the suite wants 60\)"):
        import_build(tmp_path / "x", build, "lj_tiny", "lj_argon", {**params, "n_frames": 60}, 0)
    with pytest.raises(DataError, match="seed: 0, the suite wants 1"):
        import_build(tmp_path / "x", build, "lj_tiny", "lj_argon", params, 1)
    tampered = tmp_path / "tampered"
    shutil.copytree(build, tampered)
    positions = np.load(tampered / "traj_001" / "positions.npy")
    positions[5, 0, 0] += 0.01
    np.save(tampered / "traj_001" / "positions.npy", positions)
    bad = _cli("data", "import", "lj_tiny", str(tampered), "--suite", str(suite_yaml), "--work-dir",
               str(tmp_path / "elsewhere"), cwd=ROOT)
    assert bad.returncode == 1 and "not a complete dataset build" in bad.stderr and "sha256 differs" in bad.stderr
    assert not (tmp_path / "elsewhere" / "data" / "lj_tiny").exists()
    edited = tmp_path / "edited"
    shutil.copytree(build, edited)
    write_json(edited / "manifest.json", {**read_json(build / "manifest.json"), "checksum": "0" * 64})
    with pytest.raises(DataError, match="its checksum does not match its file hashes"):
        import_build(tmp_path / "y", edited, "lj_tiny", "lj_argon", params, 0)
    with pytest.raises(DataError, match="already holds build"):
        _import_over(here / "data" / "lj_tiny", build, tmp_path, params)


def _import_over(target, build, tmp_path, params):
    """Import another (valid) build over an existing one: refused."""
    other = tmp_path / "other"
    shutil.copytree(build, other)
    shutil.rmtree(other / "traj_002")
    manifest = read_json(build / "manifest.json")
    write_manifest(other, name="lj_tiny", kind="lj_argon", params=manifest["params"], info=manifest["info"])
    import_build(target, other, "lj_tiny", "lj_argon", params, 0)


def test_checkpoints_are_keyed_by_config_and_data(tmp_path):
    """A changed method config (or regenerated data) never resumes another config's epochs."""
    suite = load_suite("smoke", work_dir=str(tmp_path / "w"), results_dir=str(tmp_path / "r"))
    cell = suite.cells[0]
    a = run_checkpoint_dir(suite, cell, "data-a")
    assert a.parent == suite.checkpoint_dir(cell) and a != run_checkpoint_dir(suite, cell, "data-b")
    raw = yaml.safe_load((SUITES_DIR / "smoke.yaml").read_text())
    raw["methods"][cell.variant] = {"params": {}, "budget": {"epochs": 3}}
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(raw))
    other = load_suite(str(tmp_path / "other.yaml"), work_dir=str(tmp_path / "w"), results_dir=str(tmp_path / "r"))
    assert run_checkpoint_dir(other, cell, "data-a") != a


def test_git_sha_dirty_for_code_not_for_results(tmp_path, monkeypatch):
    """Provenance: a run made while generated results (or Markdown) differ from HEAD is still the commit's code;
    a changed code file marks it -dirty; MDHORIZON_GIT_SHA names the commit of a tree without .git."""
    monkeypatch.delenv("MDHORIZON_GIT_SHA", raising=False)
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "metrics.csv").write_text("a\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("# headline\n")
    subprocess.run(git + ["init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(git + ["add", "."], cwd=tmp_path, check=True)
    subprocess.run(git + ["commit", "-qm", "init"], cwd=tmp_path, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    (tmp_path / "results" / "metrics.csv").write_text("b\n")
    (tmp_path / "README.md").write_text("# regenerated headline\n")
    assert git_sha(tmp_path) == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_sha(tmp_path) == head + "-dirty"
    monkeypatch.setenv("MDHORIZON_GIT_SHA", "abc123")
    assert git_sha(tmp_path) == "abc123"
    monkeypatch.delenv("MDHORIZON_GIT_SHA")
    assert git_sha(tmp_path / "nowhere") == "unknown"
