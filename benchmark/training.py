"""The generic trainer for torch methods.

* Deterministic: the global torch/numpy/python RNGs are reseeded from
  (seed, epoch) at the start of every epoch, and the shuffling generator too,
  so a run resumed from a checkpoint replays exactly the same epochs.
* Resumable: after every epoch the full state (model, optimiser, scheduler,
  best-so-far model, history) is written atomically to
  ``<checkpoint_dir>/last.pt``; a rerun continues from it.  Checkpoints are not
  Snakemake outputs, so a failed job does not delete them.
* Selection on validation only: the model with the lowest validation MSE
  (mean over query offsets, A^2) is kept; test data never enters here.
* Divergence: a non-finite loss or validation error, or an epoch's mean
  training loss above ``EXPLODED`` (1e4) times the first epoch's (a positive
  loss that grew by four orders of magnitude has left the data's scale: GF-NODE
  at lr 5e-4 on ALA2-sim went from 13 to 5e23 A^2 in five epochs and would
  otherwise be reported as a finite, "ok" result), raises :class:`Diverged`
  with the epoch, which the runner records as status ``diverged``.
"""

from __future__ import annotations

import copy
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from benchmark.io import atomic_path


class Diverged(RuntimeError):
    def __init__(self, epoch: int, reason: str):
        super().__init__(f"diverged at epoch {epoch}: {reason}")
        self.epoch, self.reason = epoch, reason


EXPLODED = 1e4  # an epoch's mean training loss above this many times the first epoch's: diverged


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + 17) % 2**63


def train_model(method, train, val, *, budget, seed: int, device: str, checkpoint_dir=None,
                desc: str = "training") -> dict:
    """Train ``method.model`` (a TorchMethod) and leave the best-on-validation weights in it."""
    p = method.params
    model = method.model
    epochs = budget.epochs if budget.epochs is not None else p["epochs"]
    eval_every = budget.eval_every or p["eval_every"]
    optimiser, scheduler = method.configure_optimiser(model, epochs)
    state = {"epoch": 0, "best_val": float("inf"), "best_epoch": -1, "best_model": None,
             "history": [], "train_seconds": 0.0}
    ckpt = Path(checkpoint_dir) / "last.pt" if checkpoint_dir else None
    if ckpt is not None and ckpt.exists():
        saved = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        scheduler.load_state_dict(saved["scheduler"])
        state = saved["state"]
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
