"""Run the stages of one cell: data -> split -> train -> evaluate (each one CLI command).

Each stage writes its output atomically; ``train`` keeps resumable checkpoints
outside its declared output; ``evaluate`` writes the run JSON that aggregation
reads.  A method that cannot run on a task is recorded as ``not_applicable``,
one that blows up as ``diverged``: both still produce a run JSON, so the
tables can say why a cell has no number.
"""

from __future__ import annotations

import platform
import time
import traceback
from dataclasses import replace

import torch

from benchmark import METRICS_VERSION
from benchmark.aggregate import board_builds
from benchmark.config import Cell, Suite
from benchmark.data.format import open_dataset
from benchmark.data.registry import get_kind, make_dataset
from benchmark.devices import resolve_device
from benchmark.evaluation import evaluate_part
from benchmark.io import atomic_path, cpu_vendor, git_sha, hardware_string, read_json, stable_hash, write_json
from benchmark.metrics import placeholder_rows
from benchmark.samples import open_parts
from benchmark.specs import TaskError
from benchmark.splits import build_split_from_spec, load_split
from benchmark.training import Diverged, seed_everything
from methods import Budget, make_method


def make_data(suite: Suite, dataset: str, progress: bool = True, jobs: int = 1):
    entry = suite.datasets[dataset]
    return make_dataset(suite.dataset_dir(dataset), dataset, entry.kind, entry.overrides,
                        seed=entry.seed, progress=progress, jobs=jobs)


def data_jobs(suite: Suite, dataset: str) -> int:
    """How many processes building ``dataset`` can use: one per simulated trajectory (the data
    rule's threads; Snakemake lowers them to --cores); 1 for a downloaded dataset."""
    entry = suite.datasets[dataset]
    if not get_kind(entry.kind).simulated:
        return 1
    return int(entry.params["n_trajectories"])


def _board_build(suite: Suite, dataset: str) -> tuple[str, int, list[str]] | None:
    """The build of ``dataset`` the board's run files used (``benchmark.aggregate.board_builds``):
    its sha256, how many run files used it and the machines they ran on; None without run files."""
    runs = [(c.dataset, read_json(suite.run_path(c))) for c in suite.cells
            if c.dataset == dataset and suite.run_path(c).exists()]
    board, per_build = board_builds(runs).get(dataset, (None, {}))
    if board is None:
        return None
    hardware = sorted({r.get("hardware") or "?" for _, r in runs if r.get("dataset_sha256") == board})
    return board, per_build[board], hardware


def build_mismatch(suite: Suite, dataset: str, checksum: str) -> str | None:
    """A warning when this machine's build of ``dataset`` is not the one the board's run files used:
    runs on it would be left out of the means."""
    found = _board_build(suite, dataset)
    if found is None or found[0] == checksum:
        return None
    board, n_runs, hardware = found
    entry = suite.datasets[dataset]
    why = ("This generator's builds are the same on every processor, so the board's came from another version "
           "of the generator or of its engine (compare `provenance` in the trajectories' meta.json)"
           if get_kind(entry.kind).vendor_independent(entry.overrides)
           else "Simulated data are bit-identical only on the same kind of processor")
    return (f"warning: {suite.dataset_dir(dataset)} has checksum {checksum[:12]}, but {n_runs} run "
            f"file(s) of the board used build {board[:12]} (made on {'; '.join(hardware)}). {why}; "
            "runs on this build get status 'other_build' "
            "and stay out of the board's means. Run on a machine that regenerates the board's build, import "
            f"that build (`mdhorizon data import {dataset} <its work/data/{dataset}>`), or rerun every cell on "
            f"{dataset} here (delete its run files under {suite.results_dir}/runs).")


def vendor_notice(suite: Suite, dataset: str, here: str | None = None) -> str | None:
    """Before simulating ``dataset``: a note when the board's build of it was made on another
    processor vendor's machines, whose build this one will most likely not reproduce (OpenMM's
    CPU platform takes 1/r from the vendor's own rsqrt estimate), so that the user knows before
    the 20-80 minutes of simulation and not after them."""
    entry = suite.datasets[dataset]
    if get_kind(entry.kind).vendor_independent(entry.overrides):
        return None
    found = _board_build(suite, dataset)
    if found is None:
        return None
    board, n_runs, hardware = found
    here = here or hardware_string()
    mine, theirs = cpu_vendor(here), {cpu_vendor(h) for h in hardware}
    if mine is None or None in theirs or mine in theirs:
        return None
    return (f"note: the board's build of {dataset} ({board[:12]}, {n_runs} run file(s)) was made on "
            f"{'; '.join(hardware)}; this machine is {here}. Simulated builds differ between processor vendors "
            "(README, 'Simulated data depend on the processor'), so this one will most likely not be the board's "
            "and runs on it would get status 'other_build'. Simulating anyway (Ctrl-C stops; finished trajectories "
            f"are kept); to add seeds to the board here, import a board build instead: `mdhorizon data import "
            f"{dataset} DIR`.")


def make_split(suite: Suite, task: str, dataset: str) -> None:
    entry = suite.tasks[task]
    ds = open_dataset(suite.dataset_dir(dataset), verify=True)
    split = build_split_from_spec(ds, entry.spec, entry.split.strategy, entry.split.params, seed=entry.split.seed)
    check_block(entry, dataset, split["parts"]["test"])
    write_json(suite.split_path(task, dataset), split)


def check_block(entry, dataset: str, test: dict) -> None:
    """A task's bootstrap block (``block_frames``) must be shorter than the span of its test windows'
    start frames when the test part has a single trajectory (the block bootstrap,
    :mod:`benchmark.stats`); raises :class:`TaskError` naming the task before any training."""
    if entry.block_frames is None or len(set(test["traj"])) != 1:
        return
    span = max(test["t0"]) - min(test["t0"]) + 1
    if entry.block_frames >= span:
        raise TaskError(f"tasks.{entry.name}.block_frames: a block of {entry.block_frames} frames is not shorter "
                        f"than the {span} frames spanned by the test windows of {dataset}'s single test "
                        f"trajectory: no two blocks to resample; lower block_frames")


def _open(suite: Suite, cell: Cell, parts):
    ds = open_dataset(suite.dataset_dir(cell.dataset))
    split = load_split(suite.split_path(cell.task, cell.dataset))
    task = suite.tasks[cell.task]
    return ds, split, open_parts(ds, split, task.graph, parts, atoms=task.atoms, velocities=task.velocities)


def reproduce_command(suite: Suite, cell: Cell) -> str:
    """The exact command that recomputes this cell (retraining it)."""
    extra = "".join(f" {k}={v}" for k, v in (("work_dir", suite.work_dir), ("results_dir", suite.results_dir))
                    if str(v) != suite.default_dir(k))
    return (f"snakemake --cores 2 {suite.run_path(cell)} --config suite={suite.name}{extra}"
            f" --forcerun train_cell")


def reused_seed(suite: Suite, cell: Cell) -> int | None:
    """The seed whose model and numbers this cell reuses, or None.

    A method with ``seed_dependent = False`` (static, constant velocity,
    Wavelet-ARIMA, DESCINet) gives the same numbers for every seed (the generic
    method test checks it), so only the suite's first seed is computed; the
    other seeds' model and run files are copies, marked ``reused_from_seed``.
    """
    first = suite.seeds[0]
    if suite.methods[cell.variant].seed_dependent or cell.seed == first:
        return None
    return first


def reused_model(suite: Suite, cell: Cell) -> Cell | None:
    """The cell whose trained model this cell copies instead of training: the first seed of a
    seed-independent method, or the entry named by ``shares_training_with`` (same seed)."""
    seed = reused_seed(suite, cell)
    shared = suite.methods[cell.variant].shares_training_with
    if seed is None and shared is None:
        return None
    return replace(cell, variant=shared or cell.variant, seed=cell.seed if seed is None else seed)


def run_checkpoint_dir(suite: Suite, cell: Cell, dataset_checksum: str):
    """Where a cell's resumable checkpoint lives: keyed by its config hash and dataset checksum, so a
    run never resumes from the epochs of another config or of regenerated data."""
    return suite.checkpoint_dir(cell) / stable_hash({"config": suite.config_hash(cell),
                                                     "dataset": dataset_checksum})[:16]


def train_cell(suite: Suite, cell: Cell, device: str = "auto") -> dict:
    """Fit one method for one seed; writes the model file (declared output)."""
    source_cell = reused_model(suite, cell)
    if source_cell is not None:
        source = suite.model_path(source_cell)
        if not source.exists():
            raise FileNotFoundError(f"{source}: train {source_cell.variant} seed {source_cell.seed} first "
                                    f"({cell.variant} seed {cell.seed} reuses its model)")
        record = torch.load(source, map_location="cpu", weights_only=False)
        record.update(cell=cell.__dict__, reused_model_of=f"{source_cell.variant}/seed{source_cell.seed}")
        with atomic_path(suite.model_path(cell)) as tmp:
            torch.save(record, tmp)
        return record
    device = resolve_device(device, suite.layout.locks_dir)
    entry = suite.method_entry(cell.variant, cell.task, cell.dataset)
    method = make_method(entry.method, entry.params)
    ds, _, sets = _open(suite, cell, ("train", "val"))
    protocol = suite.tasks[cell.task].protocol
    record = {"cell": cell.__dict__, "method": entry.method, "status": "ok", "note": "",
              "device": device, "fit_info": {}, "train_seconds": 0.0}
    reason = method.skip_reason(protocol, sets["train"])
    if reason:
        record.update(status="not_applicable", note=reason)
    else:
        seed_everything(cell.seed)
        start = time.perf_counter()
        try:
            record["fit_info"] = method.fit(sets["train"], sets["val"], Budget(**entry.budget), cell.seed,
                                            device, checkpoint_dir=run_checkpoint_dir(suite, cell, ds.checksum))
        except Diverged as exc:
            record.update(status="diverged", note=str(exc), diverged_epoch=exc.epoch)
            if exc.facts is not None:  # a step budget: the curve up to the divergence
                record.update(fit_info=exc.facts, diverged_step=exc.step)
        # wall time of this process plus the epochs an interrupted earlier process already trained
        record["train_seconds"] = (time.perf_counter() - start
                                   + record["fit_info"].get("train_seconds_before_resume", 0.0))
        if record["status"] == "ok":
            record["state"] = method.state_dict()
            record["n_params"] = method.n_params()
    with atomic_path(suite.model_path(cell)) as tmp:
        torch.save(record, tmp)
    return record


def load_method(suite: Suite, cell: Cell, record: dict):
    """The trained method of ``cell`` rebuilt from its model record (status ok), on the CPU."""
    entry = suite.method_entry(cell.variant, cell.task, cell.dataset)
    method = make_method(entry.method, entry.params)
    method.load_state_dict(record["state"])
    return method


def evaluate_cell(suite: Suite, cell: Cell, device: str = "auto") -> dict:
    """Predict val and test with the trained model; write the run JSON."""
    reference = reused_seed(suite, cell)
    if reference is not None:
        return _reuse_run(suite, cell, reference)
    device = resolve_device(device, suite.layout.locks_dir)
    record = torch.load(suite.model_path(cell), map_location="cpu", weights_only=False)
    ds, split, sets = _open(suite, cell, ("val", "test"))
    spec = sets["test"].spec  # the split file's: what these samples were drawn for
    run = {
        "suite": suite.name, "task": cell.task, "protocol": split["protocol"], "dataset": cell.dataset,
        "split_variant": split["strategy"], "method": suite.methods[cell.variant].method, "variant": cell.variant,
        "seed": cell.seed, "status": record["status"], "note": record["note"],
        "n_params": record.get("n_params", 0), "train_seconds": record["train_seconds"],
        "predict_seconds": None, "device": device, "hardware": hardware_string(device),
        "python": platform.python_version(), "torch": torch.__version__,
        "git_sha": git_sha(), "config_hash": suite.config_hash(cell), "dataset_sha256": ds.checksum,
        "dataset_engine": ds.trajectory(0).provenance.get("engine"), "metrics_version": METRICS_VERSION,
        "command": reproduce_command(suite, cell),
        "fit_info": {k: v for k, v in record["fit_info"].items() if k != "history"},
        "history": record["fit_info"].get("history", []), "rows": [],
        "reused_model_of": record.get("reused_model_of"),
    }
    if "val_curve" in record["fit_info"]:  # a step budget (benchmark.training): the convergence record
        info = record["fit_info"]
        run["fit_info"].pop("val_curve")
        run.update(val_curve=info["val_curve"], steps=info["steps"], stop_reason=info["stop_reason"],
                   converged=info["converged"])
    if record["status"] == "ok":
        method = load_method(suite, cell, record)
        method.to(device)
        batch = method.params.get("batch_size", 256)
        metrics_cfg = suite.tasks[cell.task].metrics
        try:
            for part in ("val", "test"):
                seed_everything(cell.seed)
                method.diagnostics()  # reset counters left over from loading/validation
                ladder = suite.tasks[cell.task].ladder if part == "test" else None
                rows, bad, artifacts, seconds = evaluate_part(method, sets[part], split, metrics_cfg, batch, device,
                                                              ladder=ladder, primary=suite.tasks[cell.task].primary)
                diagnostics = method.diagnostics()
                if diagnostics:
                    run.setdefault("diagnostics", {})[part] = diagnostics
                    rows += [{"metric": f"diag_{k}", "convention": "count" if isinstance(v, int) else "value",
                              "horizon": spec.delta_frame, "offset": None, "value": float(v), "unit": ""}
                             for k, v in diagnostics.items() if isinstance(v, (int, float))]
                if part == "test":
                    run["predict_seconds"] = seconds / len(sets[part])
                    if artifacts:
                        run["artifacts"] = artifacts
                if bad:
                    run.update(status="diverged", note=f"non-finite or exploded predictions in {bad} "
                                                       f"{part} samples")
                run["rows"] += [{"split": part, **row} for row in rows]
        except Exception as exc:  # a crash in predict is a failed cell, not a lost workflow
            run.update(status="failed", note=f"{type(exc).__name__}: {exc}",
                       traceback=traceback.format_exc(limit=5), rows=[])
    if not run["rows"]:
        run["rows"] = placeholder_rows(suite.tasks[cell.task])
    write_json(suite.run_path(cell), run)
    return run


def _reuse_run(suite: Suite, cell: Cell, reference: int) -> dict:
    """The run file of a seed-independent method's other seed: seed ``reference``'s numbers."""
    source = suite.run_path(replace(cell, seed=reference))
    if not source.exists():
        raise FileNotFoundError(f"{source}: evaluate seed {reference} first ({cell.variant} is seed-independent "
                                f"and seed {cell.seed} reuses its numbers)")
    run = read_json(source)
    ds = open_dataset(suite.dataset_dir(cell.dataset))
    if run["config_hash"] != suite.config_hash(cell) or run["dataset_sha256"] != ds.checksum:
        raise ValueError(f"{source} was computed with another config or dataset; re-run seed {reference} "
                         f"({reproduce_command(suite, replace(cell, seed=reference))})")
    note = f"seed-independent method: the numbers of seed {reference}, not recomputed"
    run.update(seed=cell.seed, reused_from_seed=reference, reused_model_of=f"{cell.variant}/seed{reference}",
               command=reproduce_command(suite, cell),
               note=f"{run['note']}; {note}" if run["note"] else note)
    write_json(suite.run_path(cell), run)
    return run
