"""The leaderboard: the papers' tables and figures regenerated from ``metrics.csv`` only.

Tasks say which paper table they regenerate (``tables:`` in the suite YAML);
published numbers come from ``benchmark/published.yaml`` and are printed beside
ours, labelled.  Every table cell is mean ± sample std over seeds with the
number of seeds; best in **bold**, second underlined (reference baselines
included); a cell without a number says why.  Figures are drawn from a JSON
of the plotted series saved next to each PNG (``<name>.json``), which the
stale-check test recomputes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from benchmark.aggregate import read_metrics
from benchmark.config import Suite
from benchmark.io import atomic_path, cpu_vendor, write_text
from benchmark.metrics import PRIMARY
from benchmark.tables import STATUS_WORD, cost_note, dataset_params_note, sample_std, status_counts, task_history

PUBLISHED = Path(__file__).resolve().parent / "published.yaml"
REFERENCE = ("static", "constant_velocity", "damped_velocity")  # trivial baselines: reference rows


def published() -> dict:
    return yaml.safe_load(PUBLISHED.read_text())


# ------------------------------------------------------------------ selection
def tasks_for(suite: Suite, table_id: str) -> list[str]:
    return [t for t, e in suite.tasks.items() if table_id in e.get("tables", [])]


def pick_dataset(table: pd.DataFrame, tasks: list[str], candidates: list[str]) -> str | None:
    present = set(table[table["task"].isin(tasks)]["dataset"])
    return next((d for d in candidates if d in present), None)


def cell(table: pd.DataFrame, tasks, dataset, variant, metric, convention, factor=1.0) -> dict:
    """Mean/std over seeds of one (variant, dataset, metric, convention) on the test split."""
    rows = table[table["task"].isin(tasks) & (table["dataset"] == dataset) & (table["variant"] == variant)
                 & (table["split"] == "test")]
    hits = rows[(rows["metric"] == metric) & (rows["convention"] == convention)]
    ok = hits[(hits["status"] == "ok") & hits["value"].notna()]
    values = ok.drop_duplicates("seed")["value"].to_numpy(dtype=float) * factor
    out = {"n": len(values), "mean": float(values.mean()) if len(values) else np.nan,
           "std": sample_std(values) if len(values) > 1 else np.nan}
    # the seeds without a number, by status (a cell with n=1 should say what the other seeds are)
    out["gaps"] = status_counts(hits[~hits["seed"].isin(ok["seed"])].drop_duplicates("seed")["status"])
    if not len(values):
        out["statuses"] = sorted(set(rows["status"]) - {"ok"})
        out["why"] = ", ".join(STATUS_WORD.get(s, s) for s in out["statuses"]) or ("not in suite" if not len(rows) else "no value")
    return out


def fmt(c: dict, digits: int = 4) -> str:
    if not c["n"]:
        return c["why"]
    text = f"{c['mean']:#.{digits}g}"
    if c["n"] > 1:
        text += f" ± {c['std']:.2g}"
    return f"{text} (n={c['n']}; {c['gaps']})" if c.get("gaps") else f"{text} (n={c['n']})"


def mark_best(cells: dict, variants, columns, lower: bool = True) -> dict:
    """Text per (variant, column) with best **bold** and second <u>underlined</u>."""
    out = {k: fmt(v) for k, v in cells.items()}
    for col in columns:
        scored = sorted(((cells[(v, col)]["mean"], v) for v in variants if cells[(v, col)]["n"]),
                        reverse=not lower)
        if scored:
            out[(scored[0][1], col)] = f"**{out[(scored[0][1], col)]}**"
        if len(scored) > 1:
            out[(scored[1][1], col)] = f"<u>{out[(scored[1][1], col)]}</u>"
    return out


def cost(table: pd.DataFrame, tasks, variant) -> tuple[str, str]:
    rows = table[table["task"].isin(tasks) & (table["variant"] == variant) & (table["status"] == "ok")]
    runs = rows.drop_duplicates(["task", "dataset", "seed"])
    params = runs["n_params"].dropna()
    train = runs["train_seconds"].dropna()
    return (str(int(params.max())) if len(params) else "–", f"{train.mean():.0f}" if len(train) else "–")


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def variant_order(suite: Suite, tasks: list[str], pub_rows) -> list[str]:
    in_suite = list(dict.fromkeys(v for t in tasks for v in suite.task_methods(t)))
    ordered = [v for v in pub_rows if v in in_suite] + [v for v in in_suite if v not in pub_rows and v not in REFERENCE]
    return ordered + [v for v in in_suite if v in REFERENCE]


# ------------------------------------------------------------------ tables
def columns_table(suite: Suite, table: pd.DataFrame, table_id: str, spec: dict) -> str:
    """A paper table whose columns are datasets (GF-NODE 1/2/4, DoMiNO 1)."""
    tasks = tasks_for(suite, table_id)
    ours = spec["ours"]
    datasets = {label: pick_dataset(table, tasks, cands) for label, cands in spec["columns"].items()}
    labels = list(datasets)
    variants = variant_order(suite, tasks, spec["rows"])
    lines = [f"# {spec['title']}", "", f"Source of the published numbers: {spec['source']}. "
             f"Ours: suite `{suite.name}`, tasks {', '.join(f'`{t}`' for t in tasks) or '(none in this suite)'}, "
             f"test split, mean ± sample std over seeds (n = seeds with a number), best **bold**, second "
             f"<u>underlined</u>; {', '.join(REFERENCE)} are reference baselines.", ""]
    stand_in = [d for d in datasets.values() if d and not d.startswith(("md17_", "ala2_mdshare"))]
    if stand_in:
        lines += ["**Our data is a simulated stand-in** (" + ", ".join(sorted(set(stand_in))) +
                  "), not the paper's: compare rankings and shapes, not values.", ""]
    lines += dataset_params_note(suite, variants, [d for d in datasets.values() if d])
    if not variants:
        lines += ["No task of this suite regenerates this table (tag a task with "
                  f"`tables: [{table_id}]`).", ""]
    for convention, unit in (ours["conventions"].items() if variants else []):
        cells = {(v, lab): (cell(table, tasks, datasets[lab], v, ours["metric"], convention, ours["factor"])
                            if datasets[lab] else {"n": 0, "why": "not in suite"})
                 for v in variants for lab in labels}
        text = mark_best(cells, variants, labels)
        lines += [f"## Ours: `{ours['metric']}` / `{convention}` ({unit})", ""]
        lines += md_table(["method", *labels, "params", "train s"],
                          [[v, *[text[(v, lab)] for lab in labels], *cost(table, tasks, v)] for v in variants])
        lines.append("")
    lines += cost_note(table, tasks, list(datasets.values())) if variants else []
    pub_labels = [lab for lab in labels]
    lines += [f"## Published ({spec['unit']}, the paper's data)", ""]
    lines += md_table(["method", *pub_labels],
                      [[v, *[_pub(spec["rows"][v].get(lab)) for lab in pub_labels]] for v in spec["rows"]])
    lines += [""] + ([f"Note: {spec['note']}", ""] if spec.get("note") else [])
    return "\n".join(lines + [FOOTER])


def _pub(value) -> str:
    if value is None:
        return "–"
    mean, std = value
    return f"{mean:g}" + (f" ± {std:g}" if std is not None else "")


def metric_columns_table(suite: Suite, table: pd.DataFrame, table_id: str, spec: dict) -> str:
    """A paper table whose columns are metrics (GF-NODE 3) or windows (DoMiNO 3) on one dataset."""
    tasks = tasks_for(suite, table_id)
    dataset = pick_dataset(table, tasks, spec["datasets"])
    ours = spec["ours"]
    if "columns" in ours:
        columns = {lab: tuple(v) for lab, v in ours["columns"].items()}
    else:  # windows
        suffix = "_normalised" if ours.get("normalised") else ""
        columns = {w: (ours["metric"], w + suffix, ours["factor"]) for w in spec["columns"]}
    labels = list(columns)
    variants = variant_order(suite, tasks, spec["rows"])
    cells = {(v, lab): (cell(table, tasks, dataset, v, *columns[lab]) if dataset else {"n": 0, "why": "not in suite"})
             for v in variants for lab in labels}
    text = mark_best(cells, variants, labels)
    lines = [f"# {spec['title']}", "", f"Source of the published numbers: {spec['source']}. Ours: suite "
             f"`{suite.name}`, dataset `{dataset}`, tasks {', '.join(f'`{t}`' for t in tasks) or '(none)'}; "
             f"test split, mean ± sample std over seeds; best **bold**, second <u>underlined</u>.", ""]
    if dataset and not dataset.startswith(("md17_", "ala2_mdshare")):
        lines += [f"**Our data is a simulated stand-in** (`{dataset}`), not the paper's.", ""]
    if variants:
        lines += ["## Ours", ""] + md_table(["method", *labels, "params", "train s"],
                                            [[v, *[text[(v, lab)] for lab in labels], *cost(table, tasks, v)]
                                             for v in variants])
        note = cost_note(table, tasks, [dataset])
        lines += ["", note[0]] if note else []
    else:
        lines += [f"No task of this suite regenerates this table (tag a task with `tables: [{table_id}]`)."]
    lines += ["", f"## Published ({spec['unit']}, the paper's data)", ""]
    lines += md_table(["method", *labels], [[v, *[_pub(spec["rows"][v].get(lab)) for lab in labels]] for v in spec["rows"]])
    lines += [""] + ([f"Note: {spec['note']}", ""] if spec.get("note") else [])
    return "\n".join(lines + [FOOTER])


def _outcome(c: dict) -> str:
    """What a method's ``cell`` holds: 'number', 'failed' (diverged or failed on every seed it ran),
    'n/a' (not applicable) or 'pending' (not yet run, stale, no run at all)."""
    if c["n"]:
        return "number"
    statuses = set(c.get("statuses", ()))
    if statuses & {"diverged", "failed"}:
        return "failed"
    return "n/a" if statuses and statuses <= {"not_applicable"} else "pending"


def rank_columns(suite: Suite, table: pd.DataFrame):
    """The cross-paper matrix: its (task, dataset) columns, the methods, every method's cell in
    every column (the task's primary test metric) and its ranks (1 = best).

    A column is ranked only once it is complete: every method of its task has a number there, or
    diverged/failed (ranked after every number, tied), or is not applicable (left out). Ranking a
    partial column would let the cheap reference baselines, which finish first, rank 1 of 3 in
    columns the learned methods have not reached. A rank is kept with the column's size, ``(rank,
    methods ranked)``: tasks run different numbers of methods (3rd of 4 is not 3rd of 13). Also
    returns the columns ranked."""
    columns = [(t, d) for t in suite.tasks for d in suite.task_datasets(t)]
    variants = list(suite.methods)
    cells, ranks, ranked = {}, {v: [] for v in variants}, []
    for t, d in columns:
        metric, convention = PRIMARY[suite.tasks[t]["protocol"]][0]
        in_task = suite.task_methods(t)
        col = {v: cell(table, [t], d, v, metric, convention) if v in in_task else {"n": 0, "why": "–"}
               for v in variants}
        for v in variants:
            cells[(v, (t, d))] = col[v]
        outcome = {v: _outcome(c) if v in in_task else "n/a" for v, c in col.items()}
        if "pending" in outcome.values() or "number" not in outcome.values():
            continue
        ranked.append((t, d))
        scored = sorted((c["mean"], v) for v, c in col.items() if outcome[v] == "number")
        size = len(scored) + sum(o == "failed" for o in outcome.values())
        for r, (_, v) in enumerate(scored, start=1):
            ranks[v].append((r, size))
        for v in variants:
            if outcome[v] == "failed":
                ranks[v].append((len(scored) + 1, size))
    return columns, variants, cells, ranks, ranked


def rank_stats(ranks: list[tuple[int, int]]) -> tuple[float, float]:
    """Mean rank, and mean normalised rank: (rank - 1) / (methods ranked - 1), 0 = best and 1 = last
    in every cell whatever its size, so methods ranked in cells of different sizes compare."""
    return (float(np.mean([r for r, _ in ranks])),
            float(np.mean([(r - 1) / (n - 1) if n > 1 else 0.0 for r, n in ranks])))


def rank_texts(ranks: list[tuple[int, int]]) -> list[str]:
    """A method's 'normalised rank' and 'mean rank' columns ('–' without a ranked cell)."""
    if not ranks:
        return ["–", "–"]
    mean, normalised = rank_stats(ranks)
    return [f"{normalised:.2f}", f"{mean:.2f}"]


def beats_static(cells: dict, v: str, ranked: list) -> str:
    """In how many complete cells ``v``'s mean is below the static baseline's (predicting the last
    observed frame), of those both have an outcome in; a diverged or failed run does not beat it."""
    if v == "static":
        return "–"
    both = [c for c in ranked if _outcome(cells[("static", c)]) == "number"
            and _outcome(cells[(v, c)]) in ("number", "failed")]
    wins = sum(_outcome(cells[(v, c)]) == "number" and cells[(v, c)]["mean"] < cells[("static", c)]["mean"]
               for c in both)
    return f"{wins}/{len(both)}" if both else "–"


def rank_note(suite: Suite) -> str:
    """What the rank columns mean, with the range of methods per task."""
    sizes = sorted({len(suite.task_methods(t)) for t in suite.tasks})
    spread = f"run {sizes[0]} to {sizes[-1]} methods" if len(sizes) > 1 else f"all run {sizes[0]} methods"
    return ("Sorted by normalised rank: (rank - 1) / (methods ranked - 1) averaged over the complete cells, "
            f"0 = best and 1 = last in every one; the tasks {spread}, so a plain mean rank (1 = best, also "
            "shown) favours the methods that only run in small tasks. Beats static: the complete cells where "
            "the method's mean is below the static baseline's (the last observed frame held), of those it "
            "has a result in.")


def rank_rule(ranked: int, total: int) -> str:
    """How the mean rank is taken, with the number of complete cells."""
    text = ("A cell enters the mean ranks once it is complete: every method of its task has a number there "
            f"(a method that diverged or failed ranks last in it). {ranked} of {total} cells are complete")
    if ranked == total:
        return text + "."
    return text + ("; the others wait for a method's run, so the cheap reference baselines, which finish "
                   "first, do not rank 1 of 3 there.")


def cross_paper(suite: Suite, table: pd.DataFrame) -> str:
    """Every method x every (task, dataset): the task's primary test metric and the mean rank."""
    columns, variants, cells, ranks, ranked = rank_columns(suite, table)
    text = mark_best(cells, variants, columns)
    header = ["method", "normalised rank", "mean rank", "cells ranked", "beats static",
              *[f"{t}<br>{d}" + (f" †{task_history(suite, t)}" if task_history(suite, t) else "") for t, d in columns]]
    order = sorted(variants, key=lambda v: (not ranks[v], rank_stats(ranks[v])[1] if ranks[v] else 0.0))
    rows = [[v, *rank_texts(ranks[v]), str(len(ranks[v])), beats_static(cells, v, ranked), *[text[(v, c)] for c in columns]] for v in order]
    lines = ["# Cross-paper matrix: every method on every dataset and protocol", "",
             f"Suite `{suite.name}`, test split, each task's primary metric (window: MSE mean over offsets, Å²; "
             f"extrapolate: full-domain MSE, Å²). '–' = not in this task; †L = computed with L frames of history "
             "before t0. " + rank_note(suite) + " " + rank_rule(len(ranked), len(columns)), ""]
    note = dataset_params_note(suite, variants, sorted({d for _, d in columns}))
    return "\n".join(lines + md_table(header, rows) + [""] + note + [FOOTER])


README = Path(__file__).resolve().parent.parent / "README.md"
HEADLINE = ("<!-- headline:start -->", "<!-- headline:end -->")


def headline(suite: Suite, table: pd.DataFrame) -> str:
    """The README's headline block: the cross-paper matrix's mean ranks, from ``metrics.csv`` only."""
    columns, variants, cells, ranks, ranked = rank_columns(suite, table)
    rows = [[v, *rank_texts(ranks[v]), str(len(ranks[v])),
             beats_static(cells, v, ranked),
             ", ".join(sorted({d for t, d in ranked if _outcome(cells[(v, (t, d))]) in ("number", "failed")}))]
            for _, v in sorted((rank_stats(ranks[v])[1], v) for v in variants if ranks[v])]
    lines = [HEADLINE[0], "", f"**Headline** (suite `{suite.name}`): every method's ranks over the "
             "(task, dataset) cells of the cross-paper matrix (test split, each task's primary metric). "
             + rank_note(suite) + " " + rank_rule(len(ranked), len(columns)) + " The numbers behind it: "
             "[results/tables/cross_paper.md](results/tables/cross_paper.md).", ""]
    lines += md_table(["method", "normalised rank", "mean rank", "cells ranked", "beats static", "datasets ranked"],
                      rows) if rows else ["No cell is complete yet."]
    unranked = [v for v in variants if not ranks[v]]
    if unranked:
        lines += ["", "Not ranked yet (no complete cell): " + ", ".join(unranked) + "."]
    lines += ["", "Generated by `mdhorizon leaderboard` (rule `leaderboard`) from `results/metrics.csv`; "
              "regenerate with `snakemake --cores 2 all --forcerun leaderboard`.", "", HEADLINE[1]]
    return "\n".join(lines)


def readme_headline(text: str) -> str | None:
    """The headline block of a README's text, markers included (None if it has none)."""
    start, end = text.find(HEADLINE[0]), text.find(HEADLINE[1])
    return text[start:end + len(HEADLINE[1])] if 0 <= start < end else None


def write_headline(suite: Suite, table: pd.DataFrame, readme: Path = README) -> Path:
    text = readme.read_text()
    block = readme_headline(text)
    if block is None:
        raise ValueError(f"{readme}: no headline block ({HEADLINE[0]} ... {HEADLINE[1]})")
    write_text(readme, text.replace(block, headline(suite, table)))
    return readme


def leakage(suite: Suite, table: pd.DataFrame) -> str:
    """The same data under two split rules: the GF-NODE Table 1 task vs the task tagged ``leakage``."""
    base, other = tasks_for(suite, "gfnode_table1"), tasks_for(suite, "leakage")

    def strategy(tasks):
        return ", ".join(sorted({suite.tasks[t].get("split", {}).get("strategy", "by_trajectory") for t in tasks})) or "–"

    a_name, b_name = strategy(base), strategy(other)
    datasets = list(dict.fromkeys(d for t in other for d in suite.task_datasets(t)))
    variants = list(dict.fromkeys(v for t in other for v in suite.task_methods(t)))
    rows = []
    for v in variants:
        for d in datasets:
            a = cell(table, base, d, v, "mse", "mean_over_offsets", 100)
            b = cell(table, other, d, v, "mse", "mean_over_offsets", 100)
            ratio = f"{b['mean'] / a['mean']:.2f}" if a["n"] and b["n"] else "–"
            rows.append([v, d, fmt(a), fmt(b), ratio])
    lines = ["# Split leakage: the same data under two split rules", "",
             f"MSE mean over offsets (x10^-2 Å²), test split. Split `{a_name}`: tasks {', '.join(base) or '–'}; "
             f"split `{b_name}`: tasks {', '.join(other) or '–'}. `published` and `interleaved` draw train and test "
             f"start frames from the same trajectory, so their windows overlap in time (leakage); `blocks` and "
             f"`by_trajectory` keep the parts apart. A leaky split that scores lower flatters the method.", ""]
    return "\n".join(lines + md_table(["method", "dataset", a_name, b_name, f"{b_name} / {a_name}"], rows)
                     + ["", FOOTER])


FOOTER = ("Generated by `mdhorizon leaderboard` from `metrics.csv` and `benchmark/published.yaml`; do not "
          "edit by hand. The `command` column of `metrics.csv` recomputes any cell.\n")


# ------------------------------------------------------------------ figures
def horizon_series(suite: Suite, table: pd.DataFrame) -> dict:
    """GF-NODE Fig. 3: MSE vs horizon on benzene / malonaldehyde (irregular windows)."""
    tasks = tasks_for(suite, "gfnode_fig3") + tasks_for(suite, "gfnode_table1")
    horizons = {t: make_horizon(suite, t) for t in tasks}
    out = {}
    for d in sorted({d for t in tasks_for(suite, "gfnode_fig3") for d in suite.task_datasets(t)}):
        for v in dict.fromkeys(v for t in tasks for v in suite.task_methods(t)):
            pts = [(horizons[t], cell(table, [t], d, v, "mse", "mean_over_offsets")) for t in tasks
                   if d in suite.task_datasets(t)]
            pts = sorted((h, c["mean"], c["std"] if c["n"] > 1 else 0.0) for h, c in pts if c["n"])
            if pts:
                out.setdefault(d, {})[v] = [list(p) for p in pts]
    return out


def make_horizon(suite, task) -> int:
    from benchmark.tasks import make_spec

    e = suite.tasks[task]
    return make_spec(e["protocol"], e["params"]).delta_frame


def curve_series(suite: Suite, table: pd.DataFrame) -> dict:
    """DoMiNO Table 3 as a curve: binned MSE over the horizon on each protocol-B dataset."""
    tasks = tasks_for(suite, "domino_table3")
    out = {}
    sub = table[table["task"].isin(tasks) & (table["split"] == "test") & (table["metric"] == "mse_curve")
                & (table["status"] == "ok") & ~table["convention"].str.endswith("_normalised")]
    for (d, v), g in sub.groupby(["dataset", "variant"], sort=True):
        stats = g.groupby("offset")["value"].agg(["mean", "std", "count"]).reset_index()
        out.setdefault(d, {})[v] = [[float(o), float(m), float(s) if c > 1 else 0.0]
                                    for o, m, s, c in stats.itertuples(index=False)]
    return out


def level_series(suite: Suite, table: pd.DataFrame) -> dict:
    """DoMiNO Fig. 3: full-domain MSE of the level ablation (entries named domino_l*)."""
    tasks = tasks_for(suite, "domino_table1")
    variants = [v for v in suite.methods if v.startswith("domino")] + ["static"]  # static: reference line
    out = {}
    for t in tasks:
        for d in suite.task_datasets(t):
            for v in variants:
                c = cell(table, [t], d, v, "mse", "full_domain")
                if c["n"]:
                    out.setdefault(d, {})[v] = [c["mean"], c["std"] if c["n"] > 1 else 0.0]
    return {d: vs for d, vs in out.items() if set(vs) - {"static"}}  # datasets with a DoMiNO number


def ramachandran_series(suite: Suite, table: pd.DataFrame) -> dict:
    """GF-NODE Fig. 2: reference vs predicted (phi, psi) of the lowest seed of each method
    (from the runs' ``artifacts``, up to 1000 test frames)."""
    from benchmark.config import Cell
    from benchmark.io import read_json

    out = {}
    for t in tasks_for(suite, "gfnode_table2"):
        for d in suite.task_datasets(t):
            for v in suite.task_methods(t):
                path = suite.run_path(Cell(t, d, v, min(suite.seeds)))
                if not path.exists():
                    continue
                art = read_json(path).get("artifacts", {}).get("phi_psi")
                if art:
                    panel = out.setdefault(f"{t}/{d}", {"reference": art["reference"]})
                    panel[v] = art["predicted"]
    return out


def plot_ramachandran(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(key, name) for key in sorted(data) for name in ["reference"] + sorted(set(data[key]) - {"reference"})]
    cols = max(1, min(4, len(panels)))
    rows = max(1, -(-len(panels) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for ax, (key, name) in zip(axes.flat, panels):
        pts = np.asarray(data[key][name]).reshape(-1, 2)
        ax.set_visible(True)
        ax.hist2d(pts[:, 0], pts[:, 1], bins=60, range=[[-np.pi, np.pi], [-np.pi, np.pi]], cmap="viridis")
        ax.set(title=f"{name}\n{key}", xlabel="φ (rad)", ylabel="ψ (rad)")
        ax.title.set_fontsize(8)
    if not panels:
        axes[0][0].set_visible(True)
        axes[0][0].text(0.5, 0.5, "no results yet", ha="center", va="center")
    fig.suptitle("GF-NODE Fig. 2: Ramachandran, reference vs predicted (test)")
    fig.tight_layout()
    _save_figure(fig, path, data)
    plt.close(fig)


def _save_figure(fig, path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, metadata={"Software": None})
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


OFF_SCALE = 100.0  # a reference baseline this many times above every other curve is left off the axes


def plot_lines(data: dict, path: Path, title: str, xlabel: str, ylabel: str, logy: bool = True,
               logx: bool = False) -> None:
    """One panel per dataset, one line per method (mean, band: ± std over seeds, clipped by the axes).

    On log axes, reference baselines (constant/damped velocity) far above every other method
    (> ``OFF_SCALE`` x) would squash the rest into one line: they are left off the axes and named
    in the panel title instead.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted(data)
    # one colour per method across panels, one legend for the figure (outside the axes: it hid curves)
    names = sorted({v for d in panels for v in data[d]})
    colour = {v: plt.cm.tab20.colors[i % 20] for i, v in enumerate(names)}
    legend_width = 1.8  # inches on the right for the figure's legend
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5 * max(1, len(panels)) + legend_width, 4),
                             squeeze=False)
    for ax, d in zip(axes[0], panels):
        series = {v: [np.array(c, dtype=float) for c in zip(*pts)] for v, pts in sorted(data[d].items())}
        others = [y for v, (_, y, _) in series.items() if v not in REFERENCE]
        top = max((float(np.nanmax(y)) for y in others), default=np.inf)
        off = [v for v, (_, y, _) in series.items()
               if logy and v in REFERENCE and float(np.nanmin(y)) > OFF_SCALE * top]
        shown = {v: xys for v, xys in series.items() if v not in off}
        for v, (x, y, sd) in shown.items():
            ax.plot(x, y, marker="o", ms=3, label=v, color=colour[v])
            ax.fill_between(x, y - sd, y + sd, alpha=0.15, color=colour[v], linewidth=0)
        if logy and shown:
            ys = np.concatenate([y for _, y, _ in shown.values()])
            ys = ys[np.isfinite(ys) & (ys > 0)]
            if len(ys):
                ax.set_ylim(ys.min() / 1.5, ys.max() * 1.5)
        ax.set(title=d + (f"\n(off scale: {', '.join(off)})" if off else ""), xlabel=xlabel, ylabel=ylabel)
        if logy:
            ax.set_yscale("log")
        if logx:
            ax.set_xscale("log")
    if not panels:
        axes[0][0].text(0.5, 0.5, "no results yet", ha="center", va="center")
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_legend_handles_labels()[0]}
    if handles:
        fig.legend([handles[v] for v in sorted(handles)], sorted(handles), fontsize=8, loc="center right")
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1 - legend_width / fig.get_figwidth(), 1))
    _save_figure(fig, path, data)
    plt.close(fig)


def plot_levels(data: dict, path: Path) -> None:
    """DoMiNO Fig. 3: one panel per dataset (its own MSE range), a point with ± std per level
    variant, the static baseline as a dashed line when it is in the data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted(data)
    fig, axes = plt.subplots(1, max(1, len(datasets)), figsize=(3.6 * max(1, len(datasets)), 3.6), squeeze=False)
    for ax, d in zip(axes[0], datasets):
        variants = sorted(v for v in data[d] if v != "static")
        vals = [data[d][v][0] for v in variants]
        errs = [data[d][v][1] for v in variants]
        ax.errorbar(np.arange(len(variants)), vals, yerr=errs, fmt="o", capsize=4)
        # enough decimals to tell the points (and static) apart: 32.0005 vs 31.9972 on TIP3P
        shown = vals + ([data[d]["static"][0]] if "static" in data[d] else [])
        spread = max(shown) - min(shown) if len(shown) > 1 else 0.0
        decimals = int(np.clip(1 - np.floor(np.log10(spread)), 0, 6)) if spread > 0 else 2
        for i, val in enumerate(vals):
            ax.annotate(f"{val:.{decimals}f}", (i, val), textcoords="offset points", xytext=(6, 0), fontsize=7,
                        va="center")
        ax.ticklabel_format(axis="y", useOffset=False)
        if "static" in data[d]:
            ax.axhline(data[d]["static"][0], ls="--", color="grey", lw=1, label="static")
            ax.legend(fontsize=7)
        ax.set_xticks(np.arange(len(variants)), variants, rotation=20)
        ax.set_xlim(-0.5, len(variants) - 0.5 + 0.35)  # room for the last point's label
        ax.set(title=d, ylabel="full-domain MSE (Å²)")
    if not datasets:
        axes[0][0].text(0.5, 0.5, "no results yet", ha="center", va="center", transform=axes[0][0].transAxes)
    fig.suptitle("DoMiNO level ablation (Fig. 3): test MSE, mean ± std over seeds")
    fig.tight_layout()
    _save_figure(fig, path, data)
    plt.close(fig)


FIGURES = {
    "gfnode_fig3_horizon": (horizon_series, lambda d, p: plot_lines(
        d, p, "GF-NODE Fig. 3: MSE vs horizon (mean ± std over seeds)", "horizon (frames)", "test MSE (Å²)")),
    "domino_table3_curve": (curve_series, lambda d, p: plot_lines(
        d, p, "DoMiNO Table 3 as a curve: MSE over the horizon (mean ± std over seeds)",
        "frames after the last observed (log)", "test MSE (Å²)", logx=True)),
    "domino_fig3_levels": (level_series, plot_levels),
    "gfnode_fig2_ramachandran": (ramachandran_series, plot_ramachandran),
}


# ------------------------------------------------------------------ driver
def render_tables(suite: Suite, table: pd.DataFrame) -> dict[str, str]:
    pub = published()
    out = {}
    for table_id in ("gfnode_table1", "gfnode_table4", "gfnode_table2", "domino_table1"):
        out[table_id] = columns_table(suite, table, table_id, pub[table_id])
    for table_id in ("gfnode_table3", "domino_table3"):
        out[table_id] = metric_columns_table(suite, table, table_id, pub[table_id])
    out["cross_paper"] = cross_paper(suite, table)
    out["leakage"] = leakage(suite, table)
    return out


def figure_data(suite: Suite, table: pd.DataFrame) -> dict[str, dict]:
    return {name: json.loads(json.dumps(fn(suite, table))) for name, (fn, _) in FIGURES.items()}


def git_sha_line(shas: pd.Series) -> str:
    """One line on the code versions behind the runs; each run's own sha is in metrics.csv."""
    shas = shas.dropna()
    if shas.empty:
        return "- git sha: –"
    commits = sorted({s.removesuffix("-dirty") for s in shas})
    dirty = int(shas.str.endswith("-dirty").sum())
    head = f"`{commits[0]}`" if len(commits) == 1 else f"{len(commits)} commits"
    return (f"- git sha: {head}; {dirty} of {len(shas)} runs from a tree with uncommitted code changes "
            "(`-dirty`); each run's sha is in the `git_sha` column of `metrics.csv`")


def hardware_line(hardware: pd.Series) -> str:
    """One line on the machines behind the runs, each with its number of runs (the `hardware` column)."""
    counts = hardware.dropna().value_counts()
    if counts.empty:
        return "- hardware: –"
    parts = [f"{hw} ({n} run{'s' if n != 1 else ''})" for hw, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return f"- hardware: {'; '.join(parts)}; each run's machine is in the `hardware` column of `metrics.csv`"


def builds_line(suite: Suite, runs: pd.DataFrame) -> str:
    """One line on the dataset builds behind the numbers (``benchmark.aggregate``: one build per
    dataset; runs on another build are kept with status ``other_build`` and left out of the means),
    with the processor vendor the simulated builds came from (they regenerate byte for byte only
    on that vendor's processors)."""
    from benchmark.data.registry import get_kind

    other = runs[runs["status"] == "other_build"]
    if other.empty:
        line = ("- dataset builds: one per dataset; every run with a number used it (its sha256 is in the "
                "`dataset_sha256` column of `metrics.csv`)")
    else:
        per = ", ".join(f"`{ds}` {n}" for ds, n in other["dataset"].value_counts().sort_index().items())
        line = (f"- dataset builds: {len(other)} run(s) used another build of their dataset than the board's ({per}) "
                "and are left out of the means (`other data build` in the tables)")
    simulated = [d for d, entry in suite.datasets.items() if get_kind(entry["kind"]).simulated]
    ok = runs[(runs["status"] == "ok") & runs["dataset"].isin(simulated)]
    # Builds made on OpenMM's Reference platform (the run files record the engine) are the same on
    # every x86-64 processor (benchmark/data/lj.py); the others only on the same vendor's.
    engines = (ok["dataset_engine"] if "dataset_engine" in ok else pd.Series("", index=ok.index)).fillna("").astype(str)
    anywhere = sorted(d for d, g in engines.groupby(ok["dataset"]) if g.str.endswith(" Reference").all())
    if anywhere:
        line += ("; " + ", ".join(f"`{d}`" for d in anywhere) + " (OpenMM's Reference platform) regenerate"
                 f"{'s' if len(anywhere) == 1 else ''} byte for byte on any x86-64 processor")
        ok = ok[~ok["dataset"].isin(anywhere)]
    vendors = {d: {cpu_vendor(str(h)) for h in g["hardware"]} for d, g in ok.groupby("dataset")}
    if not vendors or any(None in found for found in vendors.values()):
        return line  # a machine of unknown vendor: say nothing rather than guess
    by_vendor: dict[str, list[str]] = {}
    for d, found in sorted(vendors.items()):
        by_vendor.setdefault(" and ".join(sorted(found)), []).append(d)
    if len(by_vendor) == 1:
        made = f"all made on {next(iter(by_vendor))} processors"
    else:
        made = "made on " + " and ".join(f"{v} ({', '.join(f'`{d}`' for d in ds)})" for v, ds in by_vendor.items()) + " processors"
    return (f"{line}; the {'other ' if anywhere else ''}simulated ones were {made} and regenerate byte for byte only on the same vendor's "
            "(README, *Simulated data depend on the processor*; elsewhere, `mdhorizon data import` takes a "
            "board build)")


def leaderboard_md(suite: Suite, table: pd.DataFrame, tables: dict) -> str:
    runs = table.drop_duplicates(["task", "dataset", "variant", "seed"])
    ok = runs[runs["status"] == "ok"]
    lines = ["# mdhorizon leaderboard", "",
             f"Suite `{suite.name}` ({suite.raw.get('description', '')}); seeds {suite.seeds}.", "",
             f"- runs expected: {len(runs)}; with a number: {len(ok)}"
             + "".join(f"; {STATUS_WORD.get(s, s)}: {c}" for s, c in runs["status"].value_counts().sort_index().items() if s != "ok"),
             hardware_line(ok["hardware"]),
             builds_line(suite, runs),
             git_sha_line(ok["git_sha"]),
             f"- total train time: {ok.loc[ok['reused_model_of'].isna(), 'train_seconds'].sum() / 3600:.2f} h "
             "over the runs with a number, each trained model counted once (seed-independent methods are "
             "computed for the first seed only, their other seeds reuse its numbers, `reused_from_seed`; "
             "entries with `shares_training_with` evaluate another entry's model, `reused_model_of`)",
             "", "Reproduce any cell with the command in the `command` column of `metrics.csv`, e.g. "
             "`snakemake --cores 2 results/runs/<task>/<dataset>/<method>/seed0.json --forcerun train_cell`; "
             "the whole board with `snakemake --cores 8 all` (`make bench`).", "",
             "## Tables", ""]
    lines += [f"- [{tid}](tables/{tid}.md)" for tid in tables]
    lines += ["- per task: " + ", ".join(f"[{t}](tables/{t}.md)" for t in suite.tasks), "",
              "## Figures", ""]
    lines += [f"![{name}](plots/{name}.png)" for name in FIGURES]
    from benchmark.spectrum import fig4_cell

    c = fig4_cell(suite)
    if c is not None:  # drawn from the trained model (rule gfnode_fig4), not from metrics.csv
        lines += ["", f"GF-NODE Fig. 4, from the trained `{c.variant}` model of `{c.task}` / `{c.dataset}` seed "
                  f"{c.seed} (`mdhorizon spectrum`; there once that model is trained):", "",
                  "![gfnode_fig4](plots/gfnode_fig4.png)"]
    lines += ["", "## Cross-paper matrix", "", tables["cross_paper"].split("\n", 2)[2]]
    return "\n".join(lines)


def write_leaderboard(suite: Suite) -> list[Path]:
    table = read_metrics(suite.metrics_path)
    tables = render_tables(suite, table)
    written = []
    for tid, text in tables.items():
        path = suite.tables_dir / f"{tid}.md"
        write_text(path, text)
        written.append(path)
    plots = suite.results_dir / "plots"
    for name, data in figure_data(suite, table).items():
        FIGURES[name][1](data, plots / f"{name}.png")
        written.append(plots / f"{name}.png")
    path = suite.results_dir / "LEADERBOARD.md"
    write_text(path, leaderboard_md(suite, table, tables))
    if suite.results_dir.resolve() == (README.parent / "results").resolve():  # the published board
        written.append(write_headline(suite, table))
    return written + [path]


def leaderboard_outputs(suite: Suite) -> list[Path]:
    ids = ["gfnode_table1", "gfnode_table4", "gfnode_table2", "domino_table1", "gfnode_table3", "domino_table3",
           "cross_paper", "leakage"]
    return ([suite.tables_dir / f"{t}.md" for t in ids] + [suite.results_dir / "plots" / f"{f}.png" for f in FIGURES]
            + [suite.results_dir / "LEADERBOARD.md"])
