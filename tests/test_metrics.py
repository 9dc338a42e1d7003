import numpy as np
import pytest

from benchmark.metrics import position_sq_error, window_rows


def test_mse_hand_computed():
    target = np.zeros((1, 1, 2, 3))
    pred = np.array([[[[1.0, 0, 0], [0, 2.0, 0]]]])
    # (1 + 4) / (2 atoms * 3 coords)
    assert position_sq_error(pred, target)[0, 0] == pytest.approx(5 / 6)


def test_periodic_minimum_image():
    box = np.array([10.0, 10.0, 10.0])
    target = np.array([[[[9.9, 5.0, 5.0]]]])
    pred = np.array([[[[0.1, 5.0, 5.0]]]])  # crossed the boundary: true distance 0.2
    assert position_sq_error(pred, target, box)[0, 0] == pytest.approx(0.2 ** 2 / 3)
    assert position_sq_error(pred, target)[0, 0] == pytest.approx(9.8 ** 2 / 3)


def test_nan_prediction_is_inf_not_hidden():
    pred = np.zeros((2, 1, 1, 3))
    pred[1, 0, 0, 0] = np.nan
    err = position_sq_error(pred, np.zeros_like(pred))
    assert err[0, 0] == 0 and np.isinf(err[1, 0])


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        position_sq_error(np.zeros((1, 2, 3)), np.zeros((1, 3, 3)))


def test_window_conventions():
    err = np.array([[1.0, 3.0], [2.0, 6.0]])  # 2 samples x 2 offsets
    rows = {(r["metric"], r["convention"]): r for r in window_rows(err, np.array([[5, 10], [5, 10]]), 10)}
    assert rows[("mse", "mean_over_offsets")]["value"] == pytest.approx(3.0)
    assert rows[("mse", "last_offset")]["value"] == pytest.approx(4.5)
    assert rows[("mse_at_offset", "slot_1")]["value"] == pytest.approx(1.5)
    assert rows[("mse_at_offset", "slot_2")]["offset"] == 10
    irregular = window_rows(err, np.array([[1, 10], [3, 10]]), 10)
    assert [r["offset"] for r in irregular if r["metric"] == "mse_at_offset"] == [None, None]


def test_window_rows_reject_empty():
    with pytest.raises(ValueError, match="non-empty"):
        window_rows(np.zeros((0, 8)), np.zeros((0, 8)), 8)
