"""The generic trainer: learning, selection on validation, resume, divergence; epoch and step budgets."""

import numpy as np
import pytest
import torch
import yaml

from benchmark.config import SUITES_DIR, ConfigError, load_suite
from benchmark.training import Diverged, converged, lr_factor, validation_subset
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


# --------------------------------------------------------------------------- step budgets


def _curve(*values, every=10):
    return [{"step": every * (i + 1), "val_mse": v} for i, v in enumerate(values)]


@pytest.mark.parametrize("curve,steps,expected", [
    (_curve(1.0, 0.5, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4), 100, True),  # flat for the last half
    (_curve(1.0, 0.8, 0.6, 0.5, 0.45, 0.42, 0.41, 0.405, 0.4029, 0.4028), 100, True),  # 0.6 % after step 80
    (_curve(1.0, 0.8, 0.6, 0.5, 0.45, 0.42, 0.41, 0.405, 0.39, 0.38), 100, False),  # 6 % after step 80
    (_curve(1.0, 0.9, 0.8, 0.7, 0.6), 50, False),  # still falling at the end
    (_curve(1.0, 2.0, 3.0, 4.0, 5.0), 50, True),  # getting worse: the best stays where it was
    (_curve(1.0), 10, False),  # no validation before the last 20 %: cannot tell
    ([], 0, False),
    (_curve(1.0, float("nan"), 1.0, 1.0, 1.0), 50, True),  # a non-finite point is ignored
])
def test_converged_rule_on_hand_made_curves(curve, steps, expected):
    assert converged(curve, steps) is expected


def test_warmup_cosine_schedule():
    f = [lr_factor("warmup_cosine", s, 100, 10) for s in range(100)]
    assert f[0] < f[5] < f[9] < 1.0  # linear warm-up
    assert f[10] == pytest.approx(1.0) and f[55] == pytest.approx(0.5) and f[99] < 1e-3
    assert all(a >= b for a, b in zip(f[10:], f[11:]))  # then only down
    assert lr_factor("constant", 50, 100, 10) == 1.0


def _fit_steps(tiny_tasks, ckpt=None, method=None, **budget):
    train, val, _ = tiny_tasks["chain"]
    method = method or ToyMethod()
    info = method.fit(train, val, Budget(**budget), seed=1, device="cpu", checkpoint_dir=ckpt)
    return method, info


def test_step_budget_records_the_curve_and_restores_the_best(tiny_tasks):
    method, info = _fit_steps(tiny_tasks, steps=30, val_every=5)
    assert info["steps"] == 30 and info["stop_reason"] == "budget"
    assert [p["step"] for p in info["val_curve"]] == [5, 10, 15, 20, 25, 30]
    best = min(p["val_mse"] for p in info["val_curve"])
    assert info["best_val_mse"] == best and info["converged"] == converged(info["val_curve"], 30)
    train, val, _ = tiny_tasks["chain"]
    assert method.validation_error(val, "cpu") == pytest.approx(best)  # the best weights are back
    assert info["grad_clip"] == 10.0 and info["schedule"] == "warmup_cosine"


def test_patience_stops_early(tiny_tasks):
    class Worsening(ToyMethod):  # validation only gets worse after the first
        def validation_error(self, val, device):
            self.calls = getattr(self, "calls", 0) + 1
            return float(self.calls)

    method, info = _fit_steps(tiny_tasks, method=Worsening(), steps=100, val_every=2, patience=3)
    assert info["stop_reason"] == "patience" and info["steps"] == 8  # 1 best + 3 worse validations
    assert info["best_step"] == 2 and info["converged"]


def test_time_limit_stops_a_step_budget(tiny_tasks):
    _, info = _fit_steps(tiny_tasks, steps=10_000, val_every=5, time_limit_s=1e-9)
    assert info["stop_reason"] == "time_limit" and info["steps"] == 5


def test_step_divergence_carries_the_curve(tiny_tasks):
    with pytest.raises(Diverged, match="diverged at step") as exc:
        _fit_steps(tiny_tasks, method=ToyMethod(lr=1e30), steps=50, val_every=1, schedule="constant")
    assert exc.value.facts["stop_reason"] == "diverged" and exc.value.facts["converged"] is False


def test_step_budget_resume_is_bit_identical(tiny_tasks, tmp_path):
    full, _ = _fit_steps(tiny_tasks, tmp_path / "a", steps=20, val_every=5)
    _fit_steps(tiny_tasks, tmp_path / "b", steps=20, val_every=5, time_limit_s=1e-9)  # stops after 5 steps
    resumed, info = _fit_steps(tiny_tasks, tmp_path / "b", steps=20, val_every=5)
    assert info["resumed_from_step"] == 5 and info["steps"] == 20 and info["stop_reason"] == "budget"
    for (k, v), (_, w) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(v, w), k


def test_validation_subset_is_fixed_and_evenly_spaced(tiny_tasks):
    _, val, _ = tiny_tasks["chain"]
    sub = validation_subset(val, 3)
    assert len(sub) == 3 and sub.t0.tolist() == val.t0[[0, (len(val) - 1) // 2, len(val) - 1]].tolist()
    assert torch.equal(sub.targets([2]), val.targets([len(val) - 1]))
    assert validation_subset(val, None) is val and validation_subset(val, 10_000) is val


def _suite_with_budget(tmp_path, budget):
    raw = yaml.safe_load((SUITES_DIR / "smoke.yaml").read_text())
    raw["methods"]["toy_egnn"] = {"method": "egnn", "budget": budget}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


@pytest.mark.parametrize("budget,match", [
    ({"steps": 0}, r"methods\.toy_egnn\.budget\.steps: 0 is less than the minimum of 1"),
    ({"steps": 100, "val_every": 10, "patience": 9},
     r"methods\.toy_egnn\.budget\.patience: 9 validations \(every 10 steps\) cannot stop the run before the "
     r"budget's 100 steps end; use patience at most 8"),
    ({"steps": 100, "patience": 60}, r"budget\.patience: 60 validations \(every 2 steps\)"),
    ({"steps": 100, "schedule": "cosine_warmup"},
     r"methods\.toy_egnn\.budget\.schedule: unknown 'cosine_warmup'; valid: constant, warmup_cosine"),
    ({"steps": 100, "val_every": 200}, r"budget\.val_every: 200 is more than the budget's 100 steps"),
    ({"steps": 100, "warmup_steps": 100}, r"budget\.warmup_steps: 100 is not below the budget's 100 steps"),
    ({"steps": 100, "epochs": 5}, r"budget\.epochs: an epoch budget key; a budget counts 'steps' or 'epochs'"),
    ({"epochs": 5, "patience": 3}, r"budget\.patience: belongs to a step budget; add 'steps'"),
    ({"steps": 100, "stesp": 3}, r"budget: Additional properties .*'stesp'"),
])
def test_bad_step_budget_is_a_config_error_naming_the_key(tmp_path, budget, match):
    with pytest.raises(ConfigError, match=match):
        load_suite(_suite_with_budget(tmp_path, budget))


def test_a_valid_step_budget_loads(tmp_path):
    budget = {"steps": 100, "val_every": 10, "patience": 8, "schedule": "warmup_cosine", "warmup_steps": 5,
              "grad_clip": 1.0, "val_samples": 16}
    suite = load_suite(_suite_with_budget(tmp_path, budget))
    assert suite.methods["toy_egnn"].budget == budget
    assert Budget(**budget).steps == 100
