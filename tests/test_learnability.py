"""Learnability: every trained method (every TorchMethod in ``methods.REGISTRY``, discovered) must
overfit one fixed tiny batch through the real trainer (a step budget): its training loss falls at
least ``FALL`` times.  A method that cannot learn (no gradient reaches its weights, a detached
output, a loss that ignores the prediction) fails here; the last test checks that the check itself
fails for such a model.

The batch is the first one the method's own ``training_batches`` hook yields on a tiny fixture
dataset (tests/conftest.py; batch size 1), replayed at every step with the global RNG and any batch generator
reseeded, so random lags, noise levels and dropout are the same at every step: only the weights
change.  ``pytest -k learnab`` runs this file.
"""

import dataclasses

import numpy as np
import pytest
import torch
from conftest import SPEC

from benchmark.samples import open_parts
from benchmark.splits import build_window_split
from benchmark.training import seed_everything
from methods import REGISTRY, Budget, TorchMethod, make_method

FALL = 10.0  # the training loss must fall at least this many times
MAX_STEPS = 300  # optimiser steps on the one batch at most
CHUNK = 25  # steps between checks of the fall (each chunk is one resumed ``fit``)
LR = 1e-2  # one learning rate for all (constant): fast enough to overfit within MAX_STEPS at the test sizes
TRAINED = [name for name, cls in REGISTRY.items() if issubclass(cls, TorchMethod)]
# the fixtures, the molecule first; the LJ box where the molecule's noise floor is too close to its
# first loss for a 10x fall (the chain's offsets move the atoms about as much as its noise)
GRAPHS = {"chain": {"kind": "molecular", "cutoff": 1.6, "two_hop": True}, "lj": {"kind": "none"}}


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread (the budget of this file is ~2 minutes on one core; several threads on a
    busy machine are slower than one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _fixed(batch):
    """The batch with every generator in it replaced by a freshly seeded one."""
    if isinstance(batch, torch.Generator):
        return torch.Generator().manual_seed(0)
    if isinstance(batch, tuple):
        return tuple(_fixed(x) for x in batch)
    return batch


def fall(losses: list[float]) -> float:
    """How many times the loss fell: the first step's over the mean of the last five."""
    return losses[0] / max(float(np.mean(losses[-5:])), 1e-30)


def overfit_losses(method: TorchMethod, train, val, checkpoint_dir, max_steps: int = MAX_STEPS) -> list[float]:
    """The training losses of up to ``max_steps`` optimiser steps on one fixed batch, through the
    trainer (a step budget with a constant learning rate), stopping once the loss fell ``FALL`` times:
    every ``CHUNK`` steps the run stops on its time limit and the next ``fit`` resumes it."""
    hooks = {"batches": method.training_batches, "loss": method.training_loss}
    batch, losses = [], []

    def one_batch(train, batch_size, generator):
        if not batch:  # drawn lazily: the hook may need what ``fit`` set up (ITO's segments)
            batch.append(next(iter(hooks["batches"](train, batch_size, torch.Generator().manual_seed(0)))))
        while True:
            seed_everything(0)
            yield _fixed(batch[0])

    def recording(b, device):
        loss, n = hooks["loss"](b, device)
        losses.append(float(loss.detach()))
        return loss, n

    method.training_batches, method.training_loss = one_batch, recording
    budget = Budget(steps=max_steps, val_every=CHUNK, val_samples=2, schedule="constant", time_limit_s=1e-9)
    while len(losses) < max_steps and not (losses and fall(losses) >= FALL):
        info = method.fit(train, val, budget, seed=0, device="cpu", checkpoint_dir=checkpoint_dir)
        assert info["steps"] == len(losses)  # every chunk resumed where the last one stopped
    return losses


def _tiny_sets(request, cls):
    """(fixture name, training samples, validation samples) of each fixture dataset the method runs on."""
    for name in GRAPHS:
        ds = request.getfixturevalue(f"{name}_dataset")
        spec = dataclasses.replace(SPEC, observed=max(1, cls.observed_frames))
        parts = open_parts(ds, build_window_split(ds, spec, "by_trajectory", {}, seed=0), GRAPHS[name])
        if make_method(cls.name, cls.test_params).skip_reason("window", parts["train"]) is None:
            yield name, parts["train"], parts["val"]


@pytest.mark.parametrize("name", TRAINED)
def test_learnability(request, name, tmp_path):
    """The method overfits one sample (batch size 1) of the first fixture it can overfit."""
    cls = REGISTRY[name]
    tried = []
    for fixture, train, val in _tiny_sets(request, cls):
        method = make_method(name, {**cls.test_params, "lr": LR, "batch_size": 1})
        losses = overfit_losses(method, train, val, tmp_path / fixture)
        assert np.isfinite(losses).all(), f"{name}: non-finite training loss on {fixture}"
        if fall(losses) >= FALL:
            return
        tried.append(f"{fixture}: {fall(losses):.2f}x ({losses[0]:.4g} -> {losses[-1]:.4g})")
    assert tried, f"{name}: runs on no tiny fixture dataset under protocol window"
    pytest.fail(f"{name} cannot overfit one tiny batch: in {MAX_STEPS} steps its training loss fell only "
                + "; ".join(tried) + f", not {FALL:g}x")


class Frozen(torch.nn.Module):
    """A model whose prediction ignores its weight: nothing to learn."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, context, query_times):
        return context.positions[:, None].expand(-1, query_times.shape[1], -1, -1) + 0.0 * self.w


class CannotLearn(TorchMethod):
    name = ""  # not registered

    def setup(self, train):
        return {}

    def build(self):
        return Frozen()


def test_learnability_check_fails_for_a_model_that_cannot_learn(tiny_tasks, tmp_path):
    train, val, _ = tiny_tasks["chain"]
    losses = overfit_losses(CannotLearn(lr=LR, batch_size=1), train, val, tmp_path, max_steps=2 * CHUNK)
    assert len(losses) == 2 * CHUNK and fall(losses) < FALL
