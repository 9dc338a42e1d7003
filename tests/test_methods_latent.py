"""LG-ODE, DoMiNO, ITO and their PaiNN layers: equivariance, level ablation, lag sampling, sampling determinism."""

import math

import numpy as np
import pytest
import torch
from conftest import SPEC

from benchmark.samples import Context, open_parts
from benchmark.splits import build_window_split
from methods import make_method
from methods.domino import DoMiNOModel
from methods.ito import ITOModel, ITONet, draw_starts, sample_lag_pairs, training_segments
from methods.lgode import LGODEModel, encode_indices
from methods.nn.graph import radius_graph
from methods.nn.painn import PaiNN


def _rotation(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=dtype))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _painn_features(model, pos, z, box, cutoff):
    b, n, _ = pos.shape
    s = torch.nn.functional.one_hot(z, 8).to(pos.dtype).repeat(b, 1)
    v = torch.zeros(b * n, 3, 8, dtype=pos.dtype)
    return model(s, v, radius_graph(pos, cutoff, box))


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def test_painn_invariance_and_equivariance():
    torch.manual_seed(0)
    model = PaiNN(8, 2, cutoff=4.0).double()
    pos = torch.randn(2, 7, 3, dtype=torch.float64) * 1.5
    z = torch.tensor([0, 1, 2, 1, 0, 3, 2])
    s, v = _painn_features(model, pos, z, None, 4.0)
    assert v.abs().max() > 0 and s.abs().max() > 0
    rot, shift = _rotation(), torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    s2, v2 = _painn_features(model, pos @ rot.T + shift, z, None, 4.0)
    torch.testing.assert_close(s2, s)
    torch.testing.assert_close(v2, torch.einsum("ij,mjf->mif", rot, v))
    perm = torch.randperm(7)
    s3, v3 = _painn_features(model, pos[:, perm], z[perm], None, 4.0)
    torch.testing.assert_close(s3.reshape(2, 7, -1), s.reshape(2, 7, -1)[:, perm])
    torch.testing.assert_close(v3.reshape(2, 7, 3, -1), v.reshape(2, 7, 3, -1)[:, perm])


def test_painn_norm_bounds_features_of_near_collisions():
    """Two atoms 0.05 A apart through 5 layers with large weights: plain PaiNN's vector products
    overflow (what made ITO's diffusion samples non-finite); the pre-normed layers (ITO's
    ``layer_norm``) stay finite and bounded, and stay equivariant."""
    torch.manual_seed(0)
    pos = torch.randn(1, 6, 3, dtype=torch.float64) * 1.5
    pos[0, 1] = pos[0, 0] + torch.tensor([0.05, 0.0, 0.0], dtype=torch.float64)
    s, v = torch.randn(6, 16, dtype=torch.float64), torch.randn(6, 3, 16, dtype=torch.float64)
    out = {}
    for norm in (False, True):
        net = PaiNN(16, 5, 4.5, norm=norm).double()
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, torch.nn.Linear):
                    m.weight.mul_(3.0)
        out[norm] = net(s, v, radius_graph(pos, 4.5))
        if norm:
            rot = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0]
            s_r, v_r = net(s, torch.einsum("ij,njf->nif", rot, v), radius_graph(pos @ rot.T, 4.5))
            assert torch.allclose(s_r, out[True][0], atol=1e-6)
            assert torch.allclose(v_r, torch.einsum("ij,njf->nif", rot, out[True][1]), atol=1e-6)
    assert not (out[False][0].abs().max() < 1e6)  # overflowed (inf/nan) or huge
    assert torch.isfinite(out[True][0]).all() and out[True][0].abs().max() < 1e4
    assert torch.isfinite(out[True][1]).all() and out[True][1].abs().max() < 1e4


def test_painn_periodic_minimum_image():
    """In a cubic box: translations (with wrapping) and 90-degree rotations leave the graph unchanged."""
    torch.manual_seed(1)
    box = torch.tensor([6.0, 6.0, 6.0], dtype=torch.float64)
    model = PaiNN(8, 2, cutoff=2.9).double()
    pos = torch.rand(1, 12, 3, dtype=torch.float64) * 6.0
    z = torch.arange(12) % 4
    s, v = _painn_features(model, pos, z, box, 2.9)
    wrapped = torch.remainder(pos + torch.tensor([3.1, -4.2, 5.0], dtype=torch.float64), 6.0)
    s2, v2 = _painn_features(model, wrapped, z, box, 2.9)
    torch.testing.assert_close(s2, s)
    torch.testing.assert_close(v2, v)
    rot = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    s3, v3 = _painn_features(model, torch.remainder(pos @ rot.T, 6.0), z, box, 2.9)
    torch.testing.assert_close(s3, s)
    torch.testing.assert_close(v3, torch.einsum("ij,mjf->mif", rot, v))
    # an edge across the boundary is found by minimum image
    g = radius_graph(torch.tensor([[[0.2, 3.0, 3.0], [5.9, 3.0, 3.0]]], dtype=torch.float64), 1.0, box)
    assert g.src.numel() == 2 and torch.allclose(g.dist, torch.full((2,), 0.3, dtype=torch.float64))


def _context(pos_seq, vel_seq, z, box=None, dt=2.0):
    b, length, n, _ = pos_seq.shape
    return Context(pos_seq, vel_seq, torch.arange(-length + 1, 1, dtype=pos_seq.dtype) * dt, z,
                   torch.ones(n, dtype=pos_seq.dtype), None, box, dt)


def _transform(ctx, rot, shift, perm):
    return _context(ctx.observed_positions[:, :, perm] @ rot.T + shift, ctx.observed_velocities[:, :, perm] @ rot.T,
                    ctx.atomic_numbers[perm], ctx.box, ctx.dt_fs)


def test_domino_equivariant_prediction():
    """DoMiNO's whole path (PaiNN encoders, ODEs, projectors, fusion decoder) is E(3) x S_N equivariant."""
    torch.manual_seed(2)
    model = DoMiNOModel(n_atoms=6, disp_scale=0.5, vel_scale=0.01, time_scale=40.0, levels=3, strides=[4, 2, 1],
                        reference_horizon=8, hidden=8, latent=4, augment=4, encoder_layers=1, ode_hidden=8,
                        ode_layers=1, cutoff=4.0, encode_frames=3).double()
    pos = torch.randn(2, 4, 6, 3, dtype=torch.float64) * 1.2
    vel = torch.randn(2, 4, 6, 3, dtype=torch.float64) * 0.01
    ctx = _context(pos, vel, torch.tensor([6, 6, 8, 1, 1, 7]))
    qt = torch.tensor([[4.0, 10.0, 26.0], [2.0, 30.0, 40.0]], dtype=torch.float64)
    pred = model(ctx, qt)
    rot, shift, perm = _rotation(3), torch.tensor([0.3, 1.0, -2.0], dtype=torch.float64), torch.randperm(6)
    pred2 = model(_transform(ctx, rot, shift, perm), qt)
    torch.testing.assert_close(pred2, pred[:, :, perm] @ rot.T + shift)
    assert not torch.allclose(pred, ctx.positions[:, None].expand_as(pred))  # it does move the atoms


def test_ito_score_network_equivariant():
    torch.manual_seed(3)
    net = ITONet(hidden=8, cond_layers=1, score_layers=2, cutoff=4.0, steps=50).double()
    x_t = torch.randn(2, 6, 3, dtype=torch.float64) * 1.3
    y = torch.randn(2, 6, 3, dtype=torch.float64)
    z = torch.tensor([6, 6, 8, 1, 1, 7])
    k, lag, scale = torch.tensor([3, 40]), torch.tensor([1, 17]), torch.tensor([0.4, 0.9], dtype=torch.float64)

    def eps(x, yy, zz):
        return net(yy, k, lag, x, net.condition(x, zz, None), scale, None)

    out = eps(x_t, y, z)
    assert torch.allclose(out.mean(1), torch.zeros(2, 3, dtype=torch.float64), atol=1e-12)  # zero-CoM
    rot, shift, perm = _rotation(4), torch.tensor([5.0, -1.0, 2.0], dtype=torch.float64), torch.randperm(6)
    torch.testing.assert_close(eps(x_t @ rot.T + shift, y @ rot.T, z), out @ rot.T)
    torch.testing.assert_close(eps(x_t[:, perm], y[:, perm], z[perm]), out[:, perm])


def test_domino_level_variants_build_and_differ(tiny_tasks):
    train, val, _ = tiny_tasks["chain"]
    sizes, preds = [], []
    ctx, qt, _ = next(train.batches(3))
    for levels in (1, 2, 3):
        params = {**make_method("domino").test_params, "levels": levels}
        m = make_method("domino", params)
        torch.manual_seed(0)
        m.setup_args = m.setup(train)
        m.model = m.build(**m.setup_args)
        assert len(m.model.odes) == levels and len(m.model.projectors) == levels - 1
        sizes.append(m.n_params())
        per_level = m.model.level_predictions(ctx, qt)
        assert per_level.shape == (levels, 3, qt.shape[1], train.n_atoms, 3)
        preds.append(m.predict(ctx, qt))
    assert sizes[0] < sizes[1] < sizes[2]
    assert not torch.allclose(preds[0], preds[2])
    with pytest.raises(KeyError, match="levels"):
        make_method("domino", {"levels": 4})


def test_ito_lags_stay_inside_training_segments(chain_dataset):
    """Blocks split: lag pairs never cross a trajectory boundary nor leave the training blocks."""
    spec = SPEC.__class__(delta_frame=8, num_queries=2, n_train=10, n_val=4, n_test=4)
    split = build_window_split(chain_dataset, spec, "blocks", {"gap": 8}, seed=0)
    parts = open_parts(chain_dataset, split, None)
    segments = training_segments(parts["train"])
    assert {s[0] for s in segments} <= set(range(3))
    forbidden = {(int(i), int(t)) for p in ("val", "test") for i, t0, off in
                 zip(parts[p].traj_idx, parts[p].t0, parts[p].offsets) for t in [t0, *(t0 + off)]}
    rng = np.random.default_rng(0)
    traj, start, lag = sample_lag_pairs(segments, 3000, 999, rng)
    longest = max(hi - lo for _, lo, hi in segments)
    assert lag.min() == 1 and lag.max() <= longest
    for i, a, k in zip(traj, start, lag):
        assert any(t == i and lo <= a and a + k <= hi for t, lo, hi in segments)
        assert (int(i), int(a)) not in forbidden and (int(i), int(a + k)) not in forbidden
    # log-uniform: about half of the lags below sqrt(max)
    frac = np.mean(lag <= math.sqrt(longest + 1))
    assert 0.35 < frac < 0.65
    with pytest.raises(ValueError):
        draw_starts([(0, 0, 3)], np.array([5]), rng)


def test_ito_ddim_is_deterministic_and_modes_run(tiny_tasks):
    train, val, test = tiny_tasks["lj"]
    ctx, qt, _ = next(test.batches(2))
    preds = {}
    for mode in ("1step", "rollout"):
        m = make_method("ito", {**make_method("ito").test_params, "mode": mode})
        torch.manual_seed(0)
        m.setup_args = m.setup(train)
        m.model = m.build(**m.setup_args)
        a, b = m.predict(ctx, qt), m.predict(ctx, qt)
        assert a.shape == (2, qt.shape[1], train.n_atoms, 3) and torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        preds[mode] = a
    model: ITOModel = m.model
    x_t, lag = ctx.positions, torch.tensor([3, 7])
    draws = [model.sample(x_t, lag, ctx.atomic_numbers, ctx.box, torch.Generator().manual_seed(s), "ddim", 4)
             for s in (5, 5, 6)]
    torch.testing.assert_close(draws[0], draws[1], rtol=0, atol=0)
    assert not torch.allclose(draws[0], draws[2])
    anc = model.sample(x_t, lag, ctx.atomic_numbers, ctx.box, torch.Generator().manual_seed(5), "ancestral")
    assert torch.isfinite(anc).all()
    assert not torch.allclose(preds["1step"], preds["rollout"])


def test_latent_models_protocol_b_shapes():
    """Long history and dense queries (protocol B shapes) on a hand-built context; chunked decoding."""
    torch.manual_seed(4)
    pos = torch.cumsum(torch.randn(2, 40, 5, 3) * 0.05, 1) + torch.randn(1, 1, 5, 3) * 2
    ctx = _context(pos, torch.randn(2, 40, 5, 3) * 0.01, torch.tensor([6, 6, 8, 1, 7]))
    qt = torch.arange(1, 121, dtype=torch.float32).expand(2, -1) * 2.0
    assert encode_indices(40, 6).tolist() == [0, 8, 16, 23, 31, 39]
    lg = LGODEModel(5, 0.5, 0.01, 240.0, hidden=8, latent=4, augment=4, encoder_layers=1, ode_hidden=8,
                    ode_steps=5, encode_frames=6, predict_chunk=50)
    dm = DoMiNOModel(5, 0.5, 0.01, 240.0, levels=2, strides=[4, 1], reference_horizon=8, hidden=8, latent=4,
                     augment=4, encoder_layers=1, ode_hidden=8, ode_layers=1, encode_frames=6, predict_chunk=50)
    with torch.no_grad():
        outs = {}
        for name, model in (("lgode", lg), ("domino", dm)):
            outs[name] = model(ctx, qt)
            assert outs[name].shape == (2, 120, 5, 3) and torch.isfinite(outs[name]).all()
        # chunking the queries does not change the answer
        lg.predict_chunk, dm.predict_chunk = 1000, 1000
        torch.testing.assert_close(lg(ctx, qt), outs["lgode"])
        torch.testing.assert_close(dm(ctx, qt), outs["domino"], rtol=1e-4, atol=1e-5)


def test_lgode_training_batches_subsample_long_queries(tiny_tasks):
    train = tiny_tasks["chain"][0]
    m = make_method("lgode", {**make_method("lgode").test_params, "train_queries": 2})
    batches = list(m.training_batches(train, 5, torch.Generator().manual_seed(0)))
    assert sum(b[0].batch_size for b in batches) == len(train)
    for _ctx, qt, target in batches:
        assert qt.shape[1] == 2 and target.shape[1] == 2 and torch.all(qt[:, 1:] > qt[:, :1])
