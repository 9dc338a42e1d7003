"""Suites: YAML configs validated by a JSON schema, then resolved into the typed suite model.

:func:`load_suite` reads a suite YAML, validates it (schema, then every name, kind, method
params and task spec) and builds the frozen :class:`benchmark.suite.Suite` once; nothing reads
the YAML after this.  Every error names the file, the key, the bad value and the valid choices,
and is raised before any job runs (the Snakefile loads the suite at parse time).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from benchmark.data.registry import KINDS, resolve_params
from benchmark.errors import UserError
from benchmark.specs import TaskError, check_rungs, default_rungs, make_spec
from benchmark.suite import (
    Cell,
    DatasetEntry,
    Layout,
    MethodEntry,
    SplitEntry,
    Suite,
    TaskEntry,
    default_results_dir,
)
from benchmark.training import SCHEDULES
from methods import REGISTRY, TorchMethod, make_method

__all__ = ["ConfigError", "Cell", "Suite", "load_suite", "check_workflow_config", "default_results_dir",
           "entry_params", "suite_path", "SUITES_DIR", "WORKFLOW_KEYS"]

ROOT = Path(__file__).resolve().parent.parent
SUITES_DIR = ROOT / "configs" / "suites"
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "suite.schema.json"
# Keys accepted on the Snakemake command line (``--config key=value``).
# Budget keys of a step budget (benchmark.training); they need ``steps``.
STEP_KEYS = ("val_every", "val_samples", "patience", "schedule", "warmup_steps", "grad_clip")
WORKFLOW_KEYS = {
    "suite": "suite name in configs/suites/ or a path to a suite YAML (default: default)",
    "work_dir": "where generated data, splits, models, checkpoints and caches live (default: work)",
    "results_dir": "where run JSONs, metrics.csv and tables go (default: results, or results/<suite>)",
    "methods": "comma-separated subset of the suite's method entries to run",
    "datasets": "comma-separated subset of the suite's datasets to run",
    "device": "auto | cpu | cuda | cuda:N (overrides the suite's device)",
}


class ConfigError(UserError, ValueError):
    """A config error; the message names the file and key."""

    label = "config error"
    exit_code = 2


def _fail(path: Path, key: str, message: str) -> None:
    raise ConfigError(f"{path}: {key}: {message}")


def _choices(value, valid) -> str:
    return f"unknown {value!r}; valid: {', '.join(sorted(valid))}"


def suite_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise ConfigError(f"{p}: suite file not found")
        return p
    candidate = SUITES_DIR / f"{name_or_path}.yaml"
    if not candidate.exists():
        valid = sorted(x.stem for x in SUITES_DIR.glob("*.yaml"))
        raise ConfigError(f"config key 'suite': {_choices(name_or_path, valid)} (or a path to a .yaml)")
    return candidate


def validate_schema(raw, path: Path) -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors[:10]:
            key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
            msg = err.message
            if err.validator == "additionalProperties":
                allowed = sorted(err.schema.get("properties", {}))
                msg += f"; allowed keys: {', '.join(allowed)}"
            elif err.validator == "enum":
                msg = f"{err.instance!r} is not allowed; valid: {', '.join(map(str, err.validator_value))}"
            lines.append(f"{path}: {key}: {msg}")
        raise ConfigError("invalid suite config:\n  " + "\n  ".join(lines))


def entry_params(entry: dict, dataset: str | None = None) -> dict:
    """A method entry's params, with its ``dataset_params`` for ``dataset`` on top (a new dict)."""
    return {**entry.get("params", {}), **(entry.get("dataset_params") or {}).get(dataset, {})}


def _check_shared_training(path: Path, methods: dict, variant: str, registry) -> None:
    """``shares_training_with``: the other entry exists, is the same method with the same budget,
    and differs in params only by the method's ``inference_params``."""
    entry = methods[variant] or {}
    other = entry["shares_training_with"]
    key = f"methods.{variant}.shares_training_with"
    if other not in methods or other == variant:
        _fail(path, key, _choices(other, [m for m in methods if m != variant]))
    other_entry = methods[other] or {}
    if (other_entry.get("shares_training_with")):
        _fail(path, key, f"{other!r} itself shares another entry's training; name that entry")
    method = entry.get("method", variant)
    if other_entry.get("method", other) != method:
        _fail(path, key, f"{other!r} is method {other_entry.get('method', other)!r}, not {method!r}")
    if other_entry.get("budget", {}) != entry.get("budget", {}):
        _fail(path, key, f"{other!r} has another training budget")
    free = set(registry[method].inference_params)
    on = set(entry.get("dataset_params") or {}) | set(other_entry.get("dataset_params") or {})
    for ds in [None, *sorted(on)]:  # the params, then those on each dataset
        a, b = entry_params(entry, ds), entry_params(other_entry, ds)
        differ = sorted(k for k in set(a) | set(b) if k not in free and a.get(k) != b.get(k))
        if differ:
            where = f" on {ds}" if ds else ""
            _fail(path, key, f"params {differ} differ from {other!r}{where}; only {sorted(free) or 'none'} may")


def _check_budget(path: Path, key: str, budget: dict) -> None:
    """A step budget's keys fit together (:mod:`benchmark.training`); the schema checked each key's type."""
    step_keys = sorted(k for k in STEP_KEYS if k in budget)
    if "steps" not in budget:
        if step_keys:
            _fail(path, f"{key}.{step_keys[0]}", "belongs to a step budget; add 'steps' (or remove it)")
        return
    if "epochs" in budget or "eval_every" in budget:
        bad = "epochs" if "epochs" in budget else "eval_every"
        _fail(path, f"{key}.{bad}", "an epoch budget key; a budget counts 'steps' or 'epochs', not both")
    steps = budget["steps"]
    if not (isinstance(steps, int) and steps >= 1):
        _fail(path, f"{key}.steps", f"must be a positive integer, got {steps!r}")
    schedule = budget.get("schedule", "warmup_cosine")
    if schedule not in SCHEDULES:
        _fail(path, f"{key}.schedule", _choices(schedule, SCHEDULES))
    val_every = budget.get("val_every", max(1, steps // 50))
    if val_every > steps:
        _fail(path, f"{key}.val_every", f"{val_every} is more than the budget's {steps} steps; validate at most "
                                         f"every {steps} steps")
    patience = budget.get("patience")
    # the first validation is always a new best: the earliest early stop is after (patience + 1) validations
    if patience is not None and (patience + 1) * val_every >= steps:
        _fail(path, f"{key}.patience", f"{patience} validations (every {val_every} steps) cannot stop the run "
                                        f"before the budget's {steps} steps end; use patience at most "
                                        f"{(steps - 1) // val_every - 1} or more steps")
    warmup = budget.get("warmup_steps", 0)
    if warmup >= steps:
        _fail(path, f"{key}.warmup_steps", f"{warmup} is not below the budget's {steps} steps")


def load_suite(name_or_path: str = "default", work_dir: str | None = None, results_dir: str | None = None,
               device: str | None = None, methods: str | list | None = None,
               datasets: str | list | None = None) -> Suite:
    """Load, validate and resolve a suite. Raises :class:`ConfigError` with the key at fault."""
    path = suite_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}; fix the syntax there") from None
    validate_schema(raw, path)
    name = raw["name"]
    if path.parent == SUITES_DIR and name != path.stem:
        _fail(path, "name", f"{name!r} must equal the file name {path.stem!r}")

    for ds, entry in raw["datasets"].items():
        if entry["kind"] not in KINDS:
            _fail(path, f"datasets.{ds}.kind", _choices(entry["kind"], KINDS))
        try:
            params = resolve_params(entry["kind"], entry.get("params"))
        except (KeyError, ValueError) as exc:  # an unknown key, or a value the generator cannot simulate
            _fail(path, f"datasets.{ds}.params", str(exc.args[0]))
        for key in ("n_frames", "n_trajectories"):
            if key in params and not (isinstance(params[key], int) and params[key] >= 1):
                _fail(path, f"datasets.{ds}.params.{key}", f"must be a positive integer, got {params[key]!r}")

    for variant, entry in raw["methods"].items():
        entry = entry or {}
        method = entry.get("method", variant)
        if method not in REGISTRY:
            _fail(path, f"methods.{variant}" + (".method" if "method" in entry else ""),
                  _choices(method, REGISTRY))
        try:
            make_method(method, entry.get("params", {}))
        except (KeyError, ValueError, TypeError) as exc:
            _fail(path, f"methods.{variant}.params", str(exc.args[0] if exc.args else exc))
        for ds in entry.get("dataset_params") or {}:
            key = f"methods.{variant}.dataset_params.{ds}"
            if ds not in raw["datasets"]:
                _fail(path, key, _choices(ds, raw["datasets"]))
            try:
                make_method(method, entry_params(entry, ds))
            except (KeyError, ValueError, TypeError) as exc:
                _fail(path, key, str(exc.args[0] if exc.args else exc))
        if "shares_training_with" in entry:
            _check_shared_training(path, raw["methods"], variant, REGISTRY)
        _check_budget(path, f"methods.{variant}.budget", entry.get("budget") or {})

    specs = {}
    for task, entry in raw["tasks"].items():
        for i, ds in enumerate(entry["datasets"]):
            if ds not in raw["datasets"]:
                _fail(path, f"tasks.{task}.datasets[{i}]", _choices(ds, raw["datasets"]))
        for i, m in enumerate(entry.get("methods", [])):
            if m not in raw["methods"]:
                _fail(path, f"tasks.{task}.methods[{i}]", _choices(m, raw["methods"]))
        try:
            spec = make_spec(entry["protocol"], entry["params"])
        except (TaskError, TypeError) as exc:
            _fail(path, f"tasks.{task}.params", str(exc))
        specs[task] = spec
        longest = "delta_frame" if entry["protocol"] == "window" else "horizon"
        if "ladder" in entry:
            try:
                check_rungs(entry["ladder"]["rungs"], spec.delta_frame, longest)
            except TaskError as exc:
                _fail(path, f"tasks.{task}.ladder.rungs", str(exc))
        for ds in entry["datasets"]:
            dentry = raw["datasets"][ds]
            if entry.get("primary") == "mse_aligned" and KINDS[dentry["kind"]].periodic:
                _fail(path, f"tasks.{task}.primary",
                      f"mse_aligned superposes molecules frame by frame; dataset {ds!r} (kind {dentry['kind']!r}) "
                      "is a periodic box: use mse, or list only molecular datasets in this task")
            frames = resolve_params(dentry["kind"], dentry.get("params")).get("n_frames")
            if frames is not None and spec.delta_frame + spec.observed > frames:
                _fail(path, f"tasks.{task}.params.{longest}",
                      f"{spec.delta_frame} (+ observed {spec.observed}) does not fit in dataset {ds!r} "
                      f"of {frames} frames per trajectory")
            # the test windows of one trajectory start within frames - delta_frame - observed + 1 frames
            span = None if frames is None else frames - spec.delta_frame - spec.observed + 1
            if "block_frames" in entry and span is not None and entry["block_frames"] >= span:
                _fail(path, f"tasks.{task}.block_frames",
                      f"a block of {entry['block_frames']} frames is not shorter than the {span} frames over which "
                      f"test windows of one trajectory of dataset {ds!r} can start ({frames} frames - "
                      f"{longest} {spec.delta_frame} - observed {spec.observed} + 1): no two blocks to resample")

    if device is not None and device != "auto" and not (device == "cpu" or device.startswith("cuda")):
        _fail(path, "device", f"{device!r} is not one of auto, cpu, cuda, cuda:N")
    return _build(raw, path, specs, work_dir=Path(work_dir or "work"),
                  results_dir=Path(results_dir or default_results_dir(name)),
                  device=device or raw.get("device", "auto"),
                  only_methods=_subset(methods, {**raw["methods"], **dict.fromkeys(AUTO_BASELINES)}, "methods"),
                  only_datasets=_subset(datasets, raw["datasets"], "datasets"))


AUTO_BASELINES = ("static",)  # the trivial baselines every task runs, listed or not


def with_baselines(methods) -> tuple[str, ...]:
    """A task's method entries with :data:`AUTO_BASELINES` appended where the YAML leaves them out."""
    return tuple(methods) + tuple(b for b in AUTO_BASELINES if b not in methods)


def _build(raw: dict, path: Path, specs: dict, work_dir: Path, results_dir: Path, device: str,
           only_methods: list[str] | None, only_datasets: list[str] | None) -> Suite:
    """The typed suite of a validated YAML (``specs``: each task's checked spec)."""
    datasets = {
        ds: DatasetEntry(name=ds, kind=e["kind"], params=resolve_params(e["kind"], e.get("params")),
                         overrides=dict(e.get("params") or {}), seed=e.get("seed", 0),
                         description=e.get("description", ""), as_written=e)
        for ds, e in raw["datasets"].items()}
    methods = {}
    # The baselines every table measures against (a task's reference row, skill's denominator): added to
    # every task, and to the suite's methods when absent, so a suite of the user's own method alone works.
    entries = {**raw["methods"], **{b: None for b in AUTO_BASELINES if b not in raw["methods"]}}
    for variant, e in entries.items():
        e = e or {}
        method = e.get("method", variant)
        methods[variant] = MethodEntry(
            variant=variant, method=method, params=dict(e.get("params", {})),
            dataset_params=dict(e.get("dataset_params") or {}), budget=dict(e.get("budget", {})),
            shares_training_with=e.get("shares_training_with"), trained=issubclass(REGISTRY[method], TorchMethod),
            seed_dependent=REGISTRY[method].seed_dependent)
    tasks = {}
    for task, e in raw["tasks"].items():
        split = e.get("split", {})
        tasks[task] = TaskEntry(
            name=task, protocol=e["protocol"], spec=specs[task], datasets=tuple(e["datasets"]),
            methods=with_baselines(e.get("methods", list(raw["methods"]))),
            split=SplitEntry(strategy=split.get("strategy", "by_trajectory"), seed=int(split.get("seed", 0)),
                             params=dict(split.get("params", {}))),
            optimiser=dict(e.get("optimiser", {})), velocities=e.get("velocities", "stored"),
            atoms=e.get("atoms", "all"), graph=dict(e.get("graph", {"kind": "none"})),
            metrics=dict(e.get("metrics") or {}), tables=tuple(e.get("tables", [])),
            description=e.get("description", ""), as_written=e,
            ladder=tuple(e["ladder"]["rungs"]) if "ladder" in e else default_rungs(specs[task].delta_frame),
            block_frames=e.get("block_frames"), primary=e.get("primary", "mse"))
    cells = tuple(Cell(t, d, m, s) for t, e in tasks.items()
                  for d in e.datasets if only_datasets is None or d in only_datasets
                  for m in e.methods if only_methods is None or m in only_methods
                  for s in raw["seeds"])
    return Suite(name=raw["name"], path=path, description=raw.get("description", ""), seeds=list(raw["seeds"]),
                 device=device, datasets=datasets, tasks=tasks, methods=methods,
                 layout=Layout(raw["name"], work_dir, results_dir),
                 only_methods=only_methods, only_datasets=only_datasets, cells=cells)


def _subset(value, valid, key) -> list[str] | None:
    if value is None or value == "":
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    for item in items:
        if item not in valid:
            raise ConfigError(f"config key {key!r}: {_choices(item, valid)}")
    return items


def check_workflow_config(config: dict) -> None:
    """Reject unknown ``--config`` keys given to Snakemake."""
    unknown = sorted(set(config) - set(WORKFLOW_KEYS))
    if unknown:
        raise ConfigError(f"unknown workflow config key(s) {unknown}; valid keys: {', '.join(WORKFLOW_KEYS)} "
                          "(see docs/running.md)")
