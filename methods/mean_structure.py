"""Mean-structure baseline: the training set's mean geometry, placed onto the observed frame.

Not from a paper: the "climatology" forecast of weather benchmarks, for molecules.  Once the
vibrations have decorrelated from t0 (MD17 at ~1.5 ps), the best guess of the shape is the average
shape, and the best guess of its place and orientation is that of the last observed frame.

Fit: the training frames (observed and target frames of every training sample, at most
``max_frames`` evenly spaced) are centred and aligned iteratively (unweighted Kabsch): all onto the
first frame, then all onto their mean, repeated until the mean moves less than ``tol`` A (at most
``iterations`` rounds).  The mean of the aligned frames is the mean structure m (centred).

Predict: x(t) = R m + c for every query time t, where R and c are the rotation and translation that
superpose m on the observed frame x(t0) best (Kabsch, proper rotations only).

Periodic liquids have no mean structure (atoms are interchangeable and diffuse through the box):
the method is skipped there, and the decorrelated ceiling box^2/12 is their floor.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmark.metrics import kabsch_rotation, superpose
from methods.base import Method


def mean_structure(frames: np.ndarray, iterations: int = 20, tol: float = 1e-6) -> np.ndarray:
    """Centred mean [N, 3] of ``frames`` [F, N, 3] after iterative alignment onto the running mean."""
    frames = np.asarray(frames, dtype=np.float64)
    frames = frames - frames.mean(axis=1, keepdims=True)
    mean = frames[0]
    for _ in range(iterations):
        new = superpose(frames, mean).mean(axis=0)
        new -= new.mean(axis=0)
        moved = float(np.sqrt(np.mean((new - mean) ** 2)))
        mean = new
        if moved < tol:
            break
    return mean


class MeanStructure(Method):
    name = "mean_structure"
    description = "trivial baseline: the training mean geometry, superposed on x(t0) by rotation + translation"
    paper = "reference baseline (climatology)"
    seed_dependent = False
    supports_periodic = False
    defaults = {"max_frames": 5000, "iterations": 20, "tol": 1e-6}

    def __init__(self, **params):
        super().__init__(**params)
        self.mean: torch.Tensor | None = None

    def skip_reason(self, protocol, sample_set):
        if sample_set.periodic:
            return ("mean_structure: periodic liquids have no mean structure; their floor is the "
                    "decorrelated ceiling box^2/12")
        return super().skip_reason(protocol, sample_set)

    def fit(self, train, val, budget, seed, device, checkpoint_dir=None) -> dict:
        frames = torch.cat([train.observed_positions.flatten(0, 1), train.targets(np.arange(len(train))).flatten(0, 1)])
        keep = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), self.params["max_frames"])).round())
        mean = mean_structure(frames[torch.as_tensor(keep, dtype=torch.long)].numpy(), self.params["iterations"],
                              self.params["tol"])
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        return {"frames": len(keep)}

    def predict(self, context, query_times):
        x0 = context.positions.detach().cpu().double().numpy()  # [B, N, 3]
        centre = x0.mean(axis=1, keepdims=True)
        mean = self.mean.numpy()
        rot = kabsch_rotation(np.broadcast_to(mean, x0.shape), x0 - centre)  # [B, 3, 3]
        placed = mean @ np.swapaxes(rot, -1, -2) + centre  # [B, N, 3]
        out = torch.as_tensor(placed, dtype=context.positions.dtype, device=context.positions.device)
        return out[:, None].expand(-1, query_times.shape[1], -1, -1).clone()

    def state_dict(self) -> dict:
        return {"mean": self.mean}

    def load_state_dict(self, state: dict) -> None:
        self.mean = state["mean"]
