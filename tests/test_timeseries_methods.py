"""Hand-checkable tests of the time-series baselines: Wavelet-ARIMA and DESCINet."""

import dataclasses

import numpy as np
import pytest
import torch
from conftest import SPEC

import methods.wavelet_arima as wa
from benchmark.evaluation import predict_errors
from benchmark.samples import Context, open_parts
from benchmark.splits import build_window_split
from methods import Budget, make_method
from methods.descinet import DESCINetModel

torch.set_num_threads(1)


def _context(x: np.ndarray, dt: float = 2.0) -> Context:
    """A hand-built context from positions [B, L, N, 3]."""
    x = torch.as_tensor(x, dtype=torch.float32)
    B, L, N, _ = x.shape
    return Context(x, torch.zeros_like(x), torch.arange(-L + 1, 1, dtype=torch.float32) * dt,
                   torch.full((N,), 18, dtype=torch.long), torch.full((N,), 40.0), None, None, dt)


def _noisy_sine(n: int, seed: int = 1):
    t = np.arange(n)
    truth = np.sin(2 * np.pi * t / 25.0) + 0.5
    return truth + 0.05 * np.random.default_rng(seed).normal(size=n), truth


# ---------------------------------------------------------------- Wavelet-ARIMA


@pytest.mark.parametrize("n", [100, 101])
@pytest.mark.parametrize("wavelet,level", [("haar", 1), ("db4", 3), ("sym4", 2)])
def test_mra_components_sum_to_the_series(n, wavelet, level):
    x = np.cumsum(np.random.default_rng(n).normal(size=n))
    comps = wa.mra(x, wavelet, level)
    assert comps.shape == (level + 1, n)
    np.testing.assert_allclose(comps.sum(axis=0), x, atol=1e-10)
    # the approximation is smooth: its first differences are much smaller than the series'
    assert np.abs(np.diff(comps[0])).mean() < np.abs(np.diff(x)).mean()


def test_mra_level_is_lowered_for_short_series():
    assert wa.effective_level(8, "db4", 3) == 0  # db4 filters (8 taps) do not fit twice into 8 samples
    comps = wa.mra(np.arange(8.0), "db4", 3)
    assert comps.shape == (1, 8)
    assert wa.effective_level(64, "haar", 3) == 3


def test_sine_is_forecast_close_to_the_truth():
    x, truth = _noisy_sine(275)
    cfg = {**wa.WaveletARIMA.defaults, "level": 2}
    fc, fell = wa.forecast_series(x[:250], 25, cfg)
    assert not fell
    rms = np.sqrt(np.mean((fc - truth[250:]) ** 2))
    persistence = np.sqrt(np.mean((x[249] - truth[250:]) ** 2))
    assert rms < 0.15 and rms < 0.25 * persistence, (rms, persistence)
    # one ARIMA without decomposition: AIC picks ARMA(2, 1) (sine + noise), as exact MLE does
    fc1, order = wa.forecast_component(x[:250], 25)
    assert order == (2, 0, 1)
    assert np.sqrt(np.mean((fc1 - truth[250:]) ** 2)) < 0.1
    # Hannan-Rissanen alone under-fits it (documented reason for the CSS default)
    fc2, _ = wa.forecast_component(x[:250], 25, estimator="hannan_rissanen")
    assert np.sqrt(np.mean((fc2 - truth[250:]) ** 2)) > np.sqrt(np.mean((fc1 - truth[250:]) ** 2))


def test_arima_forecast_of_a_random_walk_is_flat_and_of_a_mean_reverting_series_is_its_mean():
    rng = np.random.default_rng(3)
    walk = np.cumsum(rng.normal(size=400))
    fc, order = wa.forecast_component(walk, 50)
    assert order[1] == 1  # KPSS rejects stationarity: one difference
    assert np.all(np.abs(fc - walk[-1]) < 3.0)  # no drift term: stays near the last value
    ar1 = np.zeros(2000)
    for t in range(1, 2000):
        ar1[t] = 0.5 * ar1[t - 1] + rng.normal()
    fc, order = wa.forecast_component(ar1 + 7.0, 200)
    assert order[1] == 0
    assert abs(fc[-1] - (ar1 + 7.0).mean()) < 1e-6  # long-range forecast = the fitted mean


def test_predict_picks_the_query_frames_and_is_finite():
    x, _ = _noisy_sine(64)
    pos = np.stack([x, 2 * x, -x], -1)[None, :, None, :]  # B=1, L=64, N=1
    ctx = _context(pos)
    method = make_method("wavelet_arima", {"level": 2})
    qt = torch.tensor([[2.0, 6.0, 20.0]])  # frames 1, 3, 10 (dt = 2 fs)
    pred = method.predict(ctx, qt)
    assert pred.shape == (1, 3, 1, 3) and torch.isfinite(pred).all()
    full, fell = wa.forecast_many(pos[0, :, 0].T, 10, {k: method.params[k] for k in (
        "wavelet", "level", "mode", "max_p", "max_q", "max_d", "kpss_alpha", "estimator", "fit_length")})
    np.testing.assert_allclose(pred[0, :, 0].numpy(), full[:, [0, 2, 9]].T.astype(np.float32), rtol=1e-6)
    assert method.last_series == 3 and method.last_fallbacks == 0


def test_fallback_is_the_last_value_and_is_counted(monkeypatch):
    pos = np.cumsum(np.random.default_rng(0).normal(size=(1, 40, 2, 3)), axis=1)
    ctx, qt = _context(pos), torch.tensor([[2.0, 4.0]])

    def broken(*args, **kwargs):
        raise RuntimeError("no admissible ARMA candidate")

    monkeypatch.setattr(wa, "forecast_component", broken)
    method = make_method("wavelet_arima", {"workers": 1})
    pred = method.predict(ctx, qt)
    assert method.last_fallbacks == 6 and method.last_series == 6
    torch.testing.assert_close(pred, ctx.positions[:, None].expand(-1, 2, -1, -1))

    monkeypatch.setattr(wa, "forecast_component", lambda y, steps, *a, **k: (np.full(steps, np.inf), (0, 0, 0)))
    pred = method.predict(ctx, qt)  # non-finite forecasts fall back too
    assert method.last_fallbacks == 6 and torch.isfinite(pred).all()
    assert method.fallback_report() == {"series": 12, "fallbacks": 12, "fallback_fraction": 1.0}
    method.reset_counters()
    assert method.fallback_report()["series"] == 0


def test_results_are_identical_with_one_and_two_workers():
    pos = np.cumsum(np.random.default_rng(5).normal(size=(2, 48, 6, 3)), axis=1) * 0.1  # 36 series
    ctx, qt = _context(pos), torch.tensor([[2.0, 8.0], [4.0, 16.0]])
    params = {"level": 2, "max_p": 1, "max_q": 1}
    one = make_method("wavelet_arima", {**params, "workers": 1}).predict(ctx, qt)
    two = make_method("wavelet_arima", {**params, "workers": 2})
    series = pos.transpose(0, 2, 3, 1).reshape(-1, 48)
    cfg = {k: two.params[k] for k in ("wavelet", "level", "mode", "max_p", "max_q", "max_d", "kpss_alpha",
                                      "estimator", "fit_length")}
    chunked, _ = wa.forecast_many(series, 8, cfg, workers=2, chunk=8)  # 5 chunks over 2 processes
    plain, _ = wa.forecast_many(series, 8, cfg, workers=1)
    np.testing.assert_array_equal(chunked, plain)
    assert torch.equal(one, two.predict(ctx, qt))


@pytest.fixture(scope="module")
def chain_history_sets(chain_dataset):
    spec = dataclasses.replace(SPEC, observed=16)
    return open_parts(chain_dataset, build_window_split(chain_dataset, spec, "by_trajectory", {}, seed=0),
                      {"kind": "none"})


def test_seeds_do_not_change_wavelet_arima(chain_history_sets):
    sets = chain_history_sets
    assert make_method("wavelet_arima").seed_dependent is False
    ctx, qt, _ = next(sets["test"].batches(1))
    preds = []
    for seed in (0, 7):
        m = make_method("wavelet_arima", {"level": 2})
        m.fit(sets["train"], sets["val"], Budget(epochs=1), seed, "cpu")
        preds.append(m.predict(ctx, qt))
    assert torch.equal(preds[0], preds[1])


def test_unknown_estimator_is_rejected():
    with pytest.raises(ValueError, match="estimator"):
        make_method("wavelet_arima", {"estimator": "magic"})


# ---------------------------------------------------------------- DESCINet


@pytest.mark.parametrize("lookback", [5, 8, 13, 16])
@pytest.mark.parametrize("levels", [1, 2, 3])
@pytest.mark.parametrize("stacks", [1, 2])
def test_descinet_output_shapes(lookback, levels, stacks):
    torch.manual_seed(0)
    model = DESCINetModel(n_atoms=3, lookback=lookback, horizon=6, levels=levels, stacks=stacks, hidden=2,
                          kernel=5, dropout=0.0, groups=0, scale=0.5)
    assert model.padded % 2 ** levels == 0 and model.padded >= lookback
    for block in model.blocks:
        torch.nn.init.normal_(block.project.weight, std=0.1)
    history = torch.randn(2, lookback, 3, 3)
    assert model.forecast(history).shape == (2, 6, 3, 3)
    ctx = _context(history.numpy())
    qt = torch.tensor([[2.0, 12.0], [6.0, 24.0]])  # frames up to 12 > horizon 6: autoregressive chunk
    out = model(ctx, qt)
    assert out.shape == (2, 2, 3, 3) and torch.isfinite(out).all()
    full = model(ctx, torch.arange(1, 13, dtype=torch.float32).repeat(2, 1) * 2.0)  # protocol B: all frames
    assert full.shape == (2, 12, 3, 3)
    torch.testing.assert_close(full[:, :6], model.forecast(history))
    torch.testing.assert_close(out[1], full[1, [2, 11]])


def test_descinet_full_channel_mixing_and_untrained_model_is_static():
    model = DESCINetModel(n_atoms=2, lookback=8, horizon=4, levels=2, stacks=2, hidden=1, kernel=3,
                          dropout=0.5, groups=1, scale=1.0)
    conv = model.blocks[0].tree.block.phi[1]
    assert conv.groups == 1 and conv.in_channels == 6
    history = torch.randn(1, 8, 2, 3)
    model.eval()
    torch.testing.assert_close(model.forecast(history), history[:, -1:].expand(-1, 4, -1, -1))


def test_descinet_training_is_deterministic_and_ignores_the_run_seed(chain_history_sets):
    sets = chain_history_sets
    assert make_method("descinet").seed_dependent is False
    params = {"levels": 2, "stacks": 2, "batch_size": 4, "lr": 1e-3, "dropout": 0.5}
    preds = []
    for seed in (0, 3):
        m = make_method("descinet", params)
        facts = m.fit(sets["train"], sets["val"], Budget(epochs=2), seed, "cpu")
        assert facts["internal_seed"] == 4321 and facts["run_seed_ignored"] == seed
        ctx, qt, _ = next(sets["test"].batches(4))
        preds.append(m.predict(ctx, qt))
    assert torch.equal(preds[0], preds[1])
    assert m.setup_args["lookback"] == 16 and m.setup_args["horizon"] == SPEC.delta_frame
    assert not torch.equal(preds[0], ctx.positions[:, None].expand_as(preds[0]))  # it learned something


def test_descinet_rejects_groups_that_do_not_divide_the_channels(chain_history_sets):
    m = make_method("descinet", {"groups": 4})  # 6 atoms -> 18 channels
    with pytest.raises(ValueError, match="groups"):
        m.fit(chain_history_sets["train"], chain_history_sets["val"], Budget(epochs=1), 0, "cpu")


def test_both_run_protocol_b_on_every_future_frame(tmp_path):
    from conftest import make_chain_dataset

    from benchmark.splits import build_split

    ds = make_chain_dataset(tmp_path / "chain", n_traj=4, n_frames=80)
    split = build_split(ds, "extrapolate", {"observed": 24, "horizon": 48, "windows": [[0, 8], [40, 48]],
                                            "n_full_domain": 10}, "by_trajectory", {}, 0)
    sets = open_parts(ds, split, {"kind": "none"})
    test = sets["test"]
    for name, params in [("wavelet_arima", {"level": 2, "max_p": 1}),
                         ("descinet", {"levels": 2, "stacks": 1, "horizon": 16, "train_windows": 8})]:
        m = make_method(name, params)
        assert m.skip_reason("extrapolate", sets["train"]) is None
        m.fit(sets["train"], sets["val"], Budget(epochs=1), 0, "cpu")
        err, pred = predict_errors(m, test, 4, "cpu", return_predictions=True)
        assert pred.shape == (len(test), 48, 6, 3) and np.isfinite(pred).all()
