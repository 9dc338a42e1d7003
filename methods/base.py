"""The method interface: one small class per method file.

Contract (modelled on benchopt's one-file-per-solver):

* class attributes: ``name`` (registry key), ``description`` (one line),
  ``paper`` (citation), ``defaults`` (every hyperparameter with its default;
  unknown keys are a config error), ``observed_frames`` (1 = single frame,
  more = needs an observed history), ``supports_periodic``, ``protocols``,
  ``seed_dependent`` (False for deterministic methods, whose results must be
  identical over seeds);
* ``fit(train, val, budget, seed, device, checkpoint_dir)`` learns from the
  training :class:`~benchmark.samples.SampleSet` (targets available) and may use
  ``val`` for model selection only; returns a dict of facts (epochs, best
  epoch, ...);
* ``predict(context, query_times)`` returns positions [B, K, N, 3] in A for a
  :class:`~benchmark.samples.Context` and query times [B, K] in fs after t0;
  it never sees targets;
* ``state_dict()`` / ``load_state_dict()`` persist what ``fit`` learned, and
  ``n_params()`` counts trainable parameters.

Every optional hook is declared on the class that calls for it, with its
default and a docstring; a method overrides what it needs.

Base classes (a method file subclasses one of them):

* :class:`Method` - any method (baselines, per-series forecasts);
* :class:`TorchMethod` - a ``torch.nn.Module`` trained by ``benchmark.training``
  (checkpoints, resume, selection on validation, divergence detection); asks
  only for ``setup`` + ``build``;
* :class:`GraphMethod` - a TorchMethod whose model is a
  :class:`methods.nn.model.GraphModel` (EGNN, EGNO, GF-NODE, NDCN): shared
  graph parameters, protocol B training windows;
* :class:`PyGMethod` - a GraphMethod whose network is a PyTorch Geometric
  model receiving a ``torch_geometric.data.Batch`` (see :mod:`methods.nn.pyg`);
* :class:`LatentSequenceMethod` - a TorchMethod that encodes an observed
  sequence into a latent ODE state (LG-ODE, DoMiNO).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import torch

from benchmark.devices import tune_malloc
from benchmark.evaluation import predict_errors
from benchmark.metrics import position_sq_error
from benchmark.samples import Context, SampleSet, SegmentSet
from benchmark.specs import WindowSpec
from benchmark.training import seed_everything, train_model


@dataclass
class Budget:
    """How much training a run may spend; ``None`` leaves the method's default.

    ``epochs`` / ``eval_every``: the epoch budget (the method's ``epochs`` when neither this nor
    ``steps`` is set).  ``steps`` switches to the step budget of :mod:`benchmark.training`, with
    ``val_every``, ``val_samples``, ``patience``, ``schedule``, ``warmup_steps`` and ``grad_clip``
    (documented there).  ``time_limit_s`` caps either.
    """

    epochs: int | None = None
    time_limit_s: float | None = None
    eval_every: int | None = None
    steps: int | None = None
    val_every: int | None = None
    val_samples: int | None = None
    patience: int | None = None
    schedule: str | None = None
    warmup_steps: int | None = None
    grad_clip: float | None = None


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
    # parameters that make the method fast enough for the generic method test on tiny data
    # (``tests/test_methods_generic.py``); merged over ``defaults`` there
    test_params: ClassVar[dict] = {}
    model: torch.nn.Module | None = None  # the network of a TorchMethod once built; None otherwise

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
        """Learn from ``train`` (``val`` for model selection only); JSON-able facts. Default: nothing to learn."""
        return {}

    def predict(self, context: Context, query_times: torch.Tensor) -> torch.Tensor:
        """Positions [B, K, N, 3] (A) at ``query_times`` [B, K] (fs after t0); never sees targets."""
        raise NotImplementedError

    def diagnostics(self) -> dict:
        """Facts about the predictions since the last call (e.g. fallbacks), recorded per split
        in the run JSON and as ``diag_<key>`` rows of metrics.csv; resets its counters."""
        return {}

    def state_dict(self) -> dict:
        """What ``fit`` learned, for ``torch.save``; default: nothing."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned."""

    def n_params(self) -> int:
        """Trainable parameters (0 for methods without a network)."""
        return 0

    def to(self, device) -> "Method":
        """Move the learned state to ``device``; default: nothing to move."""
        return self


class TorchMethod(Method):
    """A method whose model is a ``torch.nn.Module`` trained by ``benchmark.training``.

    Subclasses implement ``setup(train) -> dict`` (JSON-able facts the model
    is built from, e.g. atom count) and ``build(**setup) -> nn.Module`` whose
    ``forward(context, query_times)`` returns [B, K, N, 3]; optionally
    ``loss(pred, target)`` (default: MSE) and the training hooks below.

    Speed measurement hooks (``python -m benchmark.perf`` builds untrained
    models of synthetic systems): ``perf_batch`` (below, with its default) and
    ``perf_setup(n_atoms, horizon_fs) -> dict``, declared here without a
    default: a method whose ``setup`` needs more than a synthetic training set
    offers (ITO's trajectory segments, the latent methods' scales) defines it;
    without it the harness calls ``setup`` on a synthetic training set (it
    tests ``hasattr(method, "perf_setup")``).
    """

    perf_setup: ClassVar[Callable[..., dict]]  # optional, no default (see above)
    # what ``validation_error`` measures: "mse" (position MSE, A^2) or the name of another score
    # (the learning-curve figures draw other scores on their own axis)
    validation_score: ClassVar[str] = "mse"

    defaults: ClassVar[dict] = {
        "epochs": 100, "batch_size": 50, "lr": 1e-4, "weight_decay": 1e-15,
        "lr_step": 2500, "lr_gamma": 0.5, "eval_every": 5, "grad_clip": 0.0,
    }

    def __init__(self, **params):
        super().__init__(**params)
        self.model: torch.nn.Module | None = None
        self.setup_args: dict | None = None

    def setup(self, train: SampleSet) -> dict:
        """JSON-able facts of the training data the model is built from (stored with the weights)."""
        raise NotImplementedError

    def build(self, **setup_args) -> torch.nn.Module:
        """The untrained model for ``setup``'s facts."""
        raise NotImplementedError

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Training loss of predicted vs. true positions [B, K, N, 3]; default: MSE."""
        return torch.mean((pred - target) ** 2)

    # ---- training hooks: the trainer (benchmark.training) calls these; override to change
    # the training data (segments, random lags), the loss (ELBO) or the optimiser.
    def configure_optimiser(self, model: torch.nn.Module, epochs: int):
        """(optimiser, scheduler stepped once per epoch); default Adam + StepLR.  Under a step
        budget ``epochs`` is the step count and only the optimiser is used: the trainer applies
        the budget's ``schedule`` to every method alike."""
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

    def perf_batch(self, context, query_times, target):
        """The batch ``training_loss`` takes, made from a synthetic (context, query_times, target)
        (``python -m benchmark.perf``); default: that triple, as ``training_batches`` yields it."""
        return context, query_times, target

    def validation_error(self, val: SampleSet, device) -> float:
        """Model-selection score on validation data (lower is better): MSE in A^2."""
        return float(predict_errors(self, val, self.params["batch_size"], device).mean())

    def fit(self, train, val, budget, seed, device, checkpoint_dir=None) -> dict:
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


# --------------------------------------------------------------------------- graph methods


def is_extrapolation(sample_set) -> bool:
    """Protocol B sample set (one long future per trajectory) rather than protocol A windows."""
    return not isinstance(sample_set.spec, WindowSpec)


def window_starts(sample_set) -> int:
    """How many single-frame windows of length ``horizon`` fit in a protocol B part's frames."""
    first = sample_set.t0 - sample_set.spec.observed + 1
    last = sample_set.t0 + sample_set.offsets.max(axis=1)
    return int(np.maximum(0, last - int(sample_set.spec.delta_frame) - first + 1).sum())


class GraphMethod(TorchMethod):
    """Shared plumbing of the graph methods; subclasses implement ``build`` (a
    :class:`methods.nn.model.GraphModel`).

    ``setup`` records what the model needs that is fixed per dataset: atom
    count, the largest atomic number, periodicity, and the horizon (frames)
    that normalises query times, tau = offset / horizon (protocol A:
    ``delta_frame``; protocol B: ``horizon``).  Under protocol B
    ``fit`` trains on protocol-A-style windows with ``delta_frame`` = that
    horizon, drawn by ``SampleSet.windows`` when the task provides it.

    Shared parameters: ``hidden``, ``n_layers``; ``cutoff`` (A, radius graph of
    liquids, kept below half the box); ``dense_fraction`` (a molecular graph
    with at least this fraction of all pairs uses the dense layer form);
    ``neighbor_backend`` (auto / dense / vesin); ``max_graphs`` (graph copies
    per forward pass, bounds memory when K is large); ``train_queries``,
    ``n_windows``, ``n_val_windows`` (protocol B training windows);
    ``tune_malloc`` (see :func:`benchmark.devices.tune_malloc`).
    """

    defaults = {**TorchMethod.defaults, "hidden": 64, "n_layers": 5, "cutoff": 7.5,
                "dense_fraction": 0.5, "neighbor_backend": "auto", "max_graphs": 400,
                "train_queries": 8, "n_windows": 500, "n_val_windows": 200, "tune_malloc": True}

    def setup(self, train) -> dict:
        horizon = int(train.spec.delta_frame)  # protocol B: the horizon (its windows use it too)
        return {"n_atoms": int(train.n_atoms), "z_max": int(train.atomic_numbers.max()),
                "horizon": horizon, "train_queries": int(train.offsets.shape[1])}

    def training_sets(self, train, val, seed):
        """The (train, val) sets ``fit`` trains on: protocol A parts as given; protocol B parts become
        single-frame windows with ``delta_frame`` = the horizon (``n_windows`` / ``n_val_windows``)."""
        if not is_extrapolation(train) or not hasattr(train, "windows"):
            return train, val
        kw = {"delta_frame": int(train.spec.delta_frame), "num_queries": self.params["train_queries"],
              "observed": 1}
        return (train.windows(n=min(self.params["n_windows"], window_starts(train)), seed=seed, **kw),
                val.windows(n=min(self.params["n_val_windows"], window_starts(val)), seed=seed + 1, **kw))

    def fit(self, train, val, budget, seed, device, checkpoint_dir=None) -> dict:
        train, val = self.training_sets(train, val, seed)
        if self.params["tune_malloc"]:
            tune_malloc()
        facts = super().fit(train, val, budget, seed, device, checkpoint_dir)
        if self.model.solver is not None:
            facts["ode"] = self.model.solver.stats()
        return facts


class PyGMethod(GraphMethod):
    """A graph method whose network is a PyTorch Geometric model.

    Subclasses implement ``network(**setup) -> nn.Module`` whose
    ``forward(batch)`` maps a ``torch_geometric.data.Batch`` (one graph per
    sample and query time; attributes in :func:`methods.nn.pyg.graph_batch`)
    to the positions [nodes, 3] of every node at its graph's query time.
    The parameters, graphs, protocol B windows and chunking of query times
    are those of :class:`GraphMethod`.
    """

    def network(self, **setup) -> torch.nn.Module:
        """The PyG network, built from ``setup``'s facts (``n_atoms``, ``z_max``, ...) and ``self.params``."""
        raise NotImplementedError

    def build(self, **setup):
        from methods.nn.pyg import PyGModel  # imports torch_geometric (seconds) only for PyG methods

        p = self.params
        return PyGModel(self.network(**setup), hidden=p["hidden"], cutoff=p["cutoff"],
                        dense_fraction=p["dense_fraction"], neighbor_backend=p["neighbor_backend"],
                        max_graphs=p["max_graphs"], **setup)


# --------------------------------------------------------------------------- latent sequence methods


class LatentSequenceMethod(TorchMethod):
    """Shared plumbing of LG-ODE and DoMiNO: scales, optimiser, query subsampling, validation subset.

    Under protocol B with training segments (task key ``train_segments``) ``fit`` trains on the
    split's segments (:class:`~benchmark.samples.SegmentSet`) instead of one sample per training
    trajectory; ``setup`` then records the segments' history length (``history``) and
    ``predict`` encodes only the last ``history`` observed frames, as in training.
    """

    observed_frames = 1  # the minimum: they encode whatever history the task gives (up to encode_frames)
    protocols = ("window", "extrapolate")
    common_defaults = {
        "epochs": 100, "batch_size": 16, "lr": 5e-4, "weight_decay": 1e-3, "grad_clip": 10.0,
        "eval_every": 5, "lr_step": 0, "lr_gamma": 1.0,
        "encode_frames": 16, "cutoff": 5.0, "solver": "rk4",
        "train_queries": 64, "val_samples": 64, "val_queries": 256, "predict_chunk": 512,
    }

    def fit(self, train, val, budget, seed, device, checkpoint_dir=None) -> dict:
        segments = train.segments() if hasattr(train, "segments") else None
        facts = super().fit(train if segments is None else segments, val, budget, seed, device, checkpoint_dir)
        if segments is not None:
            facts["train_segments"] = len(segments)
        return facts

    def setup(self, train) -> dict:
        n = min(len(train), 64)
        idx = np.linspace(0, len(train) - 1, n).round().astype(np.int64)
        ctx = train.context(idx)
        if isinstance(train, SegmentSet):  # up to 512 evenly spaced frames of each segment's horizon
            k = train.horizon
            target = train.targets(idx, np.linspace(0, k - 1, min(k, 512)).round().astype(np.int64))
        else:
            target = train.targets(idx)
        disp = target - ctx.positions[:, None]
        disp_scale = float(torch.sqrt((disp.double() ** 2).mean()).clamp(min=1e-3))
        vel_scale = float(torch.sqrt((ctx.observed_velocities.double() ** 2).mean()).clamp(min=1e-8))
        time_scale = float(train.query_times(np.arange(len(train))).max())
        facts = {"n_atoms": train.n_atoms, "disp_scale": disp_scale, "vel_scale": vel_scale,
                 "time_scale": time_scale}
        if isinstance(train, SegmentSet):
            facts["history"] = int(train.spec.observed)
        return facts

    def predict(self, context, query_times):
        """As trained: a model trained on segments encodes only their ``history`` last frames."""
        history = (self.setup_args or {}).get("history")
        if history and context.observed_positions.shape[1] > history:
            context = replace(context, observed_positions=context.observed_positions[:, -history:],
                              observed_velocities=context.observed_velocities[:, -history:],
                              observed_times=context.observed_times[-history:])
        return super().predict(context, query_times)

    def perf_setup(self, n_atoms: int, horizon_fs: float) -> dict:
        """Setup facts of a synthetic system (``python -m benchmark.perf``)."""
        return {"n_atoms": n_atoms, "disp_scale": 1.0, "vel_scale": 0.01, "time_scale": horizon_fs}

    def configure_optimiser(self, model, epochs):
        p = self.params
        opt = torch.optim.AdamW(model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(int(epochs), 1))

    def training_batches(self, train, batch_size, generator):
        """The task's training samples; long query lists (protocol B: 8000) are subsampled per batch
        (``train_queries`` random frames, the same for the batch; segments gather only those)."""
        k_max = self.params["train_queries"]
        if isinstance(train, SegmentSet):
            order = torch.randperm(len(train), generator=generator)
            k = train.horizon
            for start in range(0, len(train), batch_size):
                idx = order[start:start + batch_size].numpy()
                cols = np.arange(k)
                if k_max and k > k_max:
                    cols = torch.sort(torch.randperm(k, generator=generator)[:k_max]).values.numpy()
                yield train.context(idx), train.query_times(idx, cols), train.targets(idx, cols)
            return
        for ctx, qt, target in train.batches(batch_size, shuffle=True, generator=generator):
            if k_max and qt.shape[1] > k_max:
                cols = torch.sort(torch.randperm(qt.shape[1], generator=generator)[:k_max]).values
                qt, target = qt[:, cols], target[:, cols]
            yield ctx, qt, target

    def validation_error(self, val, device) -> float:
        """Mean position MSE (A^2) on a fixed, evenly spaced subset of samples and query slots."""
        p = self.params
        n = min(len(val), p["val_samples"] or len(val))
        idx = np.linspace(0, len(val) - 1, n).round().astype(np.int64)
        k = val.offsets.shape[1]
        cols = np.linspace(0, k - 1, min(k, p["val_queries"] or k)).round().astype(np.int64)
        box = None if val.box is None else val.box.numpy()
        errs = []
        for start in range(0, n, p["batch_size"]):
            sel = idx[start:start + p["batch_size"]]
            pred = self.predict(val.context(sel).to(device), val.query_times(sel)[:, cols].to(device))
            errs.append(position_sq_error(pred.float().cpu().numpy(), val.targets(sel)[:, cols].numpy(), box))
        return float(np.concatenate(errs).mean())
