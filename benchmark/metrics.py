"""Metrics, in physical units (A^2 for positions).

Every function here has a hand-computed test in ``tests/test_metrics.py``.
Changing a definition means bumping ``benchmark.METRICS_VERSION``.

Position MSE per coordinate: mean over atoms and xyz of (pred - true)^2, with
the displacement taken by minimum image for periodic systems, so that an atom
crossing the box boundary is never counted as an error.
"""

from __future__ import annotations

import numpy as np

from benchmark.graph import minimum_image


def position_sq_error(pred: np.ndarray, target: np.ndarray, box=None) -> np.ndarray:
    """Squared error per sample and query: [..., N, 3] -> [...] (mean over atoms, xyz).

    A non-finite prediction gives ``inf`` for that sample/query (never silently 0).
    """
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} != target shape {target.shape}")
    delta = minimum_image(pred - target, box)
    err = np.mean(delta ** 2, axis=(-1, -2))
    finite = np.isfinite(pred).all(axis=(-1, -2))
    return np.where(finite, err, np.inf)


def window_rows(err: np.ndarray, offsets: np.ndarray, delta_frame: int) -> list[dict]:
    """Protocol A rows from per-sample, per-query squared errors ``err`` [S, K].

    * ``mse``/``mean_over_offsets``: mean over samples and the K queries (GF-NODE);
    * ``mse``/``last_offset``: mean over samples at the last query (EGNO);
    * ``mse_at_offset``/``slot``: mean over samples for each query slot k = 1..K,
      with the slot's frame offset when it is the same for every sample (regular).
    """
    err = np.asarray(err, dtype=np.float64)
    if err.ndim != 2 or err.shape[0] == 0 or err.shape[1] == 0:
        raise ValueError(f"window errors must be a non-empty [samples, queries] array, got {err.shape}")
    offsets = np.asarray(offsets).reshape(err.shape)
    rows = [
        {"metric": "mse", "convention": "mean_over_offsets", "horizon": delta_frame, "offset": None,
         "value": float(err.mean()), "unit": "A^2"},
        {"metric": "mse", "convention": "last_offset", "horizon": delta_frame, "offset": None,
         "value": float(err[:, -1].mean()), "unit": "A^2"},
    ]
    regular = bool((offsets == offsets[:1]).all())
    for k in range(err.shape[1]):
        rows.append({"metric": "mse_at_offset", "convention": f"slot_{k + 1}", "horizon": delta_frame,
                     "offset": int(offsets[0, k]) if regular else None,
                     "value": float(err[:, k].mean()), "unit": "A^2"})
    return rows
