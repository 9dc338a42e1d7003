"""The predictability horizon (benchmark/report/horizon.py) on per-window errors with a known answer,
the ladder's config errors, and the ladder end to end in the smoke workflow."""

from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from benchmark.config import ConfigError, load_suite
from benchmark.io import read_json
from benchmark.report.horizon import system_ladder
from benchmark.specs import TaskError, default_rungs
from benchmark.stats import bootstrap_skill, encode_rows, read_ladder_errors

RUNGS = [1, 3, 10, 30]
FRAME_PS = 0.1
N_TRAJ, PER_TRAJ = 3, 20
TRAJ = np.repeat(np.arange(N_TRAJ), PER_TRAJ)
T0 = np.tile(np.arange(PER_TRAJ) * 50, N_TRAJ)


def run(errors, valid=None, ceiling=None) -> dict:
    """A run file with ladder errors [windows, rungs] and optional ``valid``/``ceiling`` test rows."""
    rows = [{"split": "test", "metric": m, "value": v} for m, v in (("valid", valid), ("ceiling", ceiling))
            if v is not None]
    art = {"metric": "mse", "convention": "per_rung", "rungs": " ".join(map(str, RUNGS)), "frame_ps": FRAME_PS,
           "traj": " ".join(map(str, TRAJ)), "t0": " ".join(map(str, T0)), "mse": encode_rows(errors)}
    return {"rows": rows, "artifacts": {"ladder_errors": art}}


@pytest.fixture(scope="module")
def static():
    """Static's errors: growing with the rung (1, 1.7, 3.2, 5.5 on average), spread over windows."""
    rng = np.random.default_rng(0)
    return np.sqrt(np.array(RUNGS, dtype=float))[None] * rng.uniform(0.5, 1.5, size=(len(TRAJ), 1))


def ladder(runs, **kw):
    return system_ladder("task", "data", runs, n_boot=400, **kw)


def test_half_error_up_to_a_rung_has_that_horizon(static):
    better = static.copy()
    better[:, :3] *= 0.5  # half the baseline's error up to rung 10, equal beyond
    system = ladder({"static": [run(static)], "good": [run(better)]})
    good = system.methods["good"]
    assert good.horizon_ps == pytest.approx(10 * FRAME_PS)
    assert good.interval_ps == pytest.approx((1.0, 1.0))  # every draw: skill 0.5 to rung 10, exactly 0 at 30
    assert good.value[:3] == pytest.approx([0.5] * 3, abs=2e-3) and good.value[3] == pytest.approx(0.0, abs=1e-9)
    assert system.rungs_ps == pytest.approx([0.1, 0.3, 1.0, 3.0])
    assert system.methods["static"].horizon_ps is None  # the baseline itself: no skill


def test_static_plus_tiny_noise_has_no_horizon(static):
    noisy = static * (1 + 0.01 * np.random.default_rng(1).standard_normal(static.shape))
    m = ladder({"static": [run(static)], "noisy": [run(noisy), run(noisy[::-1].copy())]}).methods["noisy"]
    assert m.horizon_ps is None
    assert all(lo < 0 < hi for lo, hi in zip(m.low, m.high))


def test_best_baseline_per_rung(static):
    """Constant velocity beats static at the first rung only: it is the reference there."""
    cv = static * np.array([0.5, 2, 4, 8])
    better = static * np.array([0.4, 0.5, 0.5, 0.5])
    system = ladder({"static": [run(static)], "constant_velocity": [run(cv)], "m": [run(better)]})
    assert system.baseline == ["constant_velocity", "static", "static", "static"]
    assert system.methods["m"].value[0] == pytest.approx(0.2, abs=2e-3)
    assert system.methods["m"].horizon_ps == pytest.approx(3.0)


def test_saturated_rung_stops_the_horizon(static):
    better = static * 0.5  # half the error at every rung
    ceiling = float(static[:, 2].mean()) * 1.02  # static at rung 10 within 5 % of the ceiling, at 3 not
    system = ladder({"static": [run(static, ceiling=ceiling)], "m": [run(better, ceiling=ceiling)]})
    assert system.saturated == [False, False, True, True]
    assert system.methods["m"].horizon_ps == pytest.approx(3 * FRAME_PS)
    assert system.methods["m"].interval_ps == pytest.approx((0.3, 0.3))
    # the ceiling drawn as the skill of a prediction at the ceiling: 1 - ceiling / MSE(baseline)
    assert system.ceiling_skill[2] == pytest.approx(-0.02, abs=2e-3)


def test_invalid_cell_has_no_horizon(static):
    m = ladder({"static": [run(static, valid=1.0)], "collapsed": [run(static * 0.5, valid=0.2)]}).methods["collapsed"]
    assert m.status == "invalid" and m.horizon_ps is None


def test_old_runs_and_single_trajectory_without_block(static):
    assert ladder({"static": [{"rows": []}], "m": [{"rows": []}]}) is None  # no ladder errors: no system
    system = ladder({"static": [run(static)], "m": [{"rows": []}]})
    assert system.methods["m"].status.startswith("no ladder errors")


def test_interval_is_the_stats_bootstrap(static):
    """The rung's interval comes from the same draws as benchmark.stats.bootstrap_skill."""
    errs = [static * (0.7 + 0.1 * s) for s in range(2)]
    m = system_ladder("t", "d", {"static": [run(static)], "m": [run(e) for e in errs]}, n_boot=300).methods["m"]
    decoded = [read_ladder_errors(run(e))["mse"] for e in errs]
    base = read_ladder_errors(run(static))["mse"]
    for k in range(len(RUNGS)):
        ref = bootstrap_skill(np.stack([d[:, k] for d in decoded]), base[:, k], TRAJ, T0, n_boot=300)
        assert (m.low[k], m.high[k]) == pytest.approx((ref.low, ref.high), abs=1e-9)


def test_default_rungs():
    assert default_rungs(40) == (1, 3, 10, 30, 40)
    assert default_rungs(3000) == (1, 3, 10, 30, 100, 300, 1000, 3000)
    assert default_rungs(1) == (1,)


# ---------------------------------------------------------------- config errors name the task
def _smoke_with(tmp_path, task: str, **keys):
    raw = yaml.safe_load(open(load_suite("smoke").path))
    raw["tasks"][task].update(keys)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


@pytest.mark.parametrize("task,keys,match", [
    ("lj_window", {"ladder": {"rungs": [1, 10, 50]}},
     r"tasks\.lj_window\.ladder\.rungs: rung 50 exceeds .*delta_frame=40"),
    ("lj_extrapolate", {"ladder": {"rungs": [1, 100]}}, r"tasks\.lj_extrapolate\.ladder\.rungs: rung 100 .*horizon=80"),
    ("lj_window", {"ladder": {"rungs": [10, 3]}}, r"tasks\.lj_window\.ladder\.rungs: .*strictly increasing"),
    ("lj_window", {"block_frames": 81}, r"tasks\.lj_window\.block_frames: a block of 81 frames is not shorter than "
                                        r"the 80 frames"),
])
def test_bad_ladder_or_block_is_a_config_error_naming_the_task(tmp_path, task, keys, match):
    with pytest.raises(ConfigError, match=match):
        load_suite(_smoke_with(tmp_path, task, **keys))


def test_ladder_and_block_keys_resolve(tmp_path):
    suite = load_suite(_smoke_with(tmp_path, "lj_window", block_frames=20))
    assert suite.tasks["lj_window"].ladder == (1, 2, 5, 10, 20, 40)  # the smoke suite's own
    assert suite.tasks["lj_window"].block_frames == 20
    del_ladder = yaml.safe_load(open(load_suite("smoke").path))
    del del_ladder["tasks"]["lj_window"]["ladder"]
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump(del_ladder))
    assert load_suite(str(tmp_path / "plain.yaml")).tasks["lj_window"].ladder == (1, 3, 10, 30, 40)


def test_block_longer_than_the_single_test_trajectory_fails_the_split(tmp_path):
    from benchmark.runner import check_block

    entry = load_suite(_smoke_with(tmp_path, "lj_window", block_frames=30)).tasks["lj_window"]
    check_block(entry, "lj_tiny", {"traj": [0, 1], "t0": [0, 5]})  # two trajectories: no blocks
    check_block(entry, "lj_tiny", {"traj": [2, 2, 2], "t0": [0, 20, 40]})  # span 41 frames > 30
    with pytest.raises(TaskError, match=r"tasks\.lj_window\.block_frames: a block of 30 frames .* 21 frames"):
        check_block(entry, "lj_tiny", {"traj": [2, 2], "t0": [0, 20]})


# ---------------------------------------------------------------- end to end
@pytest.mark.slow
def test_smoke_workflow_ladder(smoke_run):
    """Every smoke run file carries ladder errors at the task's rungs, on the same windows for every
    method of a system; the generated table lists every smoke method with a horizon or `none`."""
    results = smoke_run
    suite = load_suite("smoke")
    for task, entry in suite.tasks.items():
        windows = None
        for path in sorted((results / "runs" / task).glob("*/*/seed*.json")):
            lad = read_ladder_errors(read_json(path))
            assert lad is not None, path
            assert lad["rungs"].tolist() == list(entry.ladder) and lad["frame_ps"] == pytest.approx(0.02)
            assert lad["mse"].shape == (len(lad["t0"]), len(entry.ladder)) and np.isfinite(lad["mse"]).all()
            key = (lad["traj"].tolist(), lad["t0"].tolist())
            assert windows in (None, key), path
            windows = key
    md = (results / "tables" / "predictability_horizon.md").read_text()
    summary = next(line for line in md.splitlines() if line.startswith("| system |"))
    for variant in suite.methods:
        assert f" {variant} |" in summary, variant
    def cells(task):
        row = next(line for line in md.splitlines() if line.startswith(f"| {task} / lj_tiny |"))
        return dict(zip(summary.strip("| ").split(" | ")[1:], (c.strip() for c in row.strip("|").split("|")[1:])))

    window = cells("lj_window")  # one test trajectory, block_frames 10: the block bootstrap
    for variant in suite.task_methods("lj_window"):
        assert window[variant].split(" [")[0] == "none" or float(window[variant].split(" [")[0]) > 0, window
    # protocol B with one test trajectory is one test window: no interval, said so
    assert {cells("lj_extrapolate")[v] for v in suite.task_methods("lj_extrapolate")} == {"no interval"}
    assert "lj_extrapolate / lj_tiny: No interval: a single test window" in md
    assert (results / "plots" / "skill_vs_horizon.png").exists()


# ---------------------------------------------------------------- evaluation at the rungs
def test_ladder_errors_of_both_protocols(chain_dataset):
    """Protocol A: the test windows' start frames queried at the rungs (static: |x(t0+r) - x(t0)|^2 per
    coordinate); protocol B: the rungs' columns of the predicted segment's errors, nothing predicted."""
    from conftest import SPEC

    from benchmark.evaluation import evaluate_part, ladder_errors_artifact
    from benchmark.samples import open_parts
    from benchmark.splits import build_window_split
    from methods import make_method

    split = build_window_split(chain_dataset, SPEC, "by_trajectory", {}, seed=0)
    test = open_parts(chain_dataset, split, {"kind": "none"})["test"]
    rungs = (1, 4, 16)
    _, _, artifacts, _ = evaluate_part(make_method("static"), test, split, {}, 4, ladder=rungs)
    got = read_ladder_errors({"artifacts": artifacts})
    assert got["rungs"].tolist() == list(rungs) and got["frame_ps"] == pytest.approx(0.0005)
    assert got["traj"].tolist() == test.traj_idx.tolist() and got["t0"].tolist() == test.t0.tolist()
    for s, (i, t0) in enumerate(zip(test.traj_idx, test.t0)):
        pos = np.asarray(chain_dataset.trajectory(int(i)).positions, dtype=np.float64)
        want = [((pos[t0 + r] - pos[t0]) ** 2).mean() for r in rungs]
        assert got["mse"][s] == pytest.approx(want, rel=5e-3, abs=1e-9)  # stored to 3 significant digits
    err = np.arange(2 * 80, dtype=float).reshape(2, 80)  # protocol B: [test trajectories, horizon]
    segments = SimpleNamespace(traj_idx=np.array([3, 4]), t0=np.array([39, 39]), dt_fs=20.0)
    art = ladder_errors_artifact(None, segments, {"protocol": "extrapolate"}, err, [1, 10, 80], 4)
    got = read_ladder_errors({"artifacts": {"ladder_errors": art}})
    assert got["mse"].tolist() == [[0, 9, 79], [80, 89, 159]] and got["traj"].tolist() == [3, 4]
    assert got["frame_ps"] == 0.02
