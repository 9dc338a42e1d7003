"""Suites: YAML configs validated by a JSON schema, then resolved into the run matrix.

Every error names the file, the key, the bad value and the valid choices, and
is raised before any job runs (the Snakefile loads the suite at parse time).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from benchmark.io import stable_hash

ROOT = Path(__file__).resolve().parent.parent
SUITES_DIR = ROOT / "configs" / "suites"
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "suite.schema.json"
# Keys accepted on the Snakemake command line (``--config key=value``).
WORKFLOW_KEYS = {
    "suite": "suite name in configs/suites/ or a path to a suite YAML (default: default)",
    "work_dir": "where generated data, splits, models, checkpoints and caches live (default: work)",
    "results_dir": "where run JSONs, metrics.csv and tables go (default: results, or results/<suite>)",
    "methods": "comma-separated subset of the suite's method entries to run",
    "datasets": "comma-separated subset of the suite's datasets to run",
    "device": "auto | cpu | cuda | cuda:N (overrides the suite's device)",
}


class ConfigError(ValueError):
    """A config error; the message names the file and key."""


@dataclass(frozen=True)
class Cell:
    """One cell of the matrix: a method entry on one dataset of one task, for one seed."""

    task: str
    dataset: str
    variant: str  # the suite's method entry name (e.g. gfnode_no_ode)
    seed: int


@dataclass
class Suite:
    name: str
    path: Path
    raw: dict
    work_dir: Path
    results_dir: Path
    device: str = "auto"
    only_methods: list[str] | None = None
    only_datasets: list[str] | None = None
    cells: list[Cell] = field(default_factory=list)

    # ---- the matrix -------------------------------------------------------
    @property
    def seeds(self) -> list[int]:
        return list(self.raw["seeds"])

    @property
    def datasets(self) -> dict:
        return self.raw["datasets"]

    @property
    def tasks(self) -> dict:
        return self.raw["tasks"]

    @property
    def methods(self) -> dict:
        return self.raw["methods"]

    def method_entry(self, variant: str, task: str | None = None, dataset: str | None = None) -> dict:
        """The resolved entry of ``variant``; with ``dataset``, the entry's ``dataset_params`` for
        it override the params; with ``task``, the task's ``optimiser`` settings override the
        params of a trained (torch) method."""
        from methods import REGISTRY, TorchMethod

        entry = self.methods[variant] or {}
        params = entry_params(entry, dataset)
        method = entry.get("method", variant)
        if task is not None and issubclass(REGISTRY[method], TorchMethod):
            params.update(self.tasks[task].get("optimiser", {}))
        resolved = {"method": method, "params": params, "budget": entry.get("budget", {})}
        if entry.get("shares_training_with"):  # only when set: it must not change other entries' hashes
            resolved["shares_training_with"] = entry["shares_training_with"]
        return resolved

    def task_methods(self, task: str) -> list[str]:
        names = self.tasks[task].get("methods", list(self.methods))
        return [m for m in names if self.only_methods is None or m in self.only_methods]

    def task_datasets(self, task: str) -> list[str]:
        return [d for d in self.tasks[task]["datasets"] if self.only_datasets is None or d in self.only_datasets]

    def split_seed(self, task: str) -> int:
        return int(self.tasks[task].get("split", {}).get("seed", 0))

    def config_hash(self, cell: Cell) -> str:
        """Hash of everything that defines a cell's result except the seed (a task's method list,
        description and table tags do not change a cell's numbers, so they are left out)."""
        task = {k: v for k, v in self.tasks[cell.task].items() if k not in ("methods", "description", "tables")}
        return stable_hash({"dataset": self.datasets[cell.dataset], "task": task,
                            "method": self.method_entry(cell.variant, cell.task, cell.dataset)})

    # ---- paths --------------------------------------------------------------
    def default_dir(self, key: str) -> str:
        return {"work_dir": "work", "results_dir": default_results_dir(self.name)}[key]

    def dataset_dir(self, dataset: str) -> Path:
        return self.work_dir / "data" / dataset

    def split_path(self, task: str, dataset: str) -> Path:
        return self.work_dir / "splits" / self.name / task / f"{dataset}.json"

    def model_path(self, c: Cell) -> Path:
        return self.work_dir / "models" / self.name / c.task / c.dataset / c.variant / f"seed{c.seed}.pt"

    def checkpoint_dir(self, c: Cell) -> Path:
        return self.work_dir / "checkpoints" / self.name / c.task / c.dataset / c.variant / f"seed{c.seed}"

    def run_path(self, c: Cell) -> Path:
        return self.results_dir / "runs" / c.task / c.dataset / c.variant / f"seed{c.seed}.json"

    @property
    def metrics_path(self) -> Path:
        return self.results_dir / "metrics.csv"

    @property
    def tables_dir(self) -> Path:
        return self.results_dir / "tables"


def default_results_dir(suite_name: str) -> str:
    """``results`` for the default suite (the published leaderboard), else ``results/<suite>``."""
    return "results" if suite_name == "default" else f"results/{suite_name}"


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
    import jsonschema

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


def load_suite(name_or_path: str = "default", work_dir: str | None = None, results_dir: str | None = None,
               device: str | None = None, methods: str | list | None = None,
               datasets: str | list | None = None) -> Suite:
    """Load, validate and resolve a suite. Raises :class:`ConfigError` with the key at fault."""
    from benchmark.data.registry import KINDS, resolve_params
    from benchmark.tasks import TaskError, make_spec
    from methods import REGISTRY, make_method

    path = suite_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
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
        for ds in entry["datasets"]:
            dentry = raw["datasets"][ds]
            frames = resolve_params(dentry["kind"], dentry.get("params")).get("n_frames")
            if frames is not None and spec.delta_frame + spec.observed > frames:
                key = "delta_frame" if entry["protocol"] == "window" else "horizon"
                _fail(path, f"tasks.{task}.params.{key}",
                      f"{spec.delta_frame} (+ observed {spec.observed}) does not fit in dataset {ds!r} "
                      f"of {frames} frames per trajectory")

    suite = Suite(
        name=name, path=path, raw=raw,
        work_dir=Path(work_dir or "work"),
        results_dir=Path(results_dir or default_results_dir(name)),
        device=device or raw.get("device", "auto"),
    )
    if device is not None and device != "auto" and not (device == "cpu" or device.startswith("cuda")):
        _fail(path, "device", f"{device!r} is not one of auto, cpu, cuda, cuda:N")
    suite.only_methods = _subset(methods, raw["methods"], "methods")
    suite.only_datasets = _subset(datasets, raw["datasets"], "datasets")
    suite.cells = [Cell(t, d, m, s) for t in raw["tasks"] for d in suite.task_datasets(t)
                   for m in suite.task_methods(t) for s in raw["seeds"]]
    return suite


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
        lines = "\n  ".join(f"{k}: {v}" for k, v in WORKFLOW_KEYS.items())
        raise ConfigError(f"unknown workflow config key(s) {unknown}; valid keys:\n  {lines}")
