"""The leaderboard: ``mdhorizon leaderboard`` writes the papers' tables, the cross-paper matrix, the
figures, ``results/LEADERBOARD.md`` (the board's status and an index) and the README's headline,
all from ``metrics.csv`` only.

Tasks say which paper table they regenerate (``tables:`` in the suite YAML); published numbers
come from ``benchmark/published.yaml`` and are printed beside ours, labelled. The package's
modules, one job each: :mod:`~benchmark.report.cells` (picking cells), :mod:`~benchmark.report.ranking`,
:mod:`~benchmark.report.formatting`, :mod:`~benchmark.report.markdown`, :mod:`~benchmark.report.notes`,
:mod:`~benchmark.report.paper_tables`, :mod:`~benchmark.report.cross_paper` (and the headline),
:mod:`~benchmark.report.status`, :mod:`~benchmark.report.figures` (drawing),
:mod:`~benchmark.report.figure_series` (what each figure shows), :mod:`~benchmark.report.task_tables`
(``mdhorizon tables``) and :mod:`~benchmark.report.spectrum` (GF-NODE Fig. 4, ``mdhorizon spectrum``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd

from benchmark.aggregate import read_metrics
from benchmark.config import Suite
from benchmark.io import write_text
from benchmark.report.claims import claims_table
from benchmark.report.cross_paper import README, cross_paper, write_headline
from benchmark.report.curves import curve_outputs
from benchmark.report.figure_series import FIGURES, write_figures
from benchmark.report.horizon import predictability_horizon
from benchmark.report.paper_tables import leakage, paper_table
from benchmark.report.spectrum import fig4_cell
from benchmark.report.status import status_lines
from benchmark.report.summary import summary_lines

# Every table of the board (results/tables/<id>.md): id -> its drawing from (suite, metrics table),
# in the order LEADERBOARD.md lists them. The one list of the table ids.
TABLES = {
    **{tid: partial(paper_table, table_id=tid) for tid in ("gfnode_table1", "gfnode_table4", "gfnode_table2",
                                                           "domino_table1", "gfnode_table3", "domino_table3")},
    "cross_paper": cross_paper,
    "leakage": leakage,
    "claims": claims_table,
    "predictability_horizon": predictability_horizon,
}


def render_tables(suite: Suite, table: pd.DataFrame) -> dict[str, str]:
    """Every table of the board: id -> markdown."""
    return {tid: draw(suite, table) for tid, draw in TABLES.items()}


def claims_line() -> list[str]:
    """The links to the papers' claims, tested (``results/tables/claims.md``), and to the predictability
    horizon (the board's answer to "how far ahead"), near the top of LEADERBOARD.md."""
    return ["The papers' claims, tested on these numbers (supported, contradicted, not separable or not "
            "testable, cell by cell): [claims](tables/claims.md). How far ahead each method beats the best "
            "trivial baseline, per system: [predictability horizon](tables/predictability_horizon.md) "
            "([figure](plots/skill_vs_horizon.png)).", ""]


def leaderboard_md(suite: Suite, table: pd.DataFrame, tables: dict) -> str:
    """``results/LEADERBOARD.md``: the five-line summary, the board's status, links to its tables and
    figures, the cross-paper matrix."""
    lines = ["# mdhorizon leaderboard", "", *summary_lines(suite, table), "",
             f"Suite `{suite.name}` ({suite.description}); seeds {suite.seeds}.", "",
             *claims_line(),
             "## Status", "", *status_lines(suite, table),
             "", "Reproduce any cell with the command in the `command` column of `runs.csv`, e.g. "
             "`snakemake --cores 2 results/runs/<task>/<dataset>/<method>/seed0.json --forcerun train_cell`; "
             "the whole board with `snakemake --cores 8 all` (`make bench`).", "",
             "## Tables", ""]
    lines += [f"- [{tid}](tables/{tid}.md)" for tid in tables]
    lines += ["- per task: " + ", ".join(f"[{t}](tables/{t}.md)" for t in suite.tasks), "",
              "## Figures", ""]
    lines += [f"![{name}](plots/{name}.png)" for name in FIGURES]
    lines += [f"- learning curves: [{p.stem}](plots/curves/{p.name})" for p in curve_outputs(suite)]
    c = fig4_cell(suite)
    if c is not None:  # drawn from the trained model (rule gfnode_fig4), not from metrics.csv
        lines += ["", f"GF-NODE Fig. 4, from the trained `{c.variant}` model of `{c.task}` / `{c.dataset}` seed "
                  f"{c.seed} (`mdhorizon spectrum`; there once that model is trained):", "",
                  "![gfnode_fig4](plots/gfnode_fig4.png)"]
    lines += ["", "## Cross-paper matrix", "", tables["cross_paper"].split("\n", 2)[2]]
    return "\n".join(lines)


def write_leaderboard(suite: Suite) -> list[Path]:
    """Write the board's tables, figures and LEADERBOARD.md (and, for the published board, the
    README's headline); the paths written."""
    table = read_metrics(suite.metrics_path)
    tables = render_tables(suite, table)
    written = []
    for tid, text in tables.items():
        path = suite.tables_dir / f"{tid}.md"
        write_text(path, text)
        written.append(path)
    written += write_figures(suite, table, suite.results_dir / "plots")
    path = suite.results_dir / "LEADERBOARD.md"
    write_text(path, leaderboard_md(suite, table, tables))
    if suite.results_dir.resolve() == (README.parent / "results").resolve():  # the published board
        written.append(write_headline(suite, table))
    return written + [path]


def leaderboard_outputs(suite: Suite) -> list[Path]:
    """What ``write_leaderboard`` writes (the Snakefile's rule ``leaderboard``), README aside."""
    return ([suite.tables_dir / f"{t}.md" for t in TABLES] + [suite.results_dir / "plots" / f"{f}.png" for f in FIGURES]
            + curve_outputs(suite) + [suite.results_dir / "LEADERBOARD.md"])
