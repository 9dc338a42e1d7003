"""Effect sizes with uncertainty: skill against a baseline and its paired, blocked bootstrap interval.

skill = 1 - MSE(method) / MSE(baseline), both on the same test windows: 0 = no better than the
baseline, 1 = perfect, negative = worse.  Its 95 % interval comes from a bootstrap that respects
how the test windows depend on each other:

* ``trajectories``: two or more test trajectories: resample trajectories with replacement, then the
  windows within each drawn trajectory with replacement (hierarchical bootstrap; windows of one
  trajectory are correlated, trajectories are not);
* ``blocks``: a single test trajectory: resample contiguous blocks of windows (ordered by t0) whose
  span covers at least ``block_frames`` frames, the decorrelation length (moving-block bootstrap);
* ``windows``: windows resampled independently (naive; only on request, ``scheme="windows"``).

Every resample is *paired*: the method and the baseline are scored on the same drawn windows.
Seeds: the method's per-window errors of several seeds ([seeds, windows]) are combined by also
drawing the seeds with replacement in every resample and averaging their errors on the drawn windows,
so the interval contains the spread over seeds as well as over test data.  A method *beats* the
baseline only when the whole interval lies above zero.

Per-window errors come from the run files (``artifacts.window_errors``, written by
:func:`benchmark.evaluation.window_errors_artifact`; read back with :func:`read_window_errors`; those
at the predictability-horizon ladder's rungs ``artifacts.ladder_errors``, :func:`read_ladder_errors`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
# The trivial baselines skill is measured against (the brief's "static, constant velocity, the mean
# structure"); per cell and horizon the best of those present (lowest mean MSE) is the reference.
TRIVIAL_BASELINES = ("static", "constant_velocity", "mean_structure")
N_BOOT = 2000


def best_baseline(mean_mse: dict) -> str | None:
    """The reference of a cell: of the trivial baselines in ``mean_mse`` (name -> mean test MSE over
    seeds), the one with the lowest finite MSE (ties: the first in :data:`TRIVIAL_BASELINES`); None
    when the cell has none with a number."""
    scored = [(float(mean_mse[b]), i, b) for i, b in enumerate(TRIVIAL_BASELINES)
              if b in mean_mse and mean_mse[b] is not None and np.isfinite(mean_mse[b])]
    return min(scored)[2] if scored else None


@dataclass(frozen=True)
class Skill:
    """A skill estimate with its bootstrap interval and how the interval was made."""

    value: float
    low: float
    high: float
    scheme: str  # "trajectories", "blocks" or "windows"
    n_windows: int
    n_trajectories: int
    n_seeds: int
    block_windows: int | None = None  # windows per block (scheme "blocks")

    @property
    def beats(self) -> bool:
        """Significantly better than the baseline: the whole interval above zero."""
        return bool(self.low > 0)

    def as_dict(self) -> dict:
        return {"skill": self.value, "ci_low": self.low, "ci_high": self.high, "scheme": self.scheme,
                "n_windows": self.n_windows, "n_trajectories": self.n_trajectories, "n_seeds": self.n_seeds,
                "block_windows": self.block_windows}


def skill(mse: float, mse_baseline: float) -> float:
    """1 - MSE / MSE(baseline); nan when the baseline is 0 or not finite."""
    if not np.isfinite(mse_baseline) or mse_baseline <= 0:
        return float("nan")
    return float(1.0 - mse / mse_baseline)


def block_length(t0: np.ndarray, block_frames: int) -> int:
    """Windows per block so that a block of consecutive windows (sorted by t0) spans at least
    ``block_frames`` frames: ceil(block_frames / median spacing of t0), at least 1."""
    t = np.sort(np.asarray(t0))
    if len(t) < 2:
        return 1
    spacing = float(np.median(np.diff(t)))
    return max(1, int(np.ceil(block_frames / max(spacing, 1.0))))


def _draws(n: int, groups: list[np.ndarray], order: np.ndarray, scheme: str, block: int | None,
           rng: np.random.Generator) -> np.ndarray:
    """Indices of one bootstrap resample of ``n`` windows (``groups``: window indices per trajectory;
    ``order``: windows sorted by t0)."""
    if scheme == "windows":
        return rng.integers(0, n, size=n)
    if scheme == "trajectories":
        chosen = rng.integers(0, len(groups), size=len(groups))
        return np.concatenate([groups[c][rng.integers(0, len(groups[c]), size=len(groups[c]))] for c in chosen])
    starts = rng.integers(0, n - block + 1, size=int(np.ceil(n / block)))
    return order[(starts[:, None] + np.arange(block)[None, :]).ravel()[:n]]


def _resampling(traj: np.ndarray, t0, block_frames: int | None, scheme: str | None):
    """How the windows are resampled (module docstring): the scheme (``trajectories`` with two or more
    trajectories, else ``blocks``, unless forced), the block length in windows (blocks only), the
    windows of each trajectory and the windows' order in time (blocks are consecutive in time)."""
    n = len(traj)
    trajectories = np.unique(traj)
    if scheme is None:
        scheme = "trajectories" if len(trajectories) >= 2 else "blocks"
    block = None
    if scheme == "blocks":
        if t0 is None or block_frames is None:
            raise ValueError("a single test trajectory needs t0 and block_frames (the decorrelation length in "
                             "frames) for the block bootstrap")
        t0 = np.asarray(t0)
        span = int(t0.max() - t0.min()) + 1
        if block_frames >= span:
            raise ValueError(f"block of {block_frames} frames is not shorter than the test windows' span of {span} "
                             f"frames: no two independent blocks to resample")
        block = block_length(t0, block_frames)
    elif scheme not in ("trajectories", "windows"):
        raise ValueError(f"unknown bootstrap scheme {scheme!r}; valid: trajectories, blocks, windows")
    groups = [np.flatnonzero(traj == i) for i in trajectories]
    order = np.arange(n) if t0 is None else np.argsort(np.asarray(t0), kind="stable")
    return scheme, block, groups, order


def bootstrap_skill(errors: np.ndarray, baseline: np.ndarray, traj, t0=None, *, block_frames: int | None = None,
                    scheme: str | None = None, n_boot: int = N_BOOT, confidence: float = CONFIDENCE,
                    seed: int = 0) -> Skill:
    """Skill of ``errors`` against ``baseline`` with a paired bootstrap interval.

    ``errors``: per-window squared errors of the method, [windows] or [seeds, windows] (reduce the
    offsets first: mean over offsets, or one offset's column); ``baseline``: [windows] on the same
    windows; ``traj``: trajectory id per window; ``t0``: start frame per window (needed for blocks).
    The scheme is ``trajectories`` with two or more trajectories, else ``blocks`` (which needs
    ``block_frames``, the decorrelation length in frames); ``scheme`` forces one.
    """
    errors = np.atleast_2d(np.asarray(errors, dtype=np.float64))
    baseline = np.asarray(baseline, dtype=np.float64)
    traj = np.asarray(traj)
    n_seeds, n = errors.shape
    if baseline.shape != (n,) or traj.shape != (n,):
        raise ValueError(f"errors {errors.shape}, baseline {baseline.shape} and traj {traj.shape} must describe "
                         f"the same {n} windows")
    scheme, block, groups, order = _resampling(traj, t0, block_frames, scheme)
    n_traj = len(groups)
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    for b in range(n_boot):
        idx = _draws(n, groups, order, scheme, block, rng)
        seeds = rng.integers(0, n_seeds, size=n_seeds)
        stats[b] = skill(errors[seeds][:, idx].mean(), baseline[idx].mean())
    alpha = (1.0 - confidence) / 2
    low, high = np.nanquantile(stats, [alpha, 1.0 - alpha])
    return Skill(value=skill(errors.mean(), baseline.mean()), low=float(low), high=float(high), scheme=scheme,
                 n_windows=n, n_trajectories=n_traj, n_seeds=n_seeds, block_windows=block)


def bootstrap_weights(traj, t0=None, n_seeds: int = 1, *, block_frames: int | None = None,
                      scheme: str | None = None, n_boot: int = N_BOOT, seed: int = 0):
    """The resamples of :func:`bootstrap_skill` as counts, to score many columns (rungs, methods) on
    the very same draws at once: ``windows`` [n_boot, n] how often each window is drawn, ``seeds``
    [n_boot, n_seeds] how often each seed is, the scheme and the block length (windows).  The same
    random draws as :func:`bootstrap_skill` with the same arguments, so a column scored with these
    weights has its interval (tested)."""
    traj = np.asarray(traj)
    n = len(traj)
    scheme, block, groups, order = _resampling(traj, t0, block_frames, scheme)
    rng = np.random.default_rng(seed)
    windows, seeds = np.zeros((n_boot, n)), np.zeros((n_boot, n_seeds))
    for b in range(n_boot):
        windows[b] = np.bincount(_draws(n, groups, order, scheme, block, rng), minlength=n)
        seeds[b] = np.bincount(rng.integers(0, n_seeds, size=n_seeds), minlength=n_seeds)
    return windows, seeds, scheme, block


def skill_by_offset(errors: np.ndarray, baseline: np.ndarray, traj, t0=None, per_offset: bool = True, **kw) -> dict:
    """:func:`bootstrap_skill` for the mean over offsets (key ``"mean_over_offsets"``) and for every
    offset slot k = 1..K (key ``k``; only with ``per_offset``), from per-window, per-offset errors
    [seeds, windows, K] (or [windows, K]) and the baseline's [windows, K]."""
    errors = np.asarray(errors, dtype=np.float64)
    if errors.ndim == 2:
        errors = errors[None]
    baseline = np.asarray(baseline, dtype=np.float64)
    out = {"mean_over_offsets": bootstrap_skill(errors.mean(-1), baseline.mean(-1), traj, t0, **kw)}
    for k in range(errors.shape[-1] if per_offset else 0):
        out[k + 1] = bootstrap_skill(errors[..., k], baseline[:, k], traj, t0, **kw)
    return out


# ---------------------------------------------------------------- validity of a cell
MIN_VALID_FRACTION = 0.95


def cell_valid(valid_fractions, min_fraction: float = MIN_VALID_FRACTION) -> bool | None:
    """Whether a cell's predictions are physically valid: every seed's ``valid`` row (fraction of
    valid predicted frames) at least ``min_fraction``.  None when the cell has no ``valid`` row
    (periodic liquids, old run files): validity was not assessed.  An invalid cell never counts
    as a win, whatever its MSE."""
    values = [float(v) for v in np.atleast_1d(valid_fractions) if v is not None]
    if not values:
        return None
    return bool(np.all(np.nan_to_num(values, nan=0.0) >= min_fraction))


SATURATION = 0.05  # static within 5 % of the ceiling: the task no longer separates methods


def saturated(static_mse: float, ceiling: float, tolerance: float = SATURATION) -> bool | None:
    """Whether a window or horizon is saturated: the static baseline's MSE within ``tolerance``
    (relative) of the ceiling, the MSE of positions that no longer correlate with the start.  There
    every method sits near the ceiling and differences rank noise; a saturated cell is shown as such
    and never ranked.  None when either number is missing (old run files have no ceiling row)."""
    if static_mse is None or ceiling is None or not np.isfinite(static_mse) or not np.isfinite(ceiling) or ceiling <= 0:
        return None
    return bool(static_mse >= (1.0 - tolerance) * ceiling)


def significant_win(result: Skill, valid: bool | None) -> bool:
    """The board's rule: a method beats a baseline in a cell when its skill interval lies wholly above
    zero and the cell is not invalid."""
    return result.beats and valid is not False


# ---------------------------------------------------------------- per-window errors in run files
def encode_rows(values: np.ndarray, digits: int = 3) -> list[str]:
    """[S, K] floats -> S strings of K space-separated numbers with ``digits`` significant digits
    (compact in an indented JSON file; ``inf``/``nan`` survive)."""
    fmt = f"%.{digits}g"
    return [" ".join(fmt % v for v in row) for row in np.atleast_2d(values)]


def decode_rows(rows: list[str]) -> np.ndarray:
    """Inverse of :func:`encode_rows`: [S, K] float64."""
    return np.array(" ".join(rows).split(), dtype=np.float64).reshape(len(rows), -1)


def read_window_errors(run: dict) -> dict | None:
    """The per-window test errors of a run file as arrays, or None (old run files, failed runs):
    ``traj`` [S] trajectory ids, ``t0`` [S], ``mse`` [S, K] squared errors per window and offset
    slot, ``offsets`` [K] (None when offsets differ per window: irregular sampling) and ``metric``,
    ``convention`` of the primary row they make up."""
    art = (run.get("artifacts") or {}).get("window_errors")
    if not art:
        return None
    return {"traj": np.array(art["traj"].split(), dtype=np.int64), "t0": np.array(art["t0"].split(), dtype=np.int64),
            "mse": decode_rows(art["mse"]),
            "offsets": None if art.get("offsets") is None else np.array(art["offsets"].split(), dtype=np.int64),
            "metric": art["metric"], "convention": art["convention"]}


def read_ladder_errors(run: dict) -> dict | None:
    """The per-window squared errors at the predictability-horizon ladder's rungs
    (``artifacts.ladder_errors``, written by :func:`benchmark.evaluation.ladder_errors_artifact`), or
    None (run files that predate the ladder, failed runs): ``traj`` [S], ``t0`` [S], ``rungs`` [R]
    frame offsets, ``frame_ps`` picoseconds per frame, ``mse`` [S, R]."""
    art = (run.get("artifacts") or {}).get("ladder_errors")
    if not art:
        return None
    return {"traj": np.array(art["traj"].split(), dtype=np.int64), "t0": np.array(art["t0"].split(), dtype=np.int64),
            "rungs": np.array(art["rungs"].split(), dtype=np.int64), "frame_ps": float(art["frame_ps"]),
            "mse": decode_rows(art["mse"])}


def paired_window_errors(runs: list[dict], baseline_runs: list[dict]) -> tuple[list[dict], list[dict]] | None:
    """The per-window errors (:func:`read_window_errors`) of ``runs`` and of ``baseline_runs``, checked
    to describe the same test windows (a paired comparison needs them); None when a run file has none
    (old runs, failed runs)."""
    mine = [read_window_errors(r) for r in runs]
    base = [read_window_errors(r) for r in baseline_runs]
    if not mine or not base or any(w is None for w in mine + base):
        return None
    ref = base[0]
    for w in mine + base:
        if not (np.array_equal(w["traj"], ref["traj"]) and np.array_equal(w["t0"], ref["t0"])
                and w["mse"].shape == ref["mse"].shape):
            raise ValueError("method and baseline runs were evaluated on different test windows; "
                             "rebuild the split and rerun both")
    return mine, base


def skill_from_runs(runs: list[dict], baseline_runs: list[dict], **kw) -> dict | None:
    """:func:`skill_by_offset` of a cell from its run files: ``runs`` (one per seed) against
    ``baseline_runs`` (the baseline's run files of the same cell, averaged over seeds), paired on the
    same test windows; ``kw`` as :func:`bootstrap_skill` (``block_frames`` for a single test
    trajectory).  None when a run file has no per-window errors (old runs, failed runs)."""
    paired = paired_window_errors(runs, baseline_runs)
    if paired is None:
        return None
    mine, base = paired
    baseline = np.mean([w["mse"] for w in base], axis=0)
    return skill_by_offset(np.stack([w["mse"] for w in mine]), baseline, base[0]["traj"], base[0]["t0"], **kw)
