"""Number formatting of every generated table: one place for how a mean, a spread, a count or a
missing value reads (the leaderboard's tables, the per-task tables and the cost report)."""

from __future__ import annotations

import numpy as np
import pandas as pd

# What a run without a number reads as, by its status in metrics.csv.
STATUS_WORD = {"diverged": "diverged", "not_applicable": "n/a", "missing": "not yet run", "failed": "failed",
               "stale": "stale (config changed)", "other_build": "other data build"}


def sample_std(values: np.ndarray) -> float:
    """Sample std (ddof 1), exactly 0 for identical values: a seed-independent method's copies
    must read ± 0 as in the papers, not ± 1e-17 from the rounding of the mean."""
    values = np.asarray(values, dtype=float)
    return float((values - values[0]).std(ddof=1))


def mean_std_text(mean: float, std: float, n: int, digits: int = 4) -> str:
    """'0.1234 ± 0.01' (the std once there are two values; the mean to ``digits`` significant digits)."""
    text = f"{mean:#.{digits}g}"
    return text + f" ± {std:.2g}" if n > 1 else text


def fmt_mean_std(values: np.ndarray) -> str:
    """Mean ± sample std of the values (see :func:`mean_std_text`)."""
    values = np.asarray(values, dtype=float)
    return mean_std_text(values.mean(), sample_std(values) if len(values) > 1 else np.nan, len(values))


def status_counts(statuses: pd.Series) -> str:
    """'not yet run ×2, other data build ×1': runs without a number, by status."""
    return ", ".join(f"{STATUS_WORD.get(s, s)} ×{c}" for s, c in statuses.value_counts().sort_index().items())


def cell_text(c: dict, digits: int = 4) -> str:
    """A cell of :func:`benchmark.report.cells.cell`: mean ± std (n=seeds; the other seeds by status),
    or why it has no number."""
    if not c["n"]:
        return c["why"]
    text = mean_std_text(c["mean"], c["std"], c["n"], digits)
    return f"{text} (n={c['n']}; {c['gaps']})" if c.get("gaps") else f"{text} (n={c['n']})"


def published_text(value, digits: int | None = None) -> str:
    """A published number as ``benchmark/published.yaml`` gives it, ``[mean, std or null]`` or null
    (``digits``: significant digits, for a converted number; as written otherwise)."""
    if value is None:
        return "–"
    mean, std = value
    if digits is None:
        return f"{mean:g}" + (f" ± {std:g}" if std is not None else "")
    return f"{mean:#.{digits}g}" + (f" ± {std:.2g}" if std is not None else "")


def or_dash(value, spec: str) -> str:
    """``value`` in the format ``spec``, '-' when there is none (the cost report's empty cells)."""
    return "-" if value is None else format(value, spec)
