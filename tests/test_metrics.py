import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from benchmark.metrics import (
    aligned_rows,
    aligned_sq_error,
    decorrelated_pairs_mse,
    kabsch_rotation,
    min_pair_distance,
    periodic_ceiling,
    position_sq_error,
    random_orientation_mse,
    superpose,
    valid_frames,
    validity_row,
    window_rows,
)


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


# ------------------------------------------------------------ protocol B
from benchmark.metrics import (  # noqa: E402  (grouped with its tests)
    bond_angle_triples,
    bond_angles_deg,
    dihedrals,
    extrapolate_rows,
    first_failure,
    ramachandran_kl,
    rdf,
    rdf_wasserstein,
    structure_rows,
    vamp2,
)


def test_first_failure_threshold_nan_and_censored():
    err = np.array([[0.1, 0.2, 5.0, 0.1],      # fails at frame 3
                    [0.1, np.nan, 0.1, 0.1],   # non-finite at frame 2
                    [0.1, 0.1, 0.1, 0.1]])     # never: K + 1 = 5
    assert first_failure(err, 1.0).tolist() == [3, 2, 5]


def test_extrapolate_rows_hand_computed():
    err = np.arange(1, 11, dtype=float)[None].repeat(2, 0)  # frame k has error k, two samples
    rows = extrapolate_rows(err, full_domain_offsets=[2, 4], windows=[[0, 2], [8, 10]], failure_threshold=5.5,
                            curve_bin=4, norm_range=(-1.0, 3.0))
    get = {(r["metric"], r["convention"], r["offset"]): r["value"] for r in rows}
    assert get[("mse", "full_domain", None)] == pytest.approx(3.0)       # frames 2 and 4
    assert get[("mse", "full_domain_normalised", None)] == pytest.approx(3.0 * (2 / 4) ** 2)
    assert get[("mse", "all_frames", None)] == pytest.approx(5.5)
    assert get[("mse_window", "0-2", 2)] == pytest.approx(1.5)            # frames 1..2
    assert get[("mse_window", "8-10", 10)] == pytest.approx(9.5)          # frames 9..10
    assert [get[("mse_curve", "bin_4", e)] for e in (4, 8, 10)] == pytest.approx([2.5, 6.5, 9.5])
    assert get[("time_to_failure", "threshold_5.5", None)] == 6
    assert get[("failed_fraction", "threshold_5.5", None)] == 1.0


def test_extrapolate_zero_length_horizon_rejected():
    with pytest.raises(ValueError, match="non-empty"):
        extrapolate_rows(np.zeros((1, 0)), full_domain_offsets=[], windows=[], failure_threshold=1, curve_bin=1,
                         norm_range=None)


# ------------------------------------------------------------ structure
def _water_like():
    # O at origin, H1 along x at 1 A, H2 along y at 2 A: bond lengths 1 and 2, angle 90 deg
    return np.array([[0.0, 0, 0], [1.0, 0, 0], [0, 2.0, 0]])


def test_bond_lengths_and_angles_hand_computed():
    bonds = np.array([[0, 1], [0, 2]])
    assert bond_angle_triples(bonds).tolist() == [[1, 0, 2]]
    assert bond_angles_deg(_water_like(), bond_angle_triples(bonds))[0] == pytest.approx(90.0)
    pred = _water_like()
    pred[1, 0] = 1.5                 # bond 0-1 becomes 1.5 (error 0.5 = 50 %)
    pred[2] = [0, 2.0 / np.sqrt(2) * 1.0, 0]  # keep angle 90, shorten 0-2 to sqrt(2) (error 2-sqrt2)
    rows = {(r["metric"], r["convention"]): r["value"] for r in structure_rows(pred[None], _water_like()[None], bonds)}
    assert rows[("bond_length_mae", "A")] == pytest.approx((0.5 + (2 - np.sqrt(2))) / 2)
    assert rows[("bond_length_mae", "percent")] == pytest.approx((50 + (2 - np.sqrt(2)) / 2 * 100) / 2)
    assert rows[("bond_angle_mae", "degrees")] == pytest.approx(0.0, abs=1e-9)


def test_dihedral_with_mdtraj_hand_computed():
    # trans (180 deg) and cis (0 deg) conformations of a 4-atom chain
    trans = np.array([[[1.0, 1, 0], [0, 0, 0], [0, 0, 1.5], [-1, -1, 1.5]]])
    cis = np.array([[[1.0, 1, 0], [0, 0, 0], [0, 0, 1.5], [1, 1, 1.5]]])
    assert abs(dihedrals(trans, [[0, 1, 2, 3]])[0, 0]) == pytest.approx(np.pi, abs=1e-5)
    assert dihedrals(cis, [[0, 1, 2, 3]])[0, 0] == pytest.approx(0.0, abs=1e-5)


def test_ramachandran_kl_zero_for_same_and_positive_for_shifted():
    rng = np.random.default_rng(0)
    a = rng.normal([-1.5, 2.5], 0.3, size=(500, 2))
    assert ramachandran_kl(a, a) == pytest.approx(0.0, abs=1e-9)
    assert ramachandran_kl(a, a + [1.5, -3.0]) > 1.0


def test_vamp2_detects_slow_process():
    rng = np.random.default_rng(0)
    slow = np.cumsum(rng.normal(size=(4000, 1)), 0) * 0.01
    slow = np.sin(slow * 20)
    noise = rng.normal(size=(4000, 1))
    assert vamp2(slow, 5) > vamp2(noise, 5) + 0.5


def test_rdf_of_ideal_gas_is_flat_and_w1_zero_for_same():
    rng = np.random.default_rng(0)
    box = np.array([20.0, 20.0, 20.0])
    x = rng.uniform(0, 20, size=(20, 200, 3))
    r, g = rdf(x, box, r_max=8.0, bins=8)
    assert np.all(np.abs(g[2:] - 1) < 0.1)
    assert rdf_wasserstein(x, x, box, 8.0) == 0.0
    lattice = np.stack(np.meshgrid(*[np.arange(5) * 4.0] * 3, indexing="ij"), -1).reshape(1, -1, 3).repeat(20, 0)
    assert rdf_wasserstein(lattice, x[:, :125], box, 8.0) > 0.5  # a crystal is not a gas
    # a wrap across the boundary does not change the RDF
    assert rdf_wasserstein(x + box * np.array([1, 0, -1]), x, box, 8.0) == pytest.approx(0.0, abs=1e-9)


# ------------------------------------------------------------ through the harness
def test_every_metric_through_the_harness(chain_dataset, lj_dataset):
    """The static baseline gets every metric of both protocols via evaluate_part."""
    from benchmark.evaluation import evaluate_part
    from benchmark.samples import open_parts
    from benchmark.specs import WindowSpec
    from benchmark.splits import build_split, build_window_split
    from methods import make_method

    method = make_method("static")
    cfg = {"structure": {"heavy_atoms_only": False},
           "dihedrals": {"phi": [0, 1, 2, 3], "psi": [1, 2, 3, 4], "vamp_lag": 2}}
    spec = WindowSpec(delta_frame=10, num_queries=4, n_train=5, n_val=5, n_test=5)
    win = build_window_split(chain_dataset, spec, "by_trajectory", {}, seed=0)
    ext = build_split(chain_dataset, "extrapolate",
                      {"observed": 20, "horizon": 40, "curve_bin": 10, "windows": [[0, 10], [30, 40]]},
                      "by_trajectory", {}, 0)
    for split in (win, ext):
        test = open_parts(chain_dataset, split, {"kind": "molecular"}, ("test",))["test"]
        rows, bad, artifacts, seconds = evaluate_part(method, test, split, cfg, 8)
        names = {r["metric"] for r in rows}
        assert bad == 0 and seconds >= 0 and {"bond_length_mae", "bond_angle_mae", "ramachandran_kl"} <= names
        assert all(np.isfinite(r["value"]) for r in rows) and all("horizon" in r for r in rows)
        assert len(artifacts["phi_psi"]["predicted"]) > 0
    assert "vamp2" in names and {"mse_window", "mse_curve", "time_to_failure"} <= names
    # liquids: the RDF metric on a periodic box
    ext = build_split(lj_dataset, "extrapolate", {"observed": 20, "horizon": 30, "curve_bin": 10},
                      "by_trajectory", {}, 0)
    test = open_parts(lj_dataset, ext, {"kind": "none"}, ("test",))["test"]
    rows, _, _, _ = evaluate_part(method, test, ext, {"rdf": {"r_max": 6.0, "frames": 5}}, 8)
    w1 = [r["value"] for r in rows if r["metric"] == "rdf_w1"]
    assert len(w1) == 1 and w1[0] >= 0


def test_ramachandran_kl_periodic_and_degenerate():
    rng = np.random.default_rng(1)
    a = rng.normal([3.1, 0.0], 0.05, size=(400, 2))  # straddles +-pi in phi
    assert ramachandran_kl(a, a - [2 * np.pi, 0]) == pytest.approx(0.0, abs=1e-9)  # same angles
    single = np.tile([[0.5, 0.5]], (50, 1))  # a method predicting one conformation
    assert np.isfinite(ramachandran_kl(a, single)) and ramachandran_kl(a, single) > 5


def test_vamp2_of_constant_series_is_one():
    assert vamp2(np.ones((100, 4)), 5) == 1.0


# ---------------------------------------------------------------- evaluation v2: alignment, validity, ceilings
def _rotation(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


SHAPE = np.array([[0.0, 0, 0], [1.5, 0, 0], [1.5, 1.5, 0], [0, 0.5, 2.0]])


def test_aligned_error_ignores_rotation_and_translation():
    moved = SHAPE @ _rotation(1.0).T + [3.0, -1.0, 2.0]
    assert kabsch_rotation(SHAPE - SHAPE.mean(0), moved - moved.mean(0)) == pytest.approx(_rotation(1.0))
    np.testing.assert_allclose(superpose(SHAPE, moved), moved, atol=1e-12)
    assert aligned_sq_error(SHAPE[None], moved[None])[0] == pytest.approx(0.0, abs=1e-20)
    assert position_sq_error(SHAPE[None], moved[None])[0] > 1
    # a mirror image is not a rotation: it keeps an error
    assert aligned_sq_error(SHAPE[None] * [1, 1, -1], SHAPE[None])[0] > 0.1


def test_aligned_error_by_hand():
    # two atoms 2 A apart predicted 1 A apart: after centring, each atom is off by 0.5 A along the axis
    pred = np.array([[[0.0, 0, 0], [1.0, 0, 0]]])
    target = np.array([[[5.0, 5, 5], [5.0, 7, 5]]])
    assert aligned_sq_error(pred, target)[0] == pytest.approx(2 * 0.25 / 6)
    # over the atoms given only; non-finite predictions are inf
    assert aligned_sq_error(np.array([[[0.0, 0, 0], [1.0, 0, 0], [9, 9, 9]]]),
                            np.array([[[5.0, 5, 5], [5.0, 7, 5], [0, 0, 0]]]), atoms=[0, 1])[0] == pytest.approx(1 / 12)
    assert np.isinf(aligned_sq_error(np.full((1, 2, 3), np.nan), target)[0])
    rows = {(r["metric"], r["convention"]): r["value"]
            for r in aligned_rows(np.array([[1.0, 3.0], [2.0, 6.0]]), "window", 10)}
    assert rows[("mse_aligned", "mean_over_offsets")] == pytest.approx(3.0)
    assert rows[("mse_aligned_at_offset", "slot_2")] == pytest.approx(4.5)
    rows = {r["convention"]: r["value"] for r in aligned_rows(np.array([[1.0, 3.0, 5.0]]), "extrapolate", 3, [1, 3])}
    assert rows == {"full_domain": pytest.approx(3.0), "all_frames": pytest.approx(3.0)}


def test_validity_by_hand():
    target = np.array([[0.0, 0, 0], [1.5, 0, 0], [3.0, 0, 0]])
    bonds = np.array([[0, 1], [1, 2]])
    stretched = np.array([[0.0, 0, 0], [1.5, 0, 0], [3.35, 0, 0]])  # mean bond error 0.175 A
    overlap = np.array([[0.0, 0, 0], [0.3, 0, 0], [1.8, 0, 0]])  # atoms 0.3 A apart, bonds 0.3 and 1.5
    collapsed = np.zeros((3, 3))
    frames = np.stack([target, stretched, overlap, collapsed, np.full((3, 3), np.nan)])
    got = valid_frames(frames, np.broadcast_to(target, frames.shape), bonds)
    assert got.tolist() == [True, False, False, False, False]
    assert valid_frames(stretched, target, bonds, bond_tolerance=0.2)  # a looser suite threshold
    assert not valid_frames(overlap, target, np.zeros((0, 2), int))  # no bonds: overlap alone decides
    assert min_pair_distance(overlap) == pytest.approx(0.3)
    row = validity_row(got, 10, 0.1, 0.5)
    assert row["metric"] == "valid" and row["value"] == pytest.approx(0.2)


def test_ceilings_by_hand():
    # uniform displacement on [-L/2, L/2): L^2/12 per coordinate; the LJ box of the board: 61.97 A^2
    assert periodic_ceiling([27.27, 27.27, 27.27]) == pytest.approx(61.97, abs=0.01)
    assert periodic_ceiling([6.0, 12.0, 6.0]) == pytest.approx((36 + 144 + 36) / 3 / 12)
    # a trajectory that jumps between two frames 2 A apart on x after 5 frames: any pair 5+ apart differs
    traj = np.zeros((10, 1, 3))
    traj[5:, 0, 0] = 2.0
    assert decorrelated_pairs_mse([traj], 5, n_pairs=500) == pytest.approx(4.0 / 3)
    with pytest.raises(ValueError, match="separation"):
        decorrelated_pairs_mse([traj], 10)
    # random orientation about the right centroid: (|a|^2 + |b|^2) / (3 N) with centred a, b
    pair = np.array([[-1.0, 0, 0], [1.0, 0, 0]])
    assert random_orientation_mse(pair, pair + 5.0) == pytest.approx(4.0 / 6)
    rot = Rotation.random(20000, random_state=0).as_matrix()  # uniform (Haar) rotations
    sampled = np.mean(position_sq_error(pair @ np.swapaxes(rot, -1, -2), np.broadcast_to(pair, (20000, 2, 3))))
    assert sampled == pytest.approx(4.0 / 6, rel=0.03)
