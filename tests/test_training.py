"""The generic trainer: learning, selection on validation, resume, divergence."""

import numpy as np
import pytest
import torch

from benchmark.training import Diverged
from methods import Budget, TorchMethod


class Drift(torch.nn.Module):
    """x(t) = x0 + t * (a v0 + b): two-parameter toy model."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.zeros(()))
        self.b = torch.nn.Parameter(torch.zeros(3))

    def forward(self, context, query_times):
        t = query_times[:, :, None, None]
        return context.positions[:, None] + t * (self.a * context.velocities[:, None] + self.b)


class ToyMethod(TorchMethod):
    name = ""  # not registered
    defaults = {**TorchMethod.defaults, "lr": 1e-2, "batch_size": 4, "eval_every": 1}

    def setup(self, train):
        return {}

    def build(self):
        return Drift()


def _fit(tiny_tasks, ckpt=None, epochs=4, **params):
    train, val, _ = tiny_tasks["chain"]
    method = ToyMethod(**params)
    info = method.fit(train, val, Budget(epochs=epochs), seed=1, device="cpu", checkpoint_dir=ckpt)
    return method, info


def test_training_improves_and_selects_on_validation(tiny_tasks):
    _, info = _fit(tiny_tasks, epochs=6)
    vals = [h["val_mse"] for h in info["history"]]
    assert info["best_val_mse"] == min(vals)
    assert info["best_epoch"] == int(np.argmin(vals))


def test_resume_is_bit_identical(tiny_tasks, tmp_path):
    full, _ = _fit(tiny_tasks, tmp_path / "a", epochs=4)
    _fit(tiny_tasks, tmp_path / "b", epochs=2)  # "crash" after 2 epochs
    resumed, info = _fit(tiny_tasks, tmp_path / "b", epochs=4)
    assert info["resumed_from_epoch"] == 2
    # the epochs of the interrupted process count in the train time
    assert 0 < info["train_seconds_before_resume"] < info["train_seconds"]
    for (k, v), (_, w) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(v, w), k


def test_divergence_is_detected(tiny_tasks):
    with pytest.raises(Diverged, match="diverged at epoch"):
        _fit(tiny_tasks, lr=1e30)


class Exploding(ToyMethod):
    """A finite loss that grows geometrically with every step (a run leaving the data's scale)."""

    def training_loss(self, batch, device):
        loss, n = super().training_loss(batch, device)
        self.steps = getattr(self, "steps", 0) + 1
        return (loss + 1.0) * 4.0 ** self.steps, n


def test_a_finite_but_exploded_loss_is_divergence(tiny_tasks):
    train, val, _ = tiny_tasks["chain"]
    with pytest.raises(Diverged, match="training loss grew from .* more than 10000 times"):
        Exploding().fit(train, val, Budget(epochs=40), seed=1, device="cpu")
    # the check is relative to the first epoch: an ordinary run never trips it
    _, info = _fit(tiny_tasks, epochs=6)
    assert info["epochs_run"] == 6
