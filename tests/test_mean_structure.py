"""The mean-structure baseline by hand: a rigid molecule, rotated and moved, is predicted exactly."""

import numpy as np
import torch

from benchmark.samples import Context
from methods import make_method
from methods.mean_structure import mean_structure

SHAPE = np.array([[0.0, 0, 0], [1.5, 0, 0], [1.5, 1.5, 0], [0, 0.5, 2.0]])


def rotation(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def test_mean_of_rotated_copies_is_the_shape():
    frames = np.stack([SHAPE @ rotation([1, 2, 3], a).T + [a, -a, 2 * a] for a in np.linspace(0, 3, 7)])
    mean = mean_structure(frames)
    centred = SHAPE - SHAPE.mean(axis=0)
    # the mean has the rigid shape: identical pair distances
    d = lambda x: np.linalg.norm(x[:, None] - x[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(d(mean), d(centred), atol=1e-9)
    np.testing.assert_allclose(mean.mean(axis=0), 0, atol=1e-12)


def test_mean_of_two_vibrating_frames_by_hand():
    # two frames of a diatomic along x, no rotation between them: bond 1.0 and 2.0 -> mean bond 1.5
    a = np.array([[[0.0, 0, 0], [1.0, 0, 0]], [[0.0, 0, 0], [2.0, 0, 0]]])
    np.testing.assert_allclose(mean_structure(a), [[-0.75, 0, 0], [0.75, 0, 0]], atol=1e-12)


def _context(x):
    x = torch.as_tensor(x, dtype=torch.float32)
    return Context(observed_positions=x[:, None], observed_velocities=torch.zeros_like(x[:, None]),
                   observed_times=torch.zeros(1), atomic_numbers=torch.full((x.shape[1],), 6),
                   masses=torch.full((x.shape[1],), 12.0), edges=None, box=None, dt_fs=1.0)


def test_predicts_the_rotated_mean_exactly():
    method = make_method("mean_structure")
    method.mean = torch.as_tensor(SHAPE - SHAPE.mean(axis=0), dtype=torch.float64)
    rot = rotation([0.3, -1, 0.5], 2.1)
    observed = SHAPE @ rot.T + np.array([4.0, -2.0, 7.0])
    pred = method.predict(_context(observed[None]), torch.tensor([[10.0, 20.0, 30.0]]))
    assert pred.shape == (1, 3, 4, 3)
    for k in range(3):
        np.testing.assert_allclose(pred[0, k].numpy(), observed, atol=1e-5)


def test_skips_periodic_boxes(tiny_tasks):
    train = tiny_tasks["lj"][0]
    reason = make_method("mean_structure").skip_reason("window", train)
    assert reason and "periodic" in reason
    assert make_method("mean_structure").skip_reason("window", tiny_tasks["chain"][0]) is None


def test_fit_on_a_vibrating_chain_recovers_its_zigzag(tiny_tasks):
    train, val, test = tiny_tasks["chain"]
    method = make_method("mean_structure")
    assert method.fit(train, val, None, 0, "cpu")["frames"] > 0
    # the fixture's atoms vibrate by 0.1 A around a zig-zag with 1.4 A steps along x and 0.8 A in y
    base = np.stack([np.arange(6) * 1.4, (np.arange(6) % 2) * 0.8, np.zeros(6)], -1)
    d = lambda x: np.linalg.norm(x[:, None] - x[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(d(method.mean.numpy()), d(base), atol=0.2)
    ctx, qt, target = next(test.batches(len(test)))
    pred = method.predict(ctx, qt)
    assert pred.shape == target.shape and torch.isfinite(pred).all()
    np.testing.assert_allclose(pred[:, 0].mean(dim=1).numpy(), ctx.positions.mean(dim=1).numpy(), atol=1e-4)
