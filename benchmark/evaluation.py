"""Prediction over a sample set and the per-sample errors the metrics are built from."""

from __future__ import annotations

import time

import numpy as np

from benchmark.metrics import (
    BOND_TOLERANCE,
    MIN_DISTANCE,
    aligned_rows,
    aligned_sq_error,
    decorrelated_pairs_mse,
    dihedral_features,
    dihedrals,
    extrapolate_rows,
    periodic_ceiling,
    position_sq_error,
    ramachandran_kl,
    rdf_wasserstein,
    structure_rows,
    valid_frames,
    validity_row,
    vamp2,
    window_rows,
)
from benchmark.specs import TaskError
from benchmark.stats import encode_rows


def predict_errors(method, sample_set, batch_size: int, device: str = "cpu",
                   return_predictions: bool = False):
    """Squared position error [S, K] (A^2) of ``method`` on every sample of ``sample_set``.

    The method receives contexts and query times only; targets are compared here.
    """
    errors, preds = [], []
    for context, query_times, target in sample_set.batches(batch_size):
        pred = method.predict(context.to(device), query_times.to(device))
        if tuple(pred.shape) != tuple(target.shape):
            raise ValueError(f"{method.name}.predict returned shape {tuple(pred.shape)}, "
                             f"expected {tuple(target.shape)} [batch, queries, atoms, 3]")
        pred = pred.detach().float().cpu().numpy()
        box = None if sample_set.box is None else sample_set.box.numpy()
        errors.append(position_sq_error(pred, target.numpy(), box))
        if return_predictions:
            preds.append(pred)
    err = np.concatenate(errors, axis=0)
    if return_predictions:
        return err, np.concatenate(preds, axis=0)
    return err


def _fill(rows: list[dict], horizon: int) -> list[dict]:
    return [{"horizon": horizon, "offset": None, **r} for r in rows]


def stored_to_task_atoms(indices, atom_index: np.ndarray, what: str) -> list[int]:
    """Atom indices given in the dataset's stored order, renumbered to the task's atoms
    (e.g. ``atoms: heavy``); an atom the task dropped is an error naming the key."""
    position = {int(a): k for k, a in enumerate(atom_index)}
    missing = [i for i in indices if int(i) not in position]
    if missing:
        raise ValueError(f"metrics.dihedrals.{what}: atoms {missing} are not among the task's atoms "
                         f"(key 'atoms'); give indices of kept atoms in the dataset's stored order")
    return [position[int(i)] for i in indices]


def window_errors_artifact(err: np.ndarray, sample_set, split: dict, metric: str = "mse") -> dict:
    """The per-window squared errors behind the primary metric, compact, for the paired bootstrap
    (:mod:`benchmark.stats`): trajectory id and t0 per window, and one string of errors per window
    (3 significant digits).  Window protocol: every offset slot (``<metric>``/``mean_over_offsets``);
    extrapolate: the full-domain frames (``<metric>``/``full_domain``), one row per test trajectory.
    ``metric`` names the task's primary metric that ``err`` holds: ``mse`` (raw squared errors) or
    ``mse_aligned`` (after superposing each predicted frame, :func:`aligned_errors`); the key of the
    errors is ``mse`` either way."""
    if split["protocol"] == "window":
        offsets = sample_set.offsets
        regular = bool((offsets == offsets[:1]).all())
        cols, convention = slice(None), "mean_over_offsets"
        shown = " ".join(str(int(o)) for o in offsets[0]) if regular else None
    else:
        cols = np.asarray(split["full_domain_offsets"], dtype=np.int64) - 1
        convention, shown = "full_domain", " ".join(str(int(c) + 1) for c in cols)
    return {"metric": metric, "convention": convention,
            "traj": " ".join(str(int(i)) for i in sample_set.traj_idx),
            "t0": " ".join(str(int(t)) for t in sample_set.t0),
            "offsets": shown, "mse": encode_rows(err[:, cols])}


def ladder_errors_artifact(method, sample_set, split: dict, err: np.ndarray, rungs, batch_size: int,
                           device: str = "cpu") -> dict:
    """The per-window squared errors at the predictability-horizon ladder's ``rungs`` (frame offsets),
    for :mod:`benchmark.report.horizon`, in the encoding of ``window_errors``: ``rungs`` and
    ``frame_ps`` (picoseconds per frame) beside ``traj``, ``t0`` and one row of errors per window.

    Protocol A: the test windows' start frames queried once more, at the rungs as query offsets
    (:meth:`SampleSet.at_offsets`; a trained model answers any offset up to delta_frame; its own
    evaluation ``err`` is not used).  Protocol B: the columns of ``err`` (the predicted segment,
    offsets 1..horizon) at the rungs, no new prediction.  Costs evaluations, never training.
    Always raw squared errors (``metric`` = ``mse``), also where the task's primary metric is
    ``mse_aligned``: the ladder compares methods with the raw baselines' errors."""
    rungs = np.asarray(rungs, dtype=np.int64)
    if split["protocol"] == "window":
        err = predict_errors(method, sample_set.at_offsets(rungs), batch_size, device)
    else:
        err = err[:, rungs - 1]
    return {"metric": "mse", "convention": "per_rung", "rungs": " ".join(str(int(r)) for r in rungs),
            "frame_ps": float(sample_set.dt_fs) / 1000.0,
            "traj": " ".join(str(int(i)) for i in sample_set.traj_idx),
            "t0": " ".join(str(int(t)) for t in sample_set.t0), "mse": encode_rows(err)}


def aligned_errors(pred: np.ndarray, target: np.ndarray, sample_set) -> np.ndarray:
    """Aligned squared errors [S, K] of a molecular part: each predicted frame superposed on its true
    frame (optimal rotation + translation) over the heavy atoms (all atoms when fewer than 3 are heavy)."""
    z = sample_set.atomic_numbers.numpy()
    heavy = np.flatnonzero(z > 1) if (z > 1).sum() >= 3 else None
    return aligned_sq_error(pred, target, heavy)


def physical_rows(pred: np.ndarray, target: np.ndarray, sample_set, split: dict, metrics_cfg: dict,
                  aligned: np.ndarray | None = None) -> list[dict]:
    """Rows of a molecular (non-periodic) task: ``mse_aligned`` over heavy atoms (each predicted frame
    superposed on its true frame; ``aligned``: those errors when already computed) and ``valid`` (bonds
    intact within ``bond_tolerance`` A, no atoms closer than ``min_distance`` A; task key
    ``metrics: {validity: ...}``)."""
    spec = sample_set.spec
    err = aligned_errors(pred, target, sample_set) if aligned is None else aligned
    rows = aligned_rows(err, split["protocol"], spec.delta_frame, split.get("full_domain_offsets"))
    cfg = metrics_cfg.get("validity") or {}
    tol, dmin = cfg.get("bond_tolerance", BOND_TOLERANCE), cfg.get("min_distance", MIN_DISTANCE)
    bonds = sample_set.bonds if sample_set.bonds is not None else np.zeros((0, 2), np.int64)
    rows.append(validity_row(valid_frames(pred, target, bonds, tol, dmin), spec.delta_frame, tol, dmin))
    return rows


def ceiling_row(sample_set, n_pairs: int = 2000) -> dict | None:
    """The cell's decorrelated ceiling (A^2), the MSE of positions that no longer correlate with t0:
    periodic boxes box^2/12 per coordinate (``ceiling``/``box2_over_12``); molecules the MSE between
    frames of this part's trajectories at least half a trajectory apart (``ceiling``/``far_pairs``);
    None when the trajectories are too short."""
    spec = sample_set.spec
    row = {"metric": "ceiling", "horizon": spec.delta_frame, "offset": None, "unit": "A^2"}
    if sample_set.box is not None:
        return {**row, "convention": "box2_over_12", "value": periodic_ceiling(sample_set.box.numpy())}
    trajs = [sample_set.dataset.trajectory(int(i)) for i in np.unique(sample_set.traj_idx)]
    separation = min(t.n_frames for t in trajs) // 2
    if separation < 1:
        return None
    value = decorrelated_pairs_mse([t.positions for t in trajs], separation, n_pairs, atoms=sample_set.atom_index)
    return {**row, "convention": "far_pairs", "value": value}


def evaluate_part(method, sample_set, split: dict, metrics_cfg: dict | None, batch_size: int,
                  device: str = "cpu", ladder=None, primary: str = "mse") -> tuple[list[dict], int, dict, float]:
    """Metric rows of one split part, the number of samples with non-finite predictions,
    artifacts for figures (``phi_psi``: up to 1000 predicted and reference (phi, psi) pairs),
    and the seconds spent predicting (the metrics themselves not included).

    ``metrics_cfg`` (the task's ``metrics`` key) switches on the structure
    metrics: ``structure`` (bond-length / bond-angle MAE over the dataset's
    bonds, ``heavy_atoms_only`` by default), ``dihedrals`` (``phi``/``psi``
    atom quadruples: Ramachandran KL, and VAMP-2 at ``vamp_lag`` for protocol
    B sequences) and ``rdf`` (Wasserstein-1 between pair-distance
    distributions up to ``r_max`` A over ``frames`` sampled frames).

    Always (evaluation v2, new rows and keys only): the ``ceiling`` row of the part's data; on
    molecules the ``mse_aligned`` and ``valid`` rows (:func:`physical_rows`; thresholds from the
    optional ``validity`` key); and the artifact ``window_errors`` (:func:`window_errors_artifact`).
    With ``ladder`` (the task's rungs; the runner passes them for the test part) also the artifact
    ``ladder_errors`` (:func:`ladder_errors_artifact`; in protocol A its queries are predictions too,
    so the part's method diagnostics count them).  ``primary`` (the task key, :func:`benchmark.metrics.primary`)
    picks the errors ``window_errors`` holds: raw (``mse``) or aligned (``mse_aligned``, molecules only).
    """
    metrics_cfg = metrics_cfg or {}
    spec = sample_set.spec
    start = time.perf_counter()
    err, pred = predict_errors(method, sample_set, batch_size, device, return_predictions=True)
    predict_seconds = time.perf_counter() - start
    bad = int((~np.isfinite(err)).any(axis=1).sum())
    if split["protocol"] == "window":
        rows = window_rows(err, sample_set.offsets, spec.delta_frame)
    else:
        norm = split["normalisation"]
        rows = extrapolate_rows(err, full_domain_offsets=split["full_domain_offsets"], windows=spec.windows,
                                failure_threshold=spec.failure_threshold, curve_bin=spec.curve_bin,
                                norm_range=(norm["min"], norm["max"]))
    target = sample_set.targets(np.arange(len(sample_set))).numpy()
    aligned = None
    if primary == "mse_aligned":
        if sample_set.box is not None:
            raise TaskError("primary: mse_aligned superposes molecules frame by frame; this part's data is a "
                            "periodic box (task key 'primary'): use mse")
        aligned = aligned_errors(pred, target, sample_set)
    primary_err = err if aligned is None else aligned
    artifacts: dict = {"window_errors": window_errors_artifact(primary_err, sample_set, split, primary)}
    if ladder:
        artifacts["ladder_errors"] = ladder_errors_artifact(method, sample_set, split, err, ladder, batch_size, device)
    extra = []
    ceiling = ceiling_row(sample_set)
    if ceiling is not None:
        extra.append(ceiling)
    if not bad and sample_set.box is None:
        extra += physical_rows(pred, target, sample_set, split, metrics_cfg, aligned)
    if bad or not set(metrics_cfg) - {"validity"}:
        return rows + _fill(extra, spec.delta_frame), bad, artifacts, predict_seconds
    frames_pred = pred.reshape(-1, *pred.shape[-2:])
    frames_true = target.reshape(-1, *target.shape[-2:])
    if "structure" in metrics_cfg:
        bonds = sample_set.bonds
        if bonds is None:
            raise ValueError(f"task asks for structure metrics but {sample_set.dataset.path} has no bonds")
        if metrics_cfg["structure"].get("heavy_atoms_only", True):
            z = sample_set.atomic_numbers.numpy()
            bonds = bonds[(z[bonds[:, 0]] > 1) & (z[bonds[:, 1]] > 1)]
        extra += structure_rows(frames_pred, frames_true, bonds)
    if "dihedrals" in metrics_cfg:
        cfg = metrics_cfg["dihedrals"]
        quads = [stored_to_task_atoms(cfg[name], sample_set.atom_index, name) for name in ("phi", "psi")]
        stride = max(1, len(frames_pred) // cfg.get("max_points", 5000))
        ang_p, ang_t = dihedrals(frames_pred[::stride], quads), dihedrals(frames_true[::stride], quads)
        extra.append({"metric": "ramachandran_kl", "convention": "kde_100x100_bw0.1",
                      "value": ramachandran_kl(ang_t, ang_p), "unit": "nats"})
        keep = np.linspace(0, len(ang_p) - 1, min(len(ang_p), 1000)).astype(int)
        artifacts["phi_psi"] = {"predicted": np.round(ang_p[keep], 3).tolist(),
                                "reference": np.round(ang_t[keep], 3).tolist()}
        if split["protocol"] == "extrapolate" and "vamp_lag" in cfg:
            lag = cfg["vamp_lag"]
            for who, series in (("predicted", pred), ("reference", target)):
                scores = [vamp2(dihedral_features(dihedrals(seq, quads)), lag) for seq in series]
                extra.append({"metric": "vamp2", "convention": f"{who}_lag_{lag}",
                              "value": float(np.mean(scores)), "unit": "score"})
    if "rdf" in metrics_cfg and sample_set.box is not None:
        cfg = metrics_cfg["rdf"]
        pick = np.linspace(0, len(frames_pred) - 1, min(cfg.get("frames", 20), len(frames_pred))).astype(int)
        extra.append({"metric": "rdf_w1", "convention": f"r_max_{cfg.get('r_max', 10.0):g}",
                      "value": rdf_wasserstein(frames_pred[pick], frames_true[pick], sample_set.box.numpy(),
                                               cfg.get("r_max", 10.0)), "unit": "A"})
    return rows + _fill(extra, spec.delta_frame), bad, artifacts, predict_seconds
