"""`snakemake --report` on a real smoke-suite run, and the README headline block written from it."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.aggregate import read_metrics
from benchmark.config import load_suite
from benchmark.report.cells import unconverged
from benchmark.report.cross_paper import HEADLINE, readme_headline, write_headline
from benchmark.report.leaderboard import leaderboard_outputs

ROOT = Path(__file__).resolve().parent.parent


def _snakemake(*args):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke suite's workflow (every method; the trained ones for a few steps)."""
    tmp = tmp_path_factory.mktemp("report")
    config = ["--config", "suite=smoke", f"work_dir={tmp / 'work'}", f"results_dir={tmp / 'results'}"]
    out = _snakemake("--cores", "2", "all", *config)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return tmp, config


@pytest.mark.slow
def test_snakemake_report_has_the_tables_and_figures(smoke_run):
    tmp, config = smoke_run
    html = tmp / "report.html"
    out = _snakemake("--report", str(html), *config)
    assert out.returncode == 0, out.stderr[-3000:]
    text = html.read_text()
    suite = load_suite("smoke", work_dir=str(tmp / "work"), results_dir=str(tmp / "results"))
    for path in leaderboard_outputs(suite) + [suite.tables_dir / f"{t}.md" for t in suite.tasks]:
        assert path.name in text, f"{path.name} is not in the report"
    for category in ("GF-NODE (Sun et al.)", "DoMiNO (Sun et al.)", "Cross-paper", "Leaderboard", "Per-task tables"):
        assert category in text, category


def test_headline_block_from_metrics(smoke_run, tmp_path):
    tmp, _ = smoke_run
    suite = load_suite("smoke", work_dir=str(tmp / "work"), results_dir=str(tmp / "results"))
    table = read_metrics(suite.metrics_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n\n{HEADLINE[0]}\nold\n{HEADLINE[1]}\n\nafter\n")
    write_headline(suite, table, readme)
    text = readme.read_text()
    assert text.startswith("# title\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    block = readme_headline(text)
    rows = [line for line in block.splitlines() if line.startswith("| ")]
    assert rows[0] == "| method | normalised rank | mean rank | cells ranked | significant wins | datasets ranked |"
    # the reference methods ran on the smoke suite's two (task, dataset) cells: both complete and ranked
    ranked = {r.split(" | ")[0][2:]: r for r in rows[1:]}
    assert {"constant_velocity", "static"} <= set(ranked) <= set(suite.methods)
    assert all(ranked[m].split(" | ")[3] == "2" and ranked[m].endswith(" | lj_tiny |")
               for m in ("constant_velocity", "static"))
    assert "2 of 2 cells are complete." in block
    # a method is left unranked only where a run of it did not converge (its few smoke steps), and says so
    unranked = re.findall(r"(\w+) \(left out: ([^)]*)\)", "".join(re.findall(r"Not ranked: (.*)\.", block)))
    not_converged = set(table.loc[unconverged(table), "variant"])
    assert all(m in not_converged and "not converged" in why for m, why in unranked), (unranked, not_converged)
    assert "no complete cell" not in block
    assert "the others wait" not in block  # every cell complete: no clause about waiting cells
    assert "snakemake --cores 2 all --forcerun leaderboard" in block
    write_headline(suite, table, readme)  # idempotent
    assert readme.read_text() == text
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="no headline block"):
        write_headline(suite, table, readme)


def _metric_rows(rows):
    import pandas as pd

    return pd.DataFrame([{"task": t, "dataset": "lj_tiny", "variant": v, "seed": 0, "split": "test", "metric": "mse",
                          "convention": "mean_over_offsets" if t == "lj_window" else "full_domain", "status": st,
                          "value": val} for t, v, st, val in rows])


def test_mean_rank_counts_complete_cells_only():
    """A cell where a method has not run yet is not ranked (the baselines, run first, would rank 1
    of too few); a diverged method ranks last; a method that did not run blocks the cell."""
    from benchmark.report.cross_paper import headline
    from benchmark.report.ranking import rank_columns

    suite = load_suite("smoke", methods="static,constant_velocity")  # a suite of these two methods
    table = _metric_rows([("lj_window", "static", "ok", 0.5), ("lj_window", "constant_velocity", "ok", 0.2),
                          ("lj_extrapolate", "static", "ok", 1.0),
                          ("lj_extrapolate", "constant_velocity", "missing", None)])
    *_, ranks, ranked = rank_columns(suite, table)
    assert ranked == [("lj_window", "lj_tiny")]
    assert ranks == {"static": [(2, 2)], "constant_velocity": [(1, 2)]}
    table.loc[3, "status"] = "diverged"
    *_, ranks, ranked = rank_columns(suite, table)
    assert ranked == [("lj_window", "lj_tiny"), ("lj_extrapolate", "lj_tiny")]
    assert ranks == {"static": [(2, 2), (1, 2)], "constant_velocity": [(1, 2), (2, 2)]}
    only_diverged = table.copy()
    only_diverged.loc[1, "status"], only_diverged.loc[1, "value"] = "diverged", None
    only_diverged.loc[3, "status"] = "missing"  # constant velocity's one ranked cell is where it diverged
    assert "| constant_velocity | 1.00 | 2.00 | 1 | n/a | lj_tiny |" in headline(suite, only_diverged)
    block = headline(suite, table.iloc[[0, 2]])  # constant velocity never ran: no cell complete
    assert "0 of 2 cells are complete; the others wait" in block and "No cell is complete yet." in block
    assert ("Not ranked: static (no complete cell yet); constant_velocity (no complete cell yet)." in block)


def test_normalised_rank_compares_cells_of_different_sizes():
    """3rd of 3 is last (1.0), 3rd of 11 is near the top (0.2)."""
    from benchmark.report.ranking import rank_stats

    assert rank_stats([(3, 3), (3, 11)]) == (3.0, 0.6)
    assert rank_stats([(1, 1)]) == (1.0, 0.0)


def test_std_of_identical_seeds_is_exactly_zero():
    """A seed-independent method's copies read ± 0 (plain np.std gives 1.7e-17 for [0.1] * 3)."""
    import numpy as np

    from benchmark.report.formatting import fmt_mean_std, sample_std

    values = np.array([0.1] * 3)
    assert values.std(ddof=1) != 0.0  # the rounding this guards against
    assert sample_std(values) == 0.0 and fmt_mean_std(values) == "0.1000 ± 0"
    assert sample_std(np.array([1.0, 2.0, 3.0])) == 1.0


def test_git_sha_line_counts_commits_and_dirty_runs():
    import pandas as pd

    from benchmark.report.status import git_sha_line

    assert git_sha_line(pd.Series([None], dtype=object)) == "- git sha: –"
    assert git_sha_line(pd.Series(["abc", "abc"])).startswith("- git sha: `abc`; 0 of 2 runs")
    line = git_sha_line(pd.Series(["abc", "abc-dirty", "def", None]))
    assert line.startswith("- git sha: 2 commits; 1 of 3 runs from a tree with uncommitted code changes")


def test_hardware_line_counts_runs_per_machine():
    import pandas as pd

    from benchmark.report.status import hardware_line

    assert hardware_line(pd.Series([None], dtype=object)) == "- hardware: –"
    line = hardware_line(pd.Series(["cpu B x2", "cpu A x2", "cpu A x2", None, "gpu"]))
    assert line.startswith("- hardware: cpu A x2 (2 runs); cpu B x2 (1 run); gpu (1 run); each run's machine")


def test_a_cell_names_its_seeds_without_a_number():
    """A cell with some seeds done says what the others are (`n=1; not yet run ×2`), not only n=1."""
    import pandas as pd

    from benchmark.report.cells import cell
    from benchmark.report.formatting import cell_text as fmt

    base = {"task": "t", "dataset": "d", "variant": "v", "split": "test", "metric": "mse", "convention": "c"}
    rows = pd.DataFrame([{**base, "seed": 0, "status": "ok", "value": 2.0},
                         {**base, "seed": 1, "status": "missing", "value": None},
                         {**base, "seed": 2, "status": "other_build", "value": 9.0}])
    c = cell(rows, ["t"], "d", "v", "mse", "c")
    assert (c["n"], c["mean"]) == (1, 2.0)
    assert fmt(c) == "2.000 (n=1; not yet run ×1, other data build ×1)"
    rows.loc[1:, "status"], rows.loc[1:, "value"] = "ok", [4.0, 6.0]
    assert fmt(cell(rows, ["t"], "d", "v", "mse", "c")) == "4.000 ± 2 (n=3)"


def test_builds_line_names_runs_on_another_dataset_build():
    import pandas as pd

    from benchmark.report.status import builds_line

    suite = load_suite("smoke")  # one simulated dataset, lj_tiny
    runs = pd.DataFrame({"dataset": ["lj_tiny", "lj_tiny", "b"], "status": ["ok", "missing", "ok"],
                         "hardware": ["Intel(R) Xeon(R) Processor x2", None, "AMD EPYC x2"]})
    line = builds_line(suite, runs)
    assert line.startswith("- dataset builds: one per dataset; every run with a number used it")
    # the simulated dataset's vendor is named; `b` is not a dataset of the suite (no kind: not named)
    assert "; the simulated ones were all made on Intel processors and regenerate byte for byte only" in line
    runs.loc[1, ["status", "hardware"]] = ["ok", "AMD EPYC x2"]  # two vendors behind one build: both named
    assert "were all made on AMD and Intel processors" in builds_line(suite, runs)
    two = pd.DataFrame({"dataset": ["lj_argon", "tip3p_water"], "status": ["ok", "ok"],
                        "hardware": ["Intel(R) Xeon(R) Processor x2", "AMD EPYC x2"]})
    line = builds_line(load_suite("default"), two)
    assert "were made on Intel (`lj_argon`) and AMD (`tip3p_water`) processors" in line
    # a build made on OpenMM's Reference platform (the run files' dataset_engine) regenerates anywhere
    two["dataset_engine"] = ["OpenMM 8.6.1 Reference", "OpenMM 8.6.1 CPU"]
    line = builds_line(load_suite("default"), two)
    assert "; `lj_argon` (OpenMM's Reference platform) regenerates byte for byte on any x86-64 processor; " \
           "the other simulated ones were all made on AMD processors" in line
    runs.loc[0, "hardware"] = "Apple M2 x8"  # an unknown vendor: no guess
    assert "processors" not in builds_line(suite, runs)
    runs.loc[1, "status"] = "missing"
    runs.loc[2, "status"] = "other_build"
    assert builds_line(suite, runs).startswith("- dataset builds: 1 run(s) used another build of their dataset than "
                                               "the board's (`b` 1) and are left out of the means")


def test_task_tables_name_dataset_params():
    """A per-task table says which of its cells ran with dataset-specific params (lj_window's graph
    methods use a CPU-sized radius graph on LJ argon); a task without any says nothing."""
    from benchmark.report.task_tables import task_table

    suite = load_suite("default")
    table = read_metrics(suite.metrics_path)
    assert "`egnn` on `lj_argon`: batch_size = 10, cutoff = 4.5" in task_table(suite, table, "lj_window")
    assert "dataset-specific params" not in task_table(suite, table, "ala2_window")


def test_dataset_params_are_named_under_the_table():
    from benchmark.report.notes import dataset_params_note

    suite = load_suite("default")
    note = "".join(dataset_params_note(suite, ["static", "ito_1step"], ["lj_argon", "tip3p_water"]))
    assert "`ito_1step` on `tip3p_water`: batch_size = 16" in note and "tip4pew_water" not in note
    assert dataset_params_note(suite, ["ito_1step"], ["lj_argon"]) == []


def test_cost_note_names_the_machine_of_each_dataset():
    """'train s' averages over datasets and seeds: when those runs come from several machines the
    table says which, and says nothing when one machine made them all."""
    import pandas as pd

    from benchmark.report.notes import cost_note

    rows = [{"task": "t", "dataset": d, "variant": "egnn", "seed": s, "status": st, "hardware": hw}
            for d, hw in (("a", "AMD EPYC x2"), ("b", "Intel Xeon x2")) for s in (0, 1)
            for st in ("ok",)] + [{"task": "t", "dataset": "c", "variant": "egnn", "seed": 0,
                                   "status": "missing", "hardware": "Apple M2 x8"}]
    table = pd.DataFrame(rows)
    note = cost_note(table, ["t"], ["a", "b", "c"])
    assert note[0].startswith("Train s is the mean over the runs behind the row, which come from several "
                              "machines: AMD EPYC x2 (a); Intel Xeon x2 (b).")
    assert cost_note(table, ["t"], ["a", "c"]) == []  # one machine among the ok runs
    assert cost_note(table, ["other"], ["a", "b"]) == []


def test_status_block_counts_runs_and_names_builds(tmp_path):
    """LEADERBOARD.md's status: runs expected / with a number / missing, builds with their card,
    and the newest run's date from the commits behind the runs (none known: says so)."""
    import pandas as pd

    from benchmark.report.status import checksums_line, newest_run_line, runs_line

    runs = pd.DataFrame({"status": ["ok", "ok", "missing", "diverged"]})
    assert runs_line(runs) == "- runs expected: 4; with a number: 2; diverged: 1; not yet run: 1; without a number: 2"
    assert runs_line(runs.iloc[:2]).endswith("with a number: 2; missing: 0 (the board is complete)")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.md").write_text("card\n")
    ok = pd.DataFrame({"dataset": ["a", "a", "b"], "dataset_sha256": ["0123456789abcdef"] * 2 + ["ff" * 8],
                       "dataset_engine": ["OpenMM 8 Reference", "OpenMM 8 Reference", None]})
    assert checksums_line(ok, tmp_path) == (
        "- builds behind the numbers (dataset, sha256, runs): `a` `0123456789ab` "
        "(2 runs, OpenMM 8 Reference, [card](data/a.md)); `b` `ffffffffffff` (1 run)")
    assert "not in this repository" in newest_run_line(pd.Series(["0" * 40]))
