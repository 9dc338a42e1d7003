"""Faithfulness variants and settings (issue: training v2, item 3): GF-NODE's decoder time embedding
(``time_embedding``) and per-atom ``no_fourier`` weights (``no_fourier_weights``), EGNO's optimiser
steps under a step budget, NDCN's learning rate.  Each test fails if the variant does not do what
its docstring says."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import yaml
from conftest import random_rotation
from test_learnability import FALL, LR, fall, overfit_losses

from benchmark.config import SUITES_DIR, ConfigError, load_suite
from methods import Budget, make_method
from methods.gfnode import GFNODEMethod


def _model(name, params, train):
    """An untrained float64 model at the test size with weights 0.3 N(0, 1) (well away from the small
    initialisations, as tests/test_equivariance.py)."""
    cls = make_method(name).__class__
    method = make_method(name, {**cls.test_params, **params})
    torch.manual_seed(0)
    model = method.build(**method.setup(train)).double()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model.eval()


def _context(test, n=3):
    ctx, qt, _ = next(test.batches(n))
    ctx = dataclasses.replace(ctx, observed_positions=ctx.observed_positions.double(),
                              observed_velocities=ctx.observed_velocities.double() * 20.0,
                              masses=ctx.masses.double())
    return ctx, qt.double()


def _rotated(ctx, rot, shift):
    return dataclasses.replace(ctx, observed_positions=ctx.observed_positions @ rot.T + shift,
                               observed_velocities=ctx.observed_velocities @ rot.T)


def _predict(model, ctx, qt):
    with torch.no_grad():
        return model(ctx, qt)


# --------------------------------------------------------------------------- GF-NODE time embedding


def test_time_input_of_each_embedding(tiny_tasks):
    train, _, _ = tiny_tasks["chain"]
    tau = torch.tensor([[0.1, 0.5, 0.9], [0.2, 0.3, 1.0]], dtype=torch.float64)
    inputs = {}
    for kind in ("offset", "slot", "frames"):
        model = _model("gfnode", {"time_embedding": kind}, train)
        inputs[kind] = model.time_input(tau)
    assert torch.equal(inputs["slot"], torch.tensor([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]], dtype=torch.float64))
    # long query lists (protocol B) are cut into groups of the training slots only for the slot embedding
    assert _model("gfnode", {"time_embedding": "slot"}, train).fixed_chunk == train.offsets.shape[1]
    assert _model("gfnode", {}, train).fixed_chunk is None
    torch.testing.assert_close(inputs["offset"], tau * 1000.0)  # time_scale
    torch.testing.assert_close(inputs["frames"], tau * train.spec.delta_frame)  # the offset in frames


@pytest.mark.parametrize("kind,same", [("slot", True), ("offset", False), ("frames", False)])
def test_slot_embedding_depends_only_on_the_slot_index(tiny_tasks, kind, same):
    """With ``no_ode`` (the spectral map is the same for every target time) the decoder's embedding is
    the model's only use of the query times: a slot-index model predicts the same for other offset
    values in the same slots; an offset or frame model does not."""
    train, _, test = tiny_tasks["chain"]
    model = _model("gfnode", {"time_embedding": kind, "no_ode": True}, train)
    ctx, qt = _context(test)
    other = qt * 0.5 + 1.0  # other offsets, same number of slots, still increasing
    diff = (_predict(model, ctx, qt) - _predict(model, ctx, other)).abs().max()
    assert (diff == 0) if same else (diff > 1e-6), f"{kind}: max change {diff:.2e}"


def test_default_embedding_is_the_committed_one():
    """New variants are opt-in: the defaults keep what committed configs computed."""
    assert GFNODEMethod.defaults["time_embedding"] == "offset"
    assert GFNODEMethod.defaults["no_fourier_weights"] == "shared"


@pytest.mark.parametrize("params,key", [({"time_embedding": "index"}, "time_embedding"),
                                        ({"no_fourier_weights": "atoms"}, "no_fourier_weights")])
def test_unknown_variant_is_refused(params, key, tmp_path):
    with pytest.raises(ValueError, match=key):
        make_method("gfnode", params)
    raw = yaml.safe_load((SUITES_DIR / "smoke.yaml").read_text())
    raw["methods"]["gfnode"]["params"].update(params)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=rf"methods\.gfnode\.params: {key} must be one of"):
        load_suite(str(tmp_path / "s.yaml"))


# --------------------------------------------------------------------------- GF-NODE no_fourier weights


def test_per_atom_weights_have_one_set_per_atom(tiny_tasks):
    train, _, _ = tiny_tasks["chain"]
    n, hidden = int(train.n_atoms), GFNODEMethod.test_params["hidden"]
    per_atom = _model("gfnode", {"no_fourier": True, "no_fourier_weights": "per_atom"}, train)
    shared = _model("gfnode", {"no_fourier": True}, train)
    assert per_atom.dynamics.w_h.shape == (n, hidden, hidden) and per_atom.dynamics.w_x.shape == (n, 2, 2)
    assert shared.dynamics.w_h.shape == (1, hidden, hidden) and shared.dynamics.w_x.shape == (1, 2, 2)


def test_per_atom_weights_act_on_their_atom_only(tiny_tasks):
    """Changing atom 2's weights changes the ODE's derivative of atom 2 and of no other atom."""
    train, _, _ = tiny_tasks["chain"]
    model = _model("gfnode", {"no_fourier": True, "no_fourier_weights": "per_atom"}, train)
    n, hidden = int(train.n_atoms), model.hidden
    gen = torch.Generator().manual_seed(3)
    state = (torch.randn(2, n, hidden, generator=gen, dtype=torch.float64),
             torch.randn(2, n, 3, 2, generator=gen, dtype=torch.float64))
    with torch.no_grad():
        before = model.dynamics(None, state)
        model.dynamics.w_h[2] += 1.0
        model.dynamics.w_x[2] += 1.0
        after = model.dynamics(None, state)
    for b, a in zip(before, after):
        changed = (a - b).flatten(2).abs().amax(dim=(0, 2)) > 0  # per atom
        assert changed.tolist() == [i == 2 for i in range(n)]


def test_per_atom_weights_keep_rotation_and_translation_equivariance(tiny_tasks):
    """Per-atom weights break permutation equivariance (as the authors' code) but not E(3).  The
    model keeps its own initial weights, but for larger ODE weights (test_equivariance's 0.3 N(0, 1)
    weights make the per-atom ODE grow the atoms ~90 A apart, and the EGNN layers' +-100 clamp of a
    coordinate update, elementwise, is not rotation-equivariant)."""
    train, _, test = tiny_tasks["chain"]
    method = make_method("gfnode", {**GFNODEMethod.test_params, "no_fourier": True, "no_fourier_weights": "per_atom"})
    torch.manual_seed(0)
    model = method.build(**method.setup(train)).double().eval()
    with torch.no_grad():
        gen = torch.Generator().manual_seed(1)
        model.dynamics.w_h.copy_(0.3 * torch.randn(model.dynamics.w_h.shape, generator=gen, dtype=torch.float64))
        model.dynamics.w_x.copy_(0.3 * torch.randn(model.dynamics.w_x.shape, generator=gen, dtype=torch.float64))
    ctx, qt = _context(test)
    gen = torch.Generator().manual_seed(7)
    rot, shift = random_rotation(gen), 5.0 * torch.randn(3, generator=gen, dtype=torch.float64)
    out = _predict(model, ctx, qt)
    out_t = _predict(model, _rotated(ctx, rot, shift), qt)
    assert (out - ctx.positions[:, None]).abs().max() > 1e-3  # not vacuous
    assert (out_t - (out @ rot.T + shift)).abs().max() < 1e-5


@pytest.mark.parametrize("params", [{"time_embedding": "slot"}, {"time_embedding": "frames"},
                                    {"no_fourier": True, "no_fourier_weights": "per_atom"}],
                         ids=["slot", "frames", "no_fourier-per_atom"])
def test_gfnode_variants_overfit_one_batch(tiny_tasks, params, tmp_path):
    """Each variant can learn: tests/test_learnability.py's check (loss falls 10x on one fixed batch)."""
    train, val, _ = tiny_tasks["chain"]
    method = make_method("gfnode", {**GFNODEMethod.test_params, **params, "lr": LR, "batch_size": 1})
    losses = overfit_losses(method, train, val, tmp_path)
    assert fall(losses) >= FALL, f"{params}: fell {fall(losses):.2f}x"


# --------------------------------------------------------------------------- equal optimiser steps


@pytest.mark.parametrize("name", ["egnn", "egno", "gfnode"])
def test_step_budget_counts_optimiser_steps_whatever_the_batch_size(tiny_tasks, name, tmp_path):
    """Under a step budget every method takes exactly ``budget.steps`` optimiser steps: EGNO with its
    published batch of 100 (bigger than the 12-sample training set: one batch per pass, so one step per
    epoch under an epoch budget) takes as many as EGNN and GF-NODE with 50."""
    train, val, _ = tiny_tasks["chain"]
    cls = make_method(name).__class__
    method = make_method(name, {**cls.test_params, "batch_size": cls.defaults["batch_size"]})
    calls = []
    configure = method.configure_optimiser

    def counting(model, steps):
        optimiser, scheduler = configure(model, steps)
        optimiser.register_step_post_hook(lambda *_: calls.append(1))
        return optimiser, scheduler

    method.configure_optimiser = counting
    facts = method.fit(train, val, Budget(steps=5, val_every=2), seed=0, device="cpu")
    assert len(calls) == 5 and facts["steps"] == 5
    assert [p["step"] for p in facts["val_curve"]] == [2, 4, 5]


# --------------------------------------------------------------------------- NDCN learning rate


def test_ndcn_default_learning_rate_is_the_papers(tiny_tasks):
    """NDCN (Zang & Wang 2020; the authors' scripts: Adam, lr 0.01, weight decay 1e-3) trains at
    lr 0.01 unless a suite overrides it."""
    train, _, _ = tiny_tasks["chain"]
    method = make_method("ndcn", {"hidden": 6})
    model = method.build(**method.setup(train))
    optimiser, _ = method.configure_optimiser(model, 10)
    assert [g["lr"] for g in optimiser.param_groups] == [0.01]
    assert [g["weight_decay"] for g in optimiser.param_groups] == [1e-3]
