"""The method interface: one small class per method file.

Contract (modelled on benchopt's one-file-per-solver):

* class attributes: ``name`` (registry key), ``description`` (one line),
  ``paper`` (citation), ``defaults`` (every hyperparameter with its default;
  unknown keys are a config error), ``observed_frames`` (1 = single frame,
  more = needs an observed history), ``supports_periodic``, ``protocols``,
  ``seed_dependent`` (False for deterministic methods, whose results must be
  identical over seeds);
* ``fit(train, val, budget, seed, device, checkpoint_dir)`` learns from the
  training :class:`~benchmark.tasks.SampleSet` (targets available) and may use
  ``val`` for model selection only; returns a dict of facts (epochs, best
  epoch, ...);
* ``predict(context, query_times)`` returns positions [B, K, N, 3] in A for a
  :class:`~benchmark.tasks.Context` and query times [B, K] in fs after t0;
  it never sees targets;
* ``state_dict()`` / ``load_state_dict()`` persist what ``fit`` learned, and
  ``n_params()`` counts trainable parameters.

Trainable torch methods subclass :class:`TorchMethod`, which supplies fit,
predict, persistence and the trainer (checkpoints, resume, selection on
validation, divergence detection) and only asks for ``setup`` + ``build``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from benchmark.tasks import Context, SampleSet


@dataclass
class Budget:
    """How much training a run may spend; ``None`` leaves the method's default."""

    epochs: int | None = None
    time_limit_s: float | None = None
    eval_every: int | None = None


class Method:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    defaults: ClassVar[dict] = {}
    observed_frames: ClassVar[int] = 1
    supports_periodic: ClassVar[bool] = True
    protocols: ClassVar[tuple[str, ...]] = ("window", "extrapolate")
    seed_dependent: ClassVar[bool] = True
    # params that change prediction only, not training: suite entries differing only in them may
    # share one trained model (``shares_training_with``)
    inference_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params):
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise KeyError(f"method {self.name!r} has no parameter(s) {unknown}; "
                           f"valid: {', '.join(sorted(self.defaults)) or '(none)'}")
        self.params = {**self.defaults, **params}

    def skip_reason(self, protocol: str, sample_set: SampleSet) -> str | None:
        """Why this method cannot run on this task/dataset, or None."""
        if protocol not in self.protocols:
            return f"{self.name} does not support protocol {protocol!r}"
        if sample_set.periodic and not self.supports_periodic:
            return f"{self.name} does not support periodic boxes"
        if sample_set.spec.observed < self.observed_frames:
            return f"{self.name} needs {self.observed_frames} observed frames, task gives {sample_set.spec.observed}"
        return None

    def fit(self, train: SampleSet, val: SampleSet, budget: Budget, seed: int, device: str,
            checkpoint_dir=None) -> dict:
        return {}

    def predict(self, context: Context, query_times: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def diagnostics(self) -> dict:
        """Facts about the predictions since the last call (e.g. fallbacks), recorded per split
        in the run JSON and as ``diag_<key>`` rows of metrics.csv; resets its counters."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def n_params(self) -> int:
        return 0

    def to(self, device) -> "Method":
        return self


class TorchMethod(Method):
    """A method whose model is a ``torch.nn.Module`` trained by ``benchmark.training``.

    Subclasses implement ``setup(train) -> dict`` (JSON-able facts the model
    is built from, e.g. atom count) and ``build(**setup) -> nn.Module`` whose
    ``forward(context, query_times)`` returns [B, K, N, 3]; optionally
    ``loss(pred, target)`` (default: MSE).
    """

    defaults: ClassVar[dict] = {
        "epochs": 100, "batch_size": 50, "lr": 1e-4, "weight_decay": 1e-15,
        "lr_step": 2500, "lr_gamma": 0.5, "eval_every": 5, "grad_clip": 0.0,
    }

    def __init__(self, **params):
        super().__init__(**params)
        self.model: torch.nn.Module | None = None
        self.setup_args: dict | None = None

    def setup(self, train: SampleSet) -> dict:
        raise NotImplementedError

    def build(self, **setup_args) -> torch.nn.Module:
        raise NotImplementedError

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.mean((pred - target) ** 2)

    # ---- training hooks: the trainer (benchmark.training) calls these; override to change
    # the training data (segments, random lags), the loss (ELBO) or the optimiser.
    def configure_optimiser(self, model: torch.nn.Module, epochs: int):
        """(optimiser, scheduler stepped once per epoch); default Adam + StepLR."""
        p = self.params
        optimiser = torch.optim.Adam(model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        return optimiser, torch.optim.lr_scheduler.StepLR(optimiser, step_size=p["lr_step"], gamma=p["lr_gamma"])

    def training_batches(self, train: SampleSet, batch_size: int, generator: torch.Generator):
        """Batches of one epoch (any objects ``training_loss`` understands)."""
        return train.batches(batch_size, shuffle=True, generator=generator)

    def training_loss(self, batch, device) -> tuple[torch.Tensor, int]:
        """(loss, number of samples) of one batch."""
        context, query_times, target = (x.to(device) for x in batch)
        return self.loss(self.model(context, query_times), target), len(query_times)

    def after_step(self, model: torch.nn.Module) -> None:
        """Runs after every optimiser step (e.g. EMA weights)."""

    def validation_error(self, val: SampleSet, device) -> float:
        """Model-selection score on validation data (lower is better): MSE in A^2."""
        from benchmark.evaluation import predict_errors

        return float(predict_errors(self, val, self.params["batch_size"], device).mean())

    def fit(self, train, val, budget, seed, device, checkpoint_dir=None) -> dict:
        from benchmark.training import seed_everything, train_model

        seed_everything(seed)
        self.setup_args = self.setup(train)
        self.model = self.build(**self.setup_args).to(device)
        return train_model(self, train, val, budget=budget, seed=seed, device=device,
                           checkpoint_dir=checkpoint_dir, desc=f"{self.name} seed {seed}")

    def predict(self, context, query_times):
        self.model.eval()
        with torch.no_grad():
            return self.model(context, query_times)

    def state_dict(self) -> dict:
        return {"setup": self.setup_args, "model": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.setup_args = state["setup"]
        self.model = self.build(**self.setup_args)
        self.model.load_state_dict(state["model"])

    def n_params(self) -> int:
        return 0 if self.model is None else sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def to(self, device):
        if self.model is not None:
            self.model.to(device)
        return self
