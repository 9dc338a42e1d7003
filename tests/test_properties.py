"""Property-based tests (hypothesis) for the loaders and the metrics."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from benchmark.data.format import DataError, load_trajectory, write_trajectory
from benchmark.metrics import first_failure, position_sq_error, window_rows

finite = st.floats(-50, 50, allow_nan=False, allow_infinity=False, width=32)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def trajectories(draw):
    frames, atoms = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    pos = draw(arrays(np.float32, (frames, atoms, 3), elements=finite))
    box = draw(st.none() | st.lists(st.floats(5, 40), min_size=3, max_size=3))
    return pos, box


@SETTINGS
@given(trajectories())
def test_write_load_round_trip(tmp_path_factory, traj):
    pos, box = traj
    path = write_trajectory(tmp_path_factory.mktemp("t") / "x", pos, dt_fs=0.5, atomic_numbers=[1] * pos.shape[1],
                            masses=[1.0] * pos.shape[1], box=box)
    back = load_trajectory(path, check_finite=True)
    np.testing.assert_array_equal(np.asarray(back.positions), pos)
    assert (back.box is None) == (box is None)


@SETTINGS
@given(trajectories(), st.integers(1, 200))
def test_truncated_files_always_named(tmp_path_factory, traj, cut):
    pos, _ = traj
    path = write_trajectory(tmp_path_factory.mktemp("t") / "x", pos, dt_fs=1, atomic_numbers=[1] * pos.shape[1],
                            masses=[1.0] * pos.shape[1])
    f = path / "positions.npy"
    data = f.read_bytes()
    f.write_bytes(data[:max(0, len(data) - cut)])
    with pytest.raises(DataError, match="positions.npy"):
        load_trajectory(path)


@st.composite
def pairs(draw):
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4)), 3)
    a = draw(arrays(np.float64, shape, elements=finite))
    b = draw(arrays(np.float64, shape, elements=finite))
    return a, b


@settings(max_examples=60, deadline=None)
@given(pairs())
def test_mse_is_a_symmetric_nonnegative_mean(pair):
    a, b = pair
    e = position_sq_error(a, b)
    assert e.shape == a.shape[:2]
    assert (e >= 0).all() and np.allclose(e, position_sq_error(b, a))
    assert np.allclose(position_sq_error(a, a), 0)
    np.testing.assert_allclose(e, ((a - b) ** 2).mean(axis=(-1, -2)))


@settings(max_examples=60, deadline=None)
@given(pairs(), st.floats(5, 30), st.integers(-3, 3))
def test_periodic_error_ignores_whole_box_shifts(pair, edge, k):
    a, b = pair
    box = np.array([edge, edge * 1.1, edge * 0.9])
    shifted = a + k * box  # an atom that crossed the boundary k times
    np.testing.assert_allclose(position_sq_error(shifted, b, box), position_sq_error(a, b, box), atol=1e-6)
    assert (position_sq_error(a, b, box) <= (box ** 2).sum() / 4 / 3 + 1e-9).all()  # never beyond half a box


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 6)), elements=st.floats(0, 10)))
def test_window_conventions_bound_each_other(err):
    rows = {(r["metric"], r["convention"]): r["value"] for r in window_rows(err, np.ones_like(err, dtype=int), 10)}
    slots = [rows[("mse_at_offset", f"slot_{k + 1}")] for k in range(err.shape[1])]
    assert min(slots) - 1e-12 <= rows[("mse", "mean_over_offsets")] <= max(slots) + 1e-12
    assert rows[("mse", "last_offset")] == pytest.approx(slots[-1])


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 8)), elements=st.floats(0, 5)), st.floats(0.1, 4))
def test_first_failure_is_first_exceedance(err, threshold):
    first = first_failure(err, threshold)
    for s, f in enumerate(first):
        assert (err[s, :f - 1] <= threshold).all()
        if f <= err.shape[1]:
            assert err[s, f - 1] > threshold
