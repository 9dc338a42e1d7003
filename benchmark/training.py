"""The generic trainer for torch methods.

Two kinds of budget (a suite method entry's ``budget``, :class:`methods.base.Budget`):

* **epochs** (the committed boards' budget, unchanged): ``epochs`` passes over the method's
  training batches, validation every ``eval_every`` epochs, the method's own scheduler
  (stepped once per epoch).
* **steps** (opt-in with ``budget.steps``): at most ``steps`` optimiser steps, the same for every
  method of a task.  Every ``val_every`` steps the model is scored on a fixed validation subset
  (``val_samples`` evenly spaced samples, all when unset); ``patience`` validations without a new
  best stop the run early.  The learning rate follows one schedule for every method,
  ``warmup_cosine`` (the default): linear warm-up from 0 over ``warmup_steps`` (default 5 % of
  ``steps``), then a cosine from the method's ``lr`` down to 0 at ``steps``; ``constant`` keeps
  ``lr`` (for tests and ablations).  Gradients are clipped to norm ``budget.grad_clip``, else the
  method's own ``grad_clip`` (the paper's value), else :data:`DEFAULT_GRAD_CLIP`, a deviation for
  papers that give none.  The run records the validation curve, the steps taken, the stop reason
  (budget | patience | time_limit | diverged) and :func:`converged`.

Both kinds:

* Deterministic: the global torch/numpy/python RNGs are reseeded from
  (seed, epoch) at the start of every epoch (steps: of every validation interval), and the
  shuffling generator too, so a run resumed from a checkpoint replays exactly the same steps.
* Resumable: after every epoch (steps: every validation) the full state (model, optimiser,
  scheduler, best-so-far model, history) is written atomically to ``<checkpoint_dir>/last.pt``; a
  rerun continues from it.  Checkpoints are not Snakemake outputs, so a failed job does not
  delete them.
* Selection on validation only: the model with the lowest validation MSE
  (mean over query offsets, A^2) is restored at the end; test data never enters here.
* Divergence: a non-finite loss or validation error, or an epoch's (steps: a validation
  interval's) mean training loss above ``EXPLODED`` (1e4) times the first one's (a positive
  loss that grew by four orders of magnitude has left the data's scale: GF-NODE
  at lr 5e-4 on ALA2-sim went from 13 to 5e23 A^2 in five epochs and would
  otherwise be reported as a finite, "ok" result), raises :class:`Diverged`
  with the epoch (or step), which the runner records as status ``diverged``.
"""

from __future__ import annotations

import copy
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from benchmark.io import atomic_path


class Diverged(RuntimeError):
    """Training left the data's scale; ``facts`` (step budgets): what the run did up to then."""

    def __init__(self, epoch: int, reason: str, step: int | None = None, facts: dict | None = None):
        where = f"epoch {epoch}" if step is None else f"step {step}"
        super().__init__(f"diverged at {where}: {reason}")
        self.epoch, self.reason, self.step, self.facts = epoch, reason, step, facts


EXPLODED = 1e4  # an epoch's mean training loss above this many times the first epoch's: diverged
SCHEDULES = ("warmup_cosine", "constant")  # learning-rate schedules of step budgets (see the module docstring)
DEFAULT_GRAD_CLIP = 10.0  # gradient-norm clip of step budgets for methods whose paper gives none
WARMUP_FRACTION = 0.05  # default warm-up of ``warmup_cosine``: this fraction of the steps
CONVERGED_WINDOW = 0.2  # converged: the best validation MSE improved by less than
CONVERGED_TOL = 0.01  # ... this fraction over the last CONVERGED_WINDOW of the steps taken


def converged(curve: list[dict], steps: int, window: float = CONVERGED_WINDOW, tol: float = CONVERGED_TOL) -> bool:
    """Whether a run converged: the best validation MSE improved by less than ``tol`` (1 %)
    over the last ``window`` (20 %) of the ``steps`` taken.

    ``curve`` is the validation curve, a list of ``{"step", "val_mse"}`` in step order.  The
    best MSE among validations at or before step ``(1 - window) * steps`` is compared with the
    best overall: converged when ``best_overall >= (1 - tol) * best_before``.  A run with no
    validation before that point (too short to tell) or no finite value has not converged.
    """
    cut = (1.0 - window) * steps
    before = [p["val_mse"] for p in curve if p["step"] <= cut and math.isfinite(p["val_mse"])]
    overall = [p["val_mse"] for p in curve if math.isfinite(p["val_mse"])]
    if not before or steps <= 0:
        return False
    return min(overall) >= (1.0 - tol) * min(before)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + 17) % 2**63


def resume(checkpoint_dir, device, model, optimiser, scheduler, state: dict) -> tuple[Path | None, dict]:
    """(checkpoint path, state): model, optimiser and scheduler loaded from ``<checkpoint_dir>/last.pt``
    when it exists (a killed run goes on from its last checkpoint), else ``state`` as given."""
    ckpt = Path(checkpoint_dir) / "last.pt" if checkpoint_dir else None
    if ckpt is not None and ckpt.exists():
        saved = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        scheduler.load_state_dict(saved["scheduler"])
        state = saved["state"]
    return ckpt, state


def train_model(method, train, val, *, budget, seed: int, device: str, checkpoint_dir=None,
                desc: str = "training") -> dict:
    """Train ``method.model`` (a TorchMethod) and leave the best-on-validation weights in it."""
    if getattr(budget, "steps", None) is not None:
        return train_steps(method, train, val, budget=budget, seed=seed, device=device,
                           checkpoint_dir=checkpoint_dir, desc=desc)
    p = method.params
    model = method.model
    epochs = budget.epochs if budget.epochs is not None else p["epochs"]
    eval_every = budget.eval_every or p["eval_every"]
    optimiser, scheduler = method.configure_optimiser(model, epochs)
    state = {"epoch": 0, "best_val": float("inf"), "best_epoch": -1, "best_model": None,
             "history": [], "train_seconds": 0.0}
    ckpt, state = resume(checkpoint_dir, device, model, optimiser, scheduler, state)
    resumed_from, seconds_before = state["epoch"], state["train_seconds"]
    deadline = time.monotonic() + budget.time_limit_s if budget.time_limit_s else None
    with tqdm(total=epochs, initial=state["epoch"], desc=desc, unit="epoch", mininterval=2.0,
              dynamic_ncols=True) as bar:  # closed on every exit, Diverged included
        for epoch in range(state["epoch"], epochs):
            start = time.perf_counter()
            seed_everything(_epoch_seed(seed, epoch))
            gen = torch.Generator().manual_seed(_epoch_seed(seed, epoch))
            model.train()
            total, count = 0.0, 0
            # the method's hooks (methods.base.TorchMethod) define its training data and loss
            for batch in method.training_batches(train, p["batch_size"], gen):
                optimiser.zero_grad(set_to_none=True)
                loss, n_batch = method.training_loss(batch, device)
                if not torch.isfinite(loss):
                    raise Diverged(epoch, f"training loss is {loss.item()}")
                loss.backward()
                if p["grad_clip"]:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), p["grad_clip"])
                optimiser.step()
                method.after_step(model)
                total += loss.item() * n_batch
                count += n_batch
            scheduler.step()
            record = {"epoch": epoch, "train_loss": total / max(count, 1)}
            first = state["history"][0]["train_loss"] if state["history"] else record["train_loss"]
            if first > 0 and record["train_loss"] > EXPLODED * first:
                raise Diverged(epoch, f"training loss grew from {first:.4g} (first epoch) to "
                                      f"{record['train_loss']:.4g}, more than {EXPLODED:g} times")
            if (epoch + 1) % eval_every == 0 or epoch + 1 == epochs:
                val_mse = float(method.validation_error(val, device))
                if not np.isfinite(val_mse):
                    raise Diverged(epoch, "validation error is not finite")
                record["val_mse"] = val_mse
                if val_mse < state["best_val"]:
                    state.update(best_val=val_mse, best_epoch=epoch,
                                 best_model=copy.deepcopy({k: v.cpu() for k, v in model.state_dict().items()}))
            state["train_seconds"] += time.perf_counter() - start
            state["history"].append(record)
            state["epoch"] = epoch + 1
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "epoch"}, refresh=False)
            if ckpt is not None:
                with atomic_path(ckpt) as tmp:
                    torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                                "scheduler": scheduler.state_dict(), "state": state}, tmp)
            if deadline is not None and time.monotonic() > deadline:
                bar.write(f"{desc}: time limit of {budget.time_limit_s:g} s reached after epoch {epoch + 1}")
                break
    if state["best_model"] is not None:
        model.load_state_dict(state["best_model"])
    return {"epochs_run": state["epoch"], "epochs_planned": epochs, "best_epoch": state["best_epoch"],
            "best_val_mse": state["best_val"], "resumed_from_epoch": resumed_from,
            "train_seconds": state["train_seconds"], "train_seconds_before_resume": seconds_before,
            "history": state["history"]}


# --------------------------------------------------------------------------- step budgets


def step_settings(budget) -> dict:
    """A step budget's settings with their defaults filled in (``budget.steps`` is set)."""
    steps = int(budget.steps)
    val_every = budget.val_every or max(1, steps // 50)
    warmup = budget.warmup_steps if budget.warmup_steps is not None else int(WARMUP_FRACTION * steps)
    return {"steps": steps, "val_every": min(val_every, steps), "patience": budget.patience,
            "schedule": budget.schedule or "warmup_cosine", "warmup_steps": warmup,
            "val_samples": budget.val_samples}


def lr_factor(schedule: str, step: int, steps: int, warmup_steps: int) -> float:
    """The learning rate at optimiser step ``step`` (0-based) as a fraction of the method's ``lr``."""
    if schedule == "constant":
        return 1.0
    if schedule != "warmup_cosine":
        raise ValueError(f"unknown schedule {schedule!r}; valid: {', '.join(SCHEDULES)}")
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    progress = (step - warmup_steps) / max(1, steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def validation_subset(val, n: int | None):
    """``n`` evenly spaced samples of ``val`` (a fixed subset for every validation); all when unset."""
    if not n or n >= len(val):
        return val
    idx = np.linspace(0, len(val) - 1, n).round().astype(np.int64)
    part = {"traj": val.traj_idx[idx].tolist(), "t0": val.t0[idx].tolist(), "offsets": val.offsets[idx].tolist()}
    return type(val)(val.dataset, part, val.spec, val.graph, val.atoms, val.velocity_source)


def _interval_batches(method, train, batch_size: int, gen: torch.Generator, n: int):
    """``n`` training batches, starting a new pass over the method's batches whenever one ends."""
    taken = 0
    while taken < n:
        empty = True
        for batch in method.training_batches(train, batch_size, gen):
            empty = False
            yield batch
            taken += 1
            if taken == n:
                return
        if empty:
            raise ValueError(f"{method.name or type(method).__name__}: no training batches")


def train_steps(method, train, val, *, budget, seed: int, device: str, checkpoint_dir=None,
                desc: str = "training") -> dict:
    """The step-budget trainer (see the module docstring); called by :func:`train_model`."""
    p = method.params
    model = method.model
    cfg = step_settings(budget)
    steps, val_every = cfg["steps"], cfg["val_every"]
    clip = budget.grad_clip if budget.grad_clip is not None else (p.get("grad_clip") or DEFAULT_GRAD_CLIP)
    # the method's optimiser (its lr, weight decay, parameter groups); its scheduler is replaced
    # by the one schedule every method shares
    optimiser, _ = method.configure_optimiser(model, steps)
    base_lrs = [g["lr"] for g in optimiser.param_groups]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: lr_factor(cfg["schedule"], s, steps, cfg["warmup_steps"]))
    val = validation_subset(val, cfg["val_samples"])
    state = {"step": 0, "interval": 0, "best_val": float("inf"), "best_step": -1, "best_model": None,
             "bad_validations": 0, "history": [], "train_seconds": 0.0, "stop_reason": "budget"}
    ckpt, state = resume(checkpoint_dir, device, model, optimiser, scheduler, state)
    if state["stop_reason"] == "time_limit":  # a time limit holds per process: a rerun goes on
        state["stop_reason"] = "budget"
    resumed_from, seconds_before = state["step"], state["train_seconds"]
    deadline = time.monotonic() + budget.time_limit_s if budget.time_limit_s else None

    def facts() -> dict:
        curve = [{"step": h["step"], "val_mse": h["val_mse"]} for h in state["history"]]
        done = state["stop_reason"] != "diverged"
        return {"steps": state["step"], "steps_planned": steps, "stop_reason": state["stop_reason"],
                "converged": done and converged(curve, state["step"]), "val_curve": curve,
                "best_step": state["best_step"], "best_val_mse": state["best_val"],
                "resumed_from_step": resumed_from, "train_seconds": state["train_seconds"],
                "train_seconds_before_resume": seconds_before, "grad_clip": clip,
                "lr": base_lrs[0], **{k: cfg[k] for k in ("val_every", "patience", "schedule", "warmup_steps")},
                "history": state["history"]}

    def diverged(reason: str) -> Diverged:
        state["stop_reason"] = "diverged"
        return Diverged(state["interval"], reason, step=state["step"], facts=facts())

    finished = state["stop_reason"] != "budget" or state["step"] >= steps
    with tqdm(total=steps, initial=state["step"], desc=desc, unit="step", mininterval=2.0,
              dynamic_ncols=True) as bar:  # closed on every exit, Diverged included
        while not finished:
            start = time.perf_counter()
            interval = state["interval"]
            seed_everything(_epoch_seed(seed, interval))
            gen = torch.Generator().manual_seed(_epoch_seed(seed, interval))
            model.train()
            n_steps = min(val_every, steps - state["step"])
            total, count = 0.0, 0
            # the method's hooks (methods.base.TorchMethod) define its training data and loss
            for batch in _interval_batches(method, train, p["batch_size"], gen, n_steps):
                optimiser.zero_grad(set_to_none=True)
                loss, n_batch = method.training_loss(batch, device)
                if not torch.isfinite(loss):
                    raise diverged(f"training loss is {loss.item()}")
                loss.backward()
                if clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                optimiser.step()
                scheduler.step()
                method.after_step(model)
                total += loss.item() * n_batch
                count += n_batch
                state["step"] += 1
            record = {"step": state["step"], "train_loss": total / max(count, 1)}
            first = state["history"][0]["train_loss"] if state["history"] else record["train_loss"]
            if first > 0 and record["train_loss"] > EXPLODED * first:
                raise diverged(f"training loss grew from {first:.4g} (first validation interval) to "
                               f"{record['train_loss']:.4g}, more than {EXPLODED:g} times")
            val_mse = float(method.validation_error(val, device))
            if not np.isfinite(val_mse):
                raise diverged("validation error is not finite")
            record["val_mse"] = val_mse
            if val_mse < state["best_val"]:
                state.update(best_val=val_mse, best_step=state["step"], bad_validations=0,
                             best_model=copy.deepcopy({k: v.cpu() for k, v in model.state_dict().items()}))
            else:
                state["bad_validations"] += 1
            state["train_seconds"] += time.perf_counter() - start
            state["history"].append(record)
            state["interval"] = interval + 1
            bar.update(n_steps)
            bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "step"}, refresh=False)
            if state["step"] >= steps:
                finished = True
            elif cfg["patience"] and state["bad_validations"] >= cfg["patience"]:
                state["stop_reason"], finished = "patience", True
                bar.write(f"{desc}: no better validation in {cfg['patience']} validations; stopped at "
                          f"step {state['step']}")
            elif deadline is not None and time.monotonic() > deadline:
                state["stop_reason"], finished = "time_limit", True
                bar.write(f"{desc}: time limit of {budget.time_limit_s:g} s reached at step {state['step']}")
            if ckpt is not None:
                with atomic_path(ckpt) as tmp:
                    torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                                "scheduler": scheduler.state_dict(), "state": state}, tmp)
    if state["best_model"] is not None:
        model.load_state_dict(state["best_model"])
    return facts()
