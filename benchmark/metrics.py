"""Metrics, in physical units (A^2 for positions).

Every function here has a hand-computed test in ``tests/test_metrics.py``.
Changing a definition means bumping ``benchmark.METRICS_VERSION``.

Position MSE per coordinate: mean over atoms and xyz of (pred - true)^2, with
the displacement taken by minimum image for periodic systems, so that an atom
crossing the box boundary is never counted as an error.
"""

from __future__ import annotations

import numpy as np

from benchmark.graph import minimum_image

# The primary rows of each protocol, headline convention first (the rows every run has, even a failed
# one, so tables can say why a number is missing).
PRIMARY = {"window": [("mse", "mean_over_offsets"), ("mse", "last_offset")],
           "extrapolate": [("mse", "full_domain"), ("mse", "full_domain_normalised")]}
# The same for a task with ``primary: mse_aligned`` (molecules; rows of :func:`aligned_rows`).
PRIMARY_ALIGNED = {"window": [("mse_aligned", "mean_over_offsets"), ("mse_aligned", "last_offset")],
                   "extrapolate": [("mse_aligned", "full_domain"), ("mse_aligned", "all_frames")]}
PRIMARY_METRICS = ("mse", "mse_aligned")  # the values of the task key ``primary``


def primary(task) -> list[tuple[str, str]]:
    """The (metric, convention) pairs of a task's primary metric, the one tables rank on first.

    ``task`` is a :class:`benchmark.suite.TaskEntry`: its ``protocol`` picks the conventions and its
    ``primary`` key the metric: ``mse`` (raw, default) or ``mse_aligned`` (each predicted frame
    superposed on its true frame, heavy atoms; for freely tumbling molecules such as ALA2, where raw
    MSE rewards a collapsed prediction).  Every table, rank, ``skill.csv`` and placeholder row asks here."""
    table = PRIMARY_ALIGNED if getattr(task, "primary", "mse") == "mse_aligned" else PRIMARY
    return table[task.protocol]


def placeholder_rows(task) -> list[dict]:
    """The primary rows of both splits with no value, for a run that failed, diverged or is missing:
    the raw MSE rows always, and the aligned ones too where the task's primary metric is aligned."""
    pairs = PRIMARY[task.protocol] + [p for p in primary(task) if p not in PRIMARY[task.protocol]]
    return [{"split": part, "metric": metric, "convention": convention, "horizon": task.delta_frame,
             "offset": None, "value": None, "unit": "A^2"} for part in ("val", "test") for metric, convention in pairs]


def position_sq_error(pred: np.ndarray, target: np.ndarray, box=None) -> np.ndarray:
    """Squared error per sample and query: [..., N, 3] -> [...] (mean over atoms, xyz).

    A non-finite prediction gives ``inf`` for that sample/query (never silently 0).
    """
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} != target shape {target.shape}")
    delta = minimum_image(pred - target, box)
    err = np.mean(delta ** 2, axis=(-1, -2))
    finite = np.isfinite(pred).all(axis=(-1, -2))
    return np.where(finite, err, np.inf)


def window_rows(err: np.ndarray, offsets: np.ndarray, delta_frame: int) -> list[dict]:
    """Protocol A rows from per-sample, per-query squared errors ``err`` [S, K].

    * ``mse``/``mean_over_offsets``: mean over samples and the K queries (GF-NODE);
    * ``mse``/``last_offset``: mean over samples at the last query (EGNO);
    * ``mse_at_offset``/``slot``: mean over samples for each query slot k = 1..K,
      with the slot's frame offset when it is the same for every sample (regular).
    """
    err = np.asarray(err, dtype=np.float64)
    if err.ndim != 2 or err.shape[0] == 0 or err.shape[1] == 0:
        raise ValueError(f"window errors must be a non-empty [samples, queries] array, got {err.shape}")
    offsets = np.asarray(offsets).reshape(err.shape)
    rows = [
        {"metric": "mse", "convention": "mean_over_offsets", "horizon": delta_frame, "offset": None,
         "value": float(err.mean()), "unit": "A^2"},
        {"metric": "mse", "convention": "last_offset", "horizon": delta_frame, "offset": None,
         "value": float(err[:, -1].mean()), "unit": "A^2"},
    ]
    regular = bool((offsets == offsets[:1]).all())
    for k in range(err.shape[1]):
        rows.append({"metric": "mse_at_offset", "convention": f"slot_{k + 1}", "horizon": delta_frame,
                     "offset": int(offsets[0, k]) if regular else None,
                     "value": float(err[:, k].mean()), "unit": "A^2"})
    return rows


# ---------------------------------------------------------------- protocol B
def first_failure(err: np.ndarray, threshold: float) -> np.ndarray:
    """Per sample, the first offset (1-based frame count) whose error exceeds ``threshold``
    or is not finite; ``K + 1`` when the prediction never fails within the horizon."""
    err = np.asarray(err, dtype=np.float64)
    failed = ~np.isfinite(err) | (err > threshold)
    first = np.argmax(failed, axis=1) + 1
    return np.where(failed.any(axis=1), first, err.shape[1] + 1)


def extrapolate_rows(err: np.ndarray, *, full_domain_offsets, windows, failure_threshold: float,
                     curve_bin: int, norm_range: tuple[float, float] | None) -> list[dict]:
    """Protocol B rows from per-sample, per-frame squared errors ``err`` [S, K] (offsets 1..K).

    * ``mse``/``full_domain``: mean over samples and the seeded random future frames;
    * ``mse_window``/``a-b``: mean over frames a+1..b after the last observed one;
    * ``mse_curve``/``bin``: mean over consecutive bins of ``curve_bin`` frames (offset = bin end);
    * ``time_to_failure``: mean over samples of the first failing frame (K+1 if none),
      ``failed_fraction``: share of samples that failed within the horizon;
    * ``*_normalised``: the same MSEs in DoMiNO's [-1, 1] min-max units
      (scale ``(2 / (max - min))^2`` from the training positions).
    """
    err = np.asarray(err, dtype=np.float64)
    S, K = err.shape
    if S == 0 or K == 0:
        raise ValueError(f"extrapolation errors must be a non-empty [samples, frames] array, got {err.shape}")
    scale = None if norm_range is None else (2.0 / (norm_range[1] - norm_range[0])) ** 2
    rows = []

    def add(metric, convention, value, offset=None, unit="A^2"):
        rows.append({"metric": metric, "convention": convention, "horizon": K, "offset": offset,
                     "value": float(value), "unit": unit})
        if scale is not None and unit == "A^2":
            rows.append({"metric": metric, "convention": convention + "_normalised", "horizon": K,
                         "offset": offset, "value": float(value) * scale, "unit": "normalised^2"})

    fd = np.asarray(full_domain_offsets, dtype=np.int64)
    add("mse", "full_domain", err[:, fd - 1].mean())
    add("mse", "all_frames", err.mean())
    for a, b in windows:
        add("mse_window", f"{a}-{b}", err[:, a:b].mean(), offset=b)
    for start in range(0, K, curve_bin):
        end = min(start + curve_bin, K)
        add("mse_curve", f"bin_{curve_bin}", err[:, start:end].mean(), offset=end)
    first = first_failure(err, failure_threshold)
    add("time_to_failure", f"threshold_{failure_threshold:g}", first.mean(), unit="frames")
    add("failed_fraction", f"threshold_{failure_threshold:g}", (first <= K).mean(), unit="fraction")
    return rows


# ---------------------------------------------------------------- structure
def bond_angle_triples(bonds: np.ndarray) -> np.ndarray:
    """All angles i-j-k (j the vertex) made by two bonds sharing atom j, i < k."""
    neighbours: dict[int, set] = {}
    for i, j in np.asarray(bonds).reshape(-1, 2):
        neighbours.setdefault(int(i), set()).add(int(j))
        neighbours.setdefault(int(j), set()).add(int(i))
    triples = [(i, j, k) for j, nb in sorted(neighbours.items()) for i in sorted(nb) for k in sorted(nb) if i < k]
    return np.array(triples, dtype=np.int64).reshape(-1, 3)


def bond_lengths(x: np.ndarray, bonds: np.ndarray) -> np.ndarray:
    """[..., N, 3] -> [..., n_bonds] distances."""
    return np.linalg.norm(x[..., bonds[:, 0], :] - x[..., bonds[:, 1], :], axis=-1)


def bond_angles_deg(x: np.ndarray, triples: np.ndarray) -> np.ndarray:
    """[..., N, 3] -> [..., n_angles] angle at the middle atom, degrees."""
    a = x[..., triples[:, 0], :] - x[..., triples[:, 1], :]
    b = x[..., triples[:, 2], :] - x[..., triples[:, 1], :]
    cos = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def structure_rows(pred: np.ndarray, target: np.ndarray, bonds: np.ndarray) -> list[dict]:
    """Bond-length MAE (A and %) and bond-angle MAE (degrees and %) of predicted frames
    against the true frames at the same times, over the given bonds and their angles."""
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    rows = []
    if len(bonds):
        lp, lt = bond_lengths(pred, bonds), bond_lengths(target, bonds)
        rows += [{"metric": "bond_length_mae", "convention": "A", "value": float(np.mean(np.abs(lp - lt))),
                  "unit": "A"},
                 {"metric": "bond_length_mae", "convention": "percent",
                  "value": float(np.mean(np.abs(lp - lt) / lt) * 100), "unit": "%"}]
    triples = bond_angle_triples(bonds)
    if len(triples):
        ap, at = bond_angles_deg(pred, triples), bond_angles_deg(target, triples)
        rows += [{"metric": "bond_angle_mae", "convention": "degrees", "value": float(np.mean(np.abs(ap - at))),
                  "unit": "deg"},
                 {"metric": "bond_angle_mae", "convention": "percent",
                  "value": float(np.mean(np.abs(ap - at) / at) * 100), "unit": "%"}]
    return rows


def dihedrals(x: np.ndarray, quads) -> np.ndarray:
    """[F, N, 3] positions (A) -> [F, len(quads)] dihedral angles in radians, with mdtraj."""
    import mdtraj

    traj = mdtraj.Trajectory(np.asarray(x, dtype=np.float32).reshape(-1, x.shape[-2], 3) / 10.0, None)
    return mdtraj.compute_dihedrals(traj, np.asarray(quads, dtype=np.int64), periodic=False)


def ramachandran_kl(phi_psi_ref: np.ndarray, phi_psi_pred: np.ndarray, grid: int = 100,
                    bandwidth: float = 0.1, eps: float = 1e-10) -> float:
    """KL(ref || pred) between kernel density estimates of (phi, psi) on a grid x grid mesh
    over [-pi, pi)^2.

    Binned Gaussian KDE: a 2-D histogram smoothed with a Gaussian of ``bandwidth`` radians
    that wraps around at +-pi (angles are periodic), each density normalised to sum to one,
    ``eps`` added before the logarithm.  Unlike scipy's KDE it is defined for degenerate
    predictions (a single conformation gives a large KL, not an error).
    """
    from scipy.ndimage import gaussian_filter

    sigma_bins = bandwidth / (2 * np.pi / grid)

    def density(points):
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        wrapped = (points + np.pi) % (2 * np.pi) - np.pi
        hist, _, _ = np.histogram2d(wrapped[:, 0], wrapped[:, 1], bins=grid, range=[[-np.pi, np.pi]] * 2)
        d = gaussian_filter(hist, sigma_bins, mode="wrap") + eps
        return d / d.sum()

    p, q = density(phi_psi_ref), density(phi_psi_pred)
    return float(np.sum(p * np.log(p / q)))


def vamp2(features: np.ndarray, lag: int) -> float:
    """VAMP-2 score (deeptime) of a feature time series [T, d] at ``lag`` frames.

    deeptime counts the constant singular function, so a series without any slow
    process scores ~1; a constant series (e.g. a static prediction) scores exactly 1.
    """
    from deeptime.decomposition import VAMP

    features = np.asarray(features, dtype=np.float64)
    if np.all(features.std(axis=0) < 1e-12):
        return 1.0
    model = VAMP(lagtime=lag).fit(features).fetch_model()
    return float(model.score(r=2))


def dihedral_features(angles: np.ndarray) -> np.ndarray:
    """[T, m] angles -> [T, 2m] (sin, cos) features, continuous across +-pi."""
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=-1)


# ---------------------------------------------------------------- liquids
def pair_distances(x: np.ndarray, box, r_max: float) -> np.ndarray:
    """All minimum-image pair distances below ``r_max`` over frames [F, N, 3]."""
    x = np.asarray(x, dtype=np.float64)
    iu = np.triu_indices(x.shape[1], k=1)
    out = []
    for frame in x:
        d = np.linalg.norm(minimum_image(frame[iu[0]] - frame[iu[1]], box), axis=-1)
        out.append(d[d < r_max])
    return np.concatenate(out) if out else np.zeros(0)


def rdf(x: np.ndarray, box, r_max: float, bins: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Radial distribution function g(r) of frames [F, N, 3] in an orthorhombic box."""
    x = np.asarray(x)
    n = x.shape[1]
    d = pair_distances(x, box, r_max)
    hist, edges = np.histogram(d, bins=bins, range=(0.0, r_max))
    r = 0.5 * (edges[1:] + edges[:-1])
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    density = n / float(np.prod(box))
    ideal = shell * density * n / 2.0 * x.shape[0]
    return r, hist / ideal


def rdf_wasserstein(pred: np.ndarray, target: np.ndarray, box, r_max: float) -> float:
    """Wasserstein-1 (A) between the pair-distance distributions (r < r_max) of predicted
    and reference frames: 0 when the predicted liquid structure matches."""
    from scipy.stats import wasserstein_distance

    a, b = pair_distances(pred, box, r_max), pair_distances(target, box, r_max)
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return float(wasserstein_distance(a, b))


# ---------------------------------------------------------------- alignment, validity, ceilings
def kabsch_rotation(mobile: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Proper rotation(s) R [..., 3, 3] minimising sum_i |R m_i - r_i|^2 for centred point sets
    ``mobile`` and ``reference`` [..., N, 3] (Kabsch; a reflection is never returned).
    Apply to row vectors as ``mobile @ R.swapaxes(-1, -2)``."""
    h = np.swapaxes(mobile, -1, -2) @ reference  # [..., 3, 3] = sum_i m_i r_i^T
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.swapaxes(vt, -1, -2) @ np.swapaxes(u, -1, -2)))
    d = np.where(d == 0, 1.0, d)
    fix = np.ones(h.shape[:-2] + (3,))
    fix[..., 2] = d
    return np.swapaxes(vt, -1, -2) @ (fix[..., :, None] * np.swapaxes(u, -1, -2))


def superpose(mobile: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``mobile`` [..., N, 3] moved onto ``reference`` (same shape, or broadcastable) by the optimal
    rotation and translation (unweighted Kabsch), frame by frame."""
    mobile = np.asarray(mobile, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    mc, rc = mobile.mean(axis=-2, keepdims=True), reference.mean(axis=-2, keepdims=True)
    rot = kabsch_rotation(mobile - mc, np.broadcast_to(reference - rc, mobile.shape))
    return (mobile - mc) @ np.swapaxes(rot, -1, -2) + rc


def aligned_sq_error(pred: np.ndarray, target: np.ndarray, atoms=None) -> np.ndarray:
    """Squared error per sample and query [..., N, 3] -> [...] after superposing each predicted frame
    on its true frame (optimal rotation + translation), over ``atoms`` (indices; all if None):
    the error of the predicted shape, blind to where the molecule is and how it is oriented.
    Non-finite predictions give ``inf``."""
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} != target shape {target.shape}")
    if atoms is not None:
        pred, target = pred[..., atoms, :], target[..., atoms, :]
    finite = np.isfinite(pred).all(axis=(-1, -2))
    safe = np.where(finite[..., None, None], pred, target)
    err = np.mean((superpose(safe, target) - target) ** 2, axis=(-1, -2))
    return np.where(finite, err, np.inf)


def aligned_rows(err: np.ndarray, protocol: str, horizon: int, full_domain_offsets=None) -> list[dict]:
    """``mse_aligned`` rows from aligned squared errors [S, K], in the primary conventions of the
    protocol: window: ``mean_over_offsets``, ``last_offset`` and ``mse_aligned_at_offset`` per slot;
    extrapolate: ``full_domain`` and ``all_frames``."""
    err = np.asarray(err, dtype=np.float64)
    row = {"metric": "mse_aligned", "horizon": horizon, "offset": None, "unit": "A^2"}
    if protocol == "window":
        rows = [{**row, "convention": "mean_over_offsets", "value": float(err.mean())},
                {**row, "convention": "last_offset", "value": float(err[:, -1].mean())}]
        rows += [{**row, "metric": "mse_aligned_at_offset", "convention": f"slot_{k + 1}",
                  "value": float(err[:, k].mean())} for k in range(err.shape[1])]
        return rows
    fd = np.asarray(full_domain_offsets, dtype=np.int64)
    return [{**row, "convention": "full_domain", "value": float(err[:, fd - 1].mean())},
            {**row, "convention": "all_frames", "value": float(err.mean())}]


# Validity defaults (task key ``metrics: {validity: {bond_tolerance, min_distance}}``): static-like
# predictions pass (their bond-length error on MD17 / ALA2 is ~0.03 A); a collapsed molecule does not.
BOND_TOLERANCE = 0.1  # A, mean absolute bond-length error of one predicted frame
MIN_DISTANCE = 0.5  # A, closest allowed approach of two atoms


def min_pair_distance(x: np.ndarray) -> np.ndarray:
    """[..., N, 3] -> [...] smallest distance between two distinct atoms (inf for one atom)."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-2] < 2:
        return np.full(x.shape[:-2], np.inf)
    i, j = np.triu_indices(x.shape[-2], k=1)
    return np.linalg.norm(x[..., i, :] - x[..., j, :], axis=-1).min(axis=-1)


def valid_frames(pred: np.ndarray, target: np.ndarray, bonds, bond_tolerance: float = BOND_TOLERANCE,
                 min_distance: float = MIN_DISTANCE) -> np.ndarray:
    """Which predicted frames [..., N, 3] are physically valid (bool [...]): finite, the mean absolute
    bond-length error against the true frame at the same time at most ``bond_tolerance`` A (when the
    dataset has bonds), and no two atoms closer than ``min_distance`` A.  Non-periodic molecules."""
    pred = np.asarray(pred, dtype=np.float64)
    ok = np.isfinite(pred).all(axis=(-1, -2))
    pred = np.where(ok[..., None, None], pred, 0.0)
    bonds = np.asarray(bonds if bonds is not None else [], dtype=np.int64).reshape(-1, 2)
    if len(bonds):
        err = np.abs(bond_lengths(pred, bonds) - bond_lengths(np.asarray(target, np.float64), bonds)).mean(-1)
        ok &= err <= bond_tolerance
    return ok & (min_pair_distance(pred) >= min_distance)


def validity_row(valid: np.ndarray, horizon: int, bond_tolerance: float, min_distance: float) -> dict:
    """The ``valid`` row: the fraction of predicted frames that pass :func:`valid_frames`."""
    return {"metric": "valid", "convention": f"bond_{bond_tolerance:g}A_overlap_{min_distance:g}A",
            "horizon": horizon, "offset": None, "value": float(np.mean(valid)), "unit": "fraction"}


def periodic_ceiling(box) -> float:
    """MSE per coordinate (A^2) between positions that no longer correlate, in an orthorhombic box
    with the minimum image: a displacement uniform on [-L/2, L/2) has variance L^2/12; mean over xyz."""
    box = np.asarray(box, dtype=np.float64)
    return float(np.mean(box ** 2) / 12.0)


def decorrelated_pairs_mse(trajectories, min_separation: int, n_pairs: int = 2000, seed: int = 0,
                           atoms=None) -> float:
    """MSE per coordinate (A^2) between two frames of one trajectory at least ``min_separation`` frames
    apart (``n_pairs`` seeded random pairs over ``trajectories``, each [T, N, 3], e.g. memory maps: only
    the drawn frames are read; ``atoms`` selects atoms): what holding an old frame scores once the
    positions no longer correlate with it.  Raises when no trajectory is long enough."""
    usable = [t for t in trajectories if len(t) > min_separation]
    if not usable:
        raise ValueError(f"no trajectory is longer than the separation of {min_separation} frames")
    rng = np.random.default_rng(seed)
    # weight trajectories by their number of admissible pairs (T - s)(T - s + 1) / 2
    weight = np.array([(len(t) - min_separation) * (len(t) - min_separation + 1) / 2 for t in usable])
    pick = rng.choice(len(usable), size=n_pairs, p=weight / weight.sum())
    total = 0.0
    for k, traj in enumerate(usable):
        m = int((pick == k).sum())
        if m == 0:
            continue
        first = rng.integers(0, len(traj) - min_separation, size=m)
        second = first + min_separation + (rng.random(m) * (len(traj) - min_separation - first)).astype(np.int64)
        a, b = np.asarray(traj[first], np.float64), np.asarray(traj[second], np.float64)
        if atoms is not None:
            a, b = a[:, atoms], b[:, atoms]
        total += float(np.sum(np.mean((b - a) ** 2, axis=(-1, -2))))
    return total / n_pairs


def random_orientation_mse(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Expected MSE per coordinate (A^2), over uniformly random rotations about its centroid, of
    ``pred`` [..., N, 3] placed at the centroid of ``target``: the score of the right shape at the
    right place in a random orientation.  Exact: E[R] = 0 for a uniform rotation, so
    E|R a_i - b_i|^2 = |a_i|^2 + |b_i|^2 with both centred."""
    a = np.asarray(pred, np.float64) - np.mean(pred, axis=-2, keepdims=True)
    b = np.asarray(target, np.float64) - np.mean(target, axis=-2, keepdims=True)
    return (np.sum(a ** 2, axis=(-1, -2)) + np.sum(b ** 2, axis=(-1, -2))) / (3 * a.shape[-2])
