"""The suite model: typed, frozen entries of a validated suite, built once by
:func:`benchmark.config.load_suite`, and the one definition of where every file lives.

* :class:`DatasetEntry`, :class:`TaskEntry`, :class:`MethodEntry`: the suite's entries with their
  resolved parameters (a dataset's params over its kind's defaults; a task's checked protocol
  spec, so ``task.spec.delta_frame``; a method entry's ``dataset_params``).
* :class:`ResolvedMethod`: a method entry as one cell runs it (:meth:`Suite.method_entry`).
* :class:`Layout`: the work/results directory layout; the Snakefile builds its rules' paths from
  it (with wildcards such as ``"{task}"`` as the arguments), the CLI its files.
* :meth:`Suite.config_hash`: the hash of what defines a cell's numbers.  Runs record it, so it
  hashes each entry *as written in the YAML* (``as_written``): hashing the resolved values
  instead would change every recorded hash.

Transitional: ``entry["key"]`` / ``entry.get("key")`` on the entries and ``Suite.raw`` read the
YAML as written, for the reporting modules that still do; new code uses the typed fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from benchmark.io import stable_hash
from benchmark.specs import ExtrapolateSpec, WindowSpec


@dataclass(frozen=True)
class Cell:
    """One cell of the matrix: a method entry on one dataset of one task, for one seed."""

    task: str
    dataset: str
    variant: str  # the suite's method entry name (e.g. gfnode_no_ode)
    seed: int


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset of the suite: a kind (generator or download) with its parameters."""

    name: str
    kind: str
    params: dict  # the kind's defaults overridden by the suite's params
    overrides: dict  # the suite's params only (what the builder and the manifest are given)
    seed: int
    description: str
    as_written: dict = field(repr=False, compare=False)


@dataclass(frozen=True)
class SplitEntry:
    """How a task's split file is drawn (:mod:`benchmark.splits`)."""

    strategy: str = "by_trajectory"
    seed: int = 0
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TaskEntry:
    """A task: a protocol with its checked spec, on some datasets, for some method entries."""

    name: str
    protocol: str  # window | extrapolate
    spec: WindowSpec | ExtrapolateSpec
    datasets: tuple[str, ...]
    methods: tuple[str, ...]  # the suite's method entries this task runs (all when the YAML names none)
    split: SplitEntry
    optimiser: dict  # trainer settings over a trained method's own params
    velocities: str  # stored | difference
    atoms: str  # all | heavy
    graph: dict  # {"kind": "none"} or {"kind": "molecular", ...}
    metrics: dict  # extra metrics switched on (structure, dihedrals, rdf); {} for none
    tables: tuple[str, ...]  # paper tables/figures this task's results regenerate
    description: str
    as_written: dict = field(repr=False, compare=False)
    # the predictability-horizon ladder: query offsets in frames at which the test windows are evaluated
    # again (key ``ladder: {rungs: [...]}``, default ``specs.default_rungs``); see benchmark/report/horizon.py
    ladder: tuple[int, ...] = ()
    block_frames: int | None = None  # bootstrap block (frames) for a single test trajectory (benchmark/stats.py)
    # the primary metric (key ``primary``): mse (raw) or mse_aligned (molecules); see benchmark.metrics.primary
    primary: str = "mse"

    @property
    def delta_frame(self) -> int:
        """The longest query offset in frames (a window task's delta_frame, an extrapolation's horizon)."""
        return self.spec.delta_frame

    @property
    def hashed(self) -> dict:
        """The entry as written minus what does not change a cell's numbers (its method list,
        description and table tags)."""
        return {k: v for k, v in self.as_written.items() if k not in ("methods", "description", "tables")}


@dataclass(frozen=True)
class MethodEntry:
    """A method entry (variant) of the suite: a registered method with its params."""

    variant: str
    method: str  # the registered method (methods.REGISTRY)
    params: dict
    dataset_params: dict  # per dataset: params over ``params`` on that dataset only
    budget: dict  # methods.Budget fields
    shares_training_with: str | None
    trained: bool  # a torch method: a task's optimiser settings apply to it
    seed_dependent: bool  # False: every seed gives the first seed's numbers

    def params_on(self, dataset: str | None) -> dict:
        """The params, with the ``dataset_params`` of ``dataset`` on top (a new dict)."""
        return {**self.params, **self.dataset_params.get(dataset, {})}


@dataclass(frozen=True)
class ResolvedMethod:
    """A method entry as a cell runs it: its params on the cell's dataset, with the task's
    optimiser settings on top for a trained method."""

    variant: str
    method: str
    params: dict
    budget: dict
    shares_training_with: str | None

    @property
    def hashed(self) -> dict:
        out = {"method": self.method, "params": self.params, "budget": self.budget}
        if self.shares_training_with:  # only when set: it must not change other entries' hashes
            out["shares_training_with"] = self.shares_training_with
        return out


def _seed_part(seed) -> str:
    return f"seed{seed}"


RUNS_FILE = "runs.csv"  # one row per run, beside metrics.csv (benchmark/aggregate.py)
SKILL_FILE = "skill.csv"  # skill against the best trivial baseline, with intervals, beside metrics.csv

@dataclass(frozen=True)
class Layout:
    """Where a suite's files live.  Arguments may be Snakemake wildcards (``"{task}"``).

    work dir:    data/<dataset>/, splits/<suite>/<task>/<dataset>.json,
                 models|checkpoints/<suite>/<task>/<dataset>/<variant>/seed<N>[.pt],
                 logs/<suite>/<stage>/..., locks/
    results dir: runs/<task>/<dataset>/<variant>/seed<N>.json, runs.csv, metrics.csv, tables/, plots/,
                 data/<dataset>.md
    """

    suite: str
    work_dir: Path
    results_dir: Path

    def dataset_dir(self, dataset: str) -> Path:
        return self.work_dir / "data" / dataset

    def manifest(self, dataset: str) -> Path:
        return self.dataset_dir(dataset) / "manifest.json"

    def split(self, task: str, dataset: str) -> Path:
        return self.work_dir / "splits" / self.suite / task / f"{dataset}.json"

    def model(self, task: str, dataset: str, variant: str, seed) -> Path:
        return self.work_dir / "models" / self.suite / task / dataset / variant / f"{_seed_part(seed)}.pt"

    def checkpoint_dir(self, task: str, dataset: str, variant: str, seed) -> Path:
        return self.work_dir / "checkpoints" / self.suite / task / dataset / variant / _seed_part(seed)

    def data_log(self, dataset: str) -> Path:
        return self.work_dir / "logs" / self.suite / "data" / f"{dataset}.log"

    def cell_log(self, stage: str, task: str, dataset: str, variant: str, seed) -> Path:
        return self.work_dir / "logs" / self.suite / stage / task / dataset / variant / f"{_seed_part(seed)}.log"

    @property
    def locks_dir(self) -> Path:
        return self.work_dir / "locks"

    def run(self, task: str, dataset: str, variant: str, seed) -> Path:
        return self.results_dir / "runs" / task / dataset / variant / f"{_seed_part(seed)}.json"

    @property
    def metrics(self) -> Path:
        return self.results_dir / "metrics.csv"

    @property
    def runs(self) -> Path:
        return self.results_dir / RUNS_FILE

    @property
    def skill(self) -> Path:
        return self.results_dir / SKILL_FILE

    @property
    def tables_dir(self) -> Path:
        return self.results_dir / "tables"

    def table(self, name: str) -> Path:
        return self.tables_dir / f"{name}.md"

    @property
    def plots_dir(self) -> Path:
        return self.results_dir / "plots"

    def data_report(self, dataset: str) -> Path:
        return self.results_dir / "data" / f"{dataset}.md"


def default_results_dir(suite_name: str) -> str:
    """``results`` for the default suite (the published leaderboard), else ``results/<suite>``."""
    return "results" if suite_name == "default" else f"results/{suite_name}"


@dataclass(frozen=True, eq=False)
class Suite:
    """A validated suite: its entries, the matrix of cells (after ``methods``/``datasets``
    subsets) and its layout.  Build it with :func:`benchmark.config.load_suite`."""

    name: str
    path: Path
    description: str
    seeds: list[int]
    device: str
    datasets: dict[str, DatasetEntry]
    tasks: dict[str, TaskEntry]
    methods: dict[str, MethodEntry]
    layout: Layout
    only_methods: list[str] | None
    only_datasets: list[str] | None
    cells: tuple[Cell, ...]

    # ---- the matrix -------------------------------------------------------
    def method_entry(self, variant: str, task: str | None = None, dataset: str | None = None) -> ResolvedMethod:
        """The entry ``variant`` as run: with ``dataset``, its ``dataset_params`` for it override the
        params; with ``task``, the task's ``optimiser`` settings override the params of a trained
        (torch) method."""
        entry = self.methods[variant]
        params = entry.params_on(dataset)
        if task is not None and entry.trained:
            params.update(self.tasks[task].optimiser)
        return ResolvedMethod(variant, entry.method, params, dict(entry.budget), entry.shares_training_with)

    def task_methods(self, task: str) -> list[str]:
        return [m for m in self.tasks[task].methods if self.only_methods is None or m in self.only_methods]

    def task_datasets(self, task: str) -> list[str]:
        return [d for d in self.tasks[task].datasets if self.only_datasets is None or d in self.only_datasets]

    def selected_methods(self) -> list[str]:
        """The suite's method entries within the ``methods`` subset."""
        return [m for m in self.methods if self.only_methods is None or m in self.only_methods]

    def selected_datasets(self) -> list[str]:
        """The suite's datasets within the ``datasets`` subset."""
        return [d for d in self.datasets if self.only_datasets is None or d in self.only_datasets]

    def split_seed(self, task: str) -> int:
        return self.tasks[task].split.seed

    def config_hash(self, cell: Cell) -> str:
        """Hash of everything that defines a cell's result except the seed (a task's method list,
        description and table tags do not change a cell's numbers, so they are left out)."""
        return stable_hash({"dataset": self.datasets[cell.dataset].as_written, "task": self.tasks[cell.task].hashed,
                            "method": self.method_entry(cell.variant, cell.task, cell.dataset).hashed})

    # ---- paths (see Layout) ----------------------------------------------------
    @property
    def work_dir(self) -> Path:
        return self.layout.work_dir

    @property
    def results_dir(self) -> Path:
        return self.layout.results_dir

    def default_dir(self, key: str) -> str:
        return {"work_dir": "work", "results_dir": default_results_dir(self.name)}[key]

    def dataset_dir(self, dataset: str) -> Path:
        return self.layout.dataset_dir(dataset)

    def split_path(self, task: str, dataset: str) -> Path:
        return self.layout.split(task, dataset)

    def model_path(self, c: Cell) -> Path:
        return self.layout.model(c.task, c.dataset, c.variant, c.seed)

    def checkpoint_dir(self, c: Cell) -> Path:
        return self.layout.checkpoint_dir(c.task, c.dataset, c.variant, c.seed)

    def run_path(self, c: Cell) -> Path:
        return self.layout.run(c.task, c.dataset, c.variant, c.seed)

    @property
    def metrics_path(self) -> Path:
        return self.layout.metrics

    @property
    def runs_path(self) -> Path:
        return self.layout.runs

    @property
    def skill_path(self) -> Path:
        return self.layout.skill

    @property
    def tables_dir(self) -> Path:
        return self.layout.tables_dir
