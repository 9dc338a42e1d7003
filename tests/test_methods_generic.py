"""The generic method test: EVERY registered method on EVERY tiny fixture dataset.

A new method is covered by adding its file (benchopt's ``benchopt test``):
it must fit within a tiny budget, predict [B, K, N, 3] finite positions from
contexts alone, persist and reload to identical predictions, and give
identical results for the same seed (CPU determinism).
"""

import dataclasses

import numpy as np
import pytest
import torch
from conftest import SPEC

from benchmark.evaluation import predict_errors
from benchmark.samples import open_parts
from benchmark.splits import build_split, build_window_split
from methods import REGISTRY, Budget, make_method

GRAPHS = {"lj": {"kind": "none"}, "chain": {"kind": "molecular", "cutoff": 1.6, "two_hop": True}}


# Protocol B on the fixtures: observe 20 frames, predict the next 30 (LJ has 60 frames per trajectory).
EXTRAPOLATE = {"observed": 20, "horizon": 30, "n_full_domain": 10, "curve_bin": 10}


def _sets(request, name, cls, protocol):
    ds = request.getfixturevalue(f"{name}_dataset")
    if protocol == "window":
        spec = dataclasses.replace(SPEC, observed=max(1, cls.observed_frames))
        split = build_window_split(ds, spec, "by_trajectory", {}, seed=0)
    else:
        split = build_split(ds, "extrapolate", EXTRAPOLATE, "by_trajectory", {}, seed=0)
    return open_parts(ds, split, GRAPHS[name])


def _fit_predict(cls, sets, seed):
    method = make_method(cls.name, cls.test_params)
    method.fit(sets["train"], sets["val"], Budget(epochs=2), seed, "cpu")
    err, pred = predict_errors(method, sets["test"], 4, "cpu", return_predictions=True)
    return method, err, pred


@pytest.mark.parametrize("protocol", ["window", "extrapolate"])
@pytest.mark.parametrize("dataset", ["lj", "chain"])
@pytest.mark.parametrize("name", list(REGISTRY))
def test_method_contract(request, name, dataset, protocol, tmp_path):
    cls = REGISTRY[name]
    assert cls.description and cls.paper, f"{name}: set description and paper"
    sets = _sets(request, dataset, cls, protocol)
    reason = make_method(name, cls.test_params).skip_reason(protocol, sets["train"])
    if reason:
        pytest.skip(reason)
    method, err, pred = _fit_predict(cls, sets, seed=0)
    test = sets["test"]
    assert pred.shape == (len(test), test.offsets.shape[1], test.n_atoms, 3)
    assert np.isfinite(pred).all() and np.isfinite(err).all()
    assert method.n_params() >= 0
    # persistence: a reloaded method predicts exactly the same
    path = tmp_path / "m.pt"
    torch.save(method.state_dict(), path)
    again = make_method(name, cls.test_params)
    again.load_state_dict(torch.load(path, weights_only=False))
    _, pred2 = predict_errors(again, test, 4, "cpu", return_predictions=True)
    np.testing.assert_array_equal(pred, pred2)
    # determinism: same seed, same numbers
    _, _, pred3 = _fit_predict(cls, sets, seed=0)
    np.testing.assert_array_equal(pred, pred3)


def test_baselines_by_hand(tiny_tasks):
    test = tiny_tasks["chain"][2]
    ctx, qt, _ = next(test.batches(3))
    static = make_method("static").predict(ctx, qt)
    cv = make_method("constant_velocity").predict(ctx, qt)
    assert torch.equal(static[:, 2], ctx.positions)
    expected = ctx.positions + ctx.velocities * qt[:, 1, None, None]
    assert torch.allclose(cv[:, 1], expected)


def test_unknown_parameter_is_rejected():
    with pytest.raises(KeyError, match="has no parameter"):
        make_method("static", {"hidden": 3})
