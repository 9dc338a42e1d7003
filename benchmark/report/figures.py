"""Drawing the board's figures: matplotlib on the Agg backend, and each PNG saved with the JSON of
the series it shows (``<name>.json``, which the stale-check test recomputes).

The PNGs carry no metadata (no matplotlib version, no date), so the same series give the same
bytes, and a test regenerates them byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmark.io import atomic_path
from benchmark.report.cells import REFERENCE

OFF_SCALE = 100.0  # a reference baseline this many times above every other curve is left off the axes


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display): the one place it is chosen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, data: dict) -> None:
    """``path`` (PNG, 120 dpi, no metadata) and the plotted ``data`` beside it as ``<name>.json``; closes ``fig``."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, metadata={"Software": None})
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    pyplot().close(fig)


def no_results(ax) -> None:
    ax.text(0.5, 0.5, "no results yet", ha="center", va="center", transform=ax.transAxes)


def plot_ramachandran(data: dict, path: Path, title: str) -> None:
    """One 2D histogram of (phi, psi) per panel: ``data[key][name]`` = [[phi, psi], ...] (radians)."""
    plt = pyplot()
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
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, data)


def plot_lines(data: dict, path: Path, title: str, xlabel: str, ylabel: str, logy: bool = True,
               logx: bool = False) -> None:
    """One panel per dataset, one line per method (mean, band: ± std over seeds, clipped by the axes):
    ``data[dataset][method]`` = [[x, mean, std], ...].

    On log axes, reference baselines (constant/damped velocity) far above every other method
    (> ``OFF_SCALE`` x) would squash the rest into one line: they are left off the axes and named
    in the panel title instead.
    """
    plt = pyplot()
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
    save_figure(fig, path, data)


def plot_levels(data: dict, path: Path, title: str, ylabel: str) -> None:
    """One panel per dataset (its own range), a point with ± std per variant, the static baseline as
    a dashed line when it is in the data: ``data[dataset][variant]`` = [mean, std]."""
    plt = pyplot()
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
        ax.set(title=d, ylabel=ylabel)
    if not datasets:
        no_results(axes[0][0])
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, data)
