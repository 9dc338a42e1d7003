"""``mdhorizon``: the command line of the harness (Snakemake calls these too).

  mdhorizon list methods|datasets|suites|cells [--suite S]
  mdhorizon validate [--suite S]
  mdhorizon data make DATASET [--jobs N] [--suite S]
  mdhorizon data import KIND DIR [--suite S]   (verify + convert local copies of md17/rmd17/ala2 files)
  mdhorizon data import DATASET DIR [--suite S]   (a built dataset, e.g. another machine's work/data/DATASET)
  mdhorizon data report DATASET [--suite S]    (physics checks -> <results>/data/DATASET.md, .json; exit 1 if FAILED)
  mdhorizon split --task T --dataset D [--suite S]
  mdhorizon train|evaluate|run --task T --dataset D --method V --seed N [--suite S]
  mdhorizon aggregate|tables [--suite S]
  mdhorizon spectrum [--suite S]               (GF-NODE Fig. 4 from the trained gfnode model)

``run`` does one cell of the matrix by hand: data and split when missing,
then train and evaluate.  Common options: ``--suite`` (name or YAML path),
``--work-dir``, ``--results-dir``, ``--device``, ``--threads``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from benchmark import runner
from benchmark.aggregate import write_metrics
from benchmark.clean import clean
from benchmark.config import SUITES_DIR, Cell, ConfigError, load_suite
from benchmark.data.download import import_command
from benchmark.data.registry import KINDS, import_build
from benchmark.data.report import failed_checks, write_report
from benchmark.errors import UserError, one_line
from benchmark.report.leaderboard import write_leaderboard
from benchmark.report.spectrum import write_fig4
from benchmark.report.task_tables import write_tables
from methods import REGISTRY


def _common(p: argparse.ArgumentParser, cell: bool = False) -> None:
    p.add_argument("--suite", default="default", help="suite name in configs/suites or a YAML path")
    p.add_argument("--work-dir", default=None, help="data, splits, models, checkpoints (default: work)")
    p.add_argument("--results-dir", default=None, help="runs, metrics.csv, tables")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads for this process")
    if cell:
        p.add_argument("--task", required=True)
        p.add_argument("--dataset", required=True)
        p.add_argument("--method", required=True, help="the suite's method entry (variant) name")
        p.add_argument("--seed", type=int, required=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mdhorizon", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="print registered methods, dataset kinds, suites or a suite's cells")
    p.add_argument("what", choices=["methods", "datasets", "suites", "cells"])
    _common(p)
    _common(sub.add_parser("validate", help="validate a suite config and print its matrix size"))
    p = sub.add_parser("data", help="make a dataset of the suite, or import local copies of downloaded files")
    p.add_argument("action", choices=["make", "import", "report"])
    p.add_argument("dataset", help="make: a dataset of the suite; import: a dataset kind (md17, rmd17, ala2) "
                   "whose raw files DIR holds, or a dataset of the suite whose build (manifest.json and "
                   "trajectories) DIR holds")
    p.add_argument("source", nargs="?", help="import: the directory holding the files or the build")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--jobs", type=int, default=1,
                   help="make: trajectories simulated at once, one process each (same bytes as 1)")
    _common(p)
    p = sub.add_parser("split", help="build the split file of a task on a dataset")
    p.add_argument("--task", required=True)
    p.add_argument("--dataset", required=True)
    _common(p)
    for name, text in [("train", "fit one cell"), ("evaluate", "evaluate one trained cell"),
                       ("run", "one cell by hand: data, split, train, evaluate")]:
        _common(sub.add_parser(name, help=text), cell=True)
    _common(sub.add_parser("aggregate", help="run JSONs -> runs.csv, metrics.csv and skill.csv (reports missing runs)"))
    _common(sub.add_parser("tables", help="metrics.csv -> markdown tables"))
    _common(sub.add_parser("leaderboard", help="metrics.csv -> the papers' tables, figures and LEADERBOARD.md"))
    _common(sub.add_parser("spectrum", help="GF-NODE Fig. 4: temporal spectrum of the graph Fourier modes "
                                            "of the trained gfnode model -> <results>/plots/gfnode_fig4.png"))
    p = sub.add_parser("clean", help="remove caches under the work dir (never results)")
    p.add_argument("kinds", nargs="*", default=["checkpoints", "logs"],
                   help="checkpoints logs models splits data (default: checkpoints logs)")
    _common(p)
    return parser


def _suite(args):
    return load_suite(args.suite, work_dir=args.work_dir, results_dir=args.results_dir, device=args.device)


def _cell(suite, args) -> Cell:
    cell = Cell(args.task, args.dataset, args.method, args.seed)
    if cell not in suite.cells:
        raise ConfigError(f"{suite.path}: cell {cell} is not in suite {suite.name!r}; "
                          f"see `mdhorizon list cells --suite {suite.name}`")
    return cell


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    try:
        return _dispatch(args)
    except UserError as exc:  # the user's input: one line naming the file or key and the fix
        print(one_line(exc), file=sys.stderr)
        return exc.exit_code


def _dispatch(args) -> int:
    if args.command == "list" and args.what == "methods":
        for name, cls in REGISTRY.items():
            print(f"{name}\t{cls.description}")
        return 0
    if args.command == "list" and args.what == "datasets":
        for name, kind in KINDS.items():
            print(f"{name}\t{kind.description}")
        return 0
    if args.command == "list" and args.what == "suites":
        for path in sorted(SUITES_DIR.glob("*.yaml")):
            print(path.stem)
        return 0
    suite = _suite(args)
    device = suite.device
    if args.command == "list":  # cells
        for c in suite.cells:
            print(f"{c.task}\t{c.dataset}\t{c.variant}\t{c.seed}")
        return 0
    if args.command == "validate":
        print(f"{suite.path}: valid; {len(suite.cells)} cells "
              f"({len(suite.tasks)} tasks, {len(suite.datasets)} datasets, {len(suite.methods)} methods, "
              f"{len(suite.seeds)} seeds)")
        return 0
    if args.command == "data" and args.action == "report":
        if args.dataset not in suite.datasets:
            raise ConfigError(f"{suite.path}: dataset {args.dataset!r} not in suite; "
                              f"valid: {', '.join(suite.datasets)}")
        out = write_report(suite.dataset_dir(args.dataset), suite.layout.data_report(args.dataset),
                           name=args.dataset)
        print(out)
        failures = failed_checks(out)  # the report is written either way; the exit status says FAILED
        for failure in failures:
            print(f"FAILED: {args.dataset}: {failure}", file=sys.stderr)
        return 1 if failures else 0
    if args.command == "data":
        if args.action == "import":
            if not args.source:
                raise ConfigError("data import needs a directory: mdhorizon data import <kind> /path/to/dir")
            if not (args.dataset in suite.datasets and (Path(args.source) / "manifest.json").exists()):
                return import_command(suite, args.dataset, args.source, progress=not args.no_progress)
            entry = suite.datasets[args.dataset]  # a built dataset, e.g. another machine's work/data/<name>
            ds = import_build(suite.dataset_dir(args.dataset), args.source, args.dataset, entry.kind,
                              entry.overrides, entry.seed)
        elif args.dataset not in suite.datasets:
            raise ConfigError(f"{suite.path}: dataset {args.dataset!r} not in suite; "
                              f"valid: {', '.join(suite.datasets)}")
        else:
            if not suite.layout.manifest(args.dataset).exists():
                notice = runner.vendor_notice(suite, args.dataset)
                if notice:
                    print(notice, file=sys.stderr)
            ds = runner.make_data(suite, args.dataset, progress=not args.no_progress, jobs=args.jobs)
        print(f"{ds.path}: {len(ds)} trajectories, checksum {ds.checksum[:16]}")
        warning = runner.build_mismatch(suite, args.dataset, ds.checksum)
        if warning:
            print(warning, file=sys.stderr)
        return 0
    if args.command == "split":
        runner.make_split(suite, args.task, args.dataset)
        print(suite.split_path(args.task, args.dataset))
        return 0
    if args.command in ("train", "evaluate", "run"):
        cell = _cell(suite, args)
        if args.command == "run":
            if not suite.layout.manifest(cell.dataset).exists():
                runner.make_data(suite, cell.dataset)
            if not suite.split_path(cell.task, cell.dataset).exists():
                runner.make_split(suite, cell.task, cell.dataset)
        if args.command in ("train", "run"):
            record = runner.train_cell(suite, cell, device)
            print(f"trained {cell}: status {record['status']} in {record['train_seconds']:.1f} s")
        if args.command in ("evaluate", "run"):
            run = runner.evaluate_cell(suite, cell, device)
            test = [r for r in run["rows"] if r["split"] == "test" and r["metric"] == "mse"]
            summary = ", ".join(f"{r['convention']}={r['value']:.5g}" for r in test if r["value"] is not None)
            print(f"{suite.run_path(cell)}: status {run['status']}; test MSE (A^2) {summary or '-'}")
        return 0
    if args.command == "aggregate":
        table, missing = write_metrics(suite)
        print(f"{suite.metrics_path}: {len(table)} rows")
        if missing:
            print(f"warning: {len(missing)} expected run(s) missing (rows marked 'missing'):", file=sys.stderr)
            for path in missing[:20]:
                print(f"  {path}", file=sys.stderr)
        other = table[table["status"] == "other_build"].drop_duplicates(["task", "dataset", "variant", "seed"])
        if len(other):
            print(f"warning: {len(other)} run(s) on another build of their dataset than the board's, left out "
                  "of the means (status 'other_build'; the note in runs.csv names both builds):", file=sys.stderr)
            for r in other.head(20).itertuples():
                print(f"  {r.task}/{r.dataset}/{r.variant}/seed{r.seed}", file=sys.stderr)
        return 0
    if args.command == "clean":
        try:
            removed = clean(suite.work_dir, suite.results_dir, args.kinds)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        for path, size in removed:
            print(f"removed {path} ({size / 2**20:.1f} MiB)")
        if not removed:
            print(f"nothing to remove under {suite.work_dir}")
        return 0
    if args.command == "leaderboard":
        for path in write_leaderboard(suite):
            print(path)
        return 0
    if args.command == "spectrum":
        print(write_fig4(suite))
        return 0
    if args.command == "tables":
        for path in write_tables(suite):
            print(path)
        return 0
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
