"""Prediction over a sample set and the per-sample errors the metrics are built from."""

from __future__ import annotations

import numpy as np

from benchmark.metrics import position_sq_error


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

