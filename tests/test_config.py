import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from benchmark.config import SUITES_DIR, Cell, ConfigError, check_workflow_config, load_suite
from benchmark.specs import ExtrapolateSpec, WindowSpec

ROOT = Path(__file__).resolve().parent.parent


def _suite(tmp_path, edit):
    raw = yaml.safe_load((SUITES_DIR / "smoke.yaml").read_text())
    edit(raw)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_shipped_suites_are_valid():
    for path in sorted(SUITES_DIR.glob("*.yaml")):
        suite = load_suite(str(path))
        assert suite.cells, path


@pytest.mark.parametrize("edit,match", [
    (lambda r: r["methods"].update(statik=None),
     r"methods\.statik: unknown 'statik'; valid: constant_velocity.*static"),
    (lambda r: r.update(sedes=[0]), r"\(top level\): Additional properties.*'sedes'.*allowed keys"),
    (lambda r: r.update(seeds=[-1]), r"seeds\.0: -1 is less than the minimum of 0"),
    (lambda r: r["datasets"]["lj_tiny"].update(kind="lj_argonn"), r"datasets\.lj_tiny\.kind: unknown 'lj_argonn'"),
    (lambda r: r["datasets"]["lj_tiny"]["params"].update(n_particle=3), r"datasets\.lj_tiny\.params.*n_particle"),
    (lambda r: r["tasks"]["lj_window"]["params"].update(delta_frame=-4),
     r"tasks\.lj_window\.params: delta_frame must be >= 1, got -4"),
    (lambda r: r["tasks"]["lj_window"]["params"].update(delta_frame=500),
     r"delta_frame: 500.*does not fit.*120 frames"),
    (lambda r: r["tasks"]["lj_window"]["params"].update(num_queries=50), r"num_queries must be in 1..delta_frame=40"),
    (lambda r: r["tasks"]["lj_window"].update(datasets=["nope"]), r"tasks\.lj_window\.datasets\[0\]: unknown 'nope'"),
    (lambda r: r["tasks"]["lj_window"].update(protocol="windw"),
     r"tasks\.lj_window\.protocol: 'windw' is not allowed; valid"),
    (lambda r: r["methods"].update(static={"params": {"lr": 1}}),
     r"methods\.static\.params: method 'static' has no parameter"),
    (lambda r: r["methods"].update(a={"method": "ito"}, b={"method": "ito", "params": {"hidden": 8, "mode": "rollout"},
                                                       "shares_training_with": "a"}),
     r"methods\.b\.shares_training_with: params \['hidden'\] differ from 'a'; only \[.*'mode'"),
    (lambda r: r["methods"].update(b={"method": "ito", "shares_training_with": "static"}),
     r"methods\.b\.shares_training_with: 'static' is method 'static', not 'ito'"),
    (lambda r: r["methods"].update(b={"method": "ito", "shares_training_with": "nope"}),
     r"methods\.b\.shares_training_with: unknown 'nope'"),
])
def test_bad_configs_name_the_key(tmp_path, edit, match):
    with pytest.raises(ConfigError, match=match):
        load_suite(_suite(tmp_path, edit))


def test_unknown_suite_and_workflow_keys():
    with pytest.raises(ConfigError, match="unknown 'smok'; valid: .*smoke"):
        load_suite("smok")
    with pytest.raises(ConfigError, match=r"unknown workflow config key\(s\) \['suit'\]"):
        check_workflow_config({"suit": "smoke"})
    with pytest.raises(ConfigError, match="config key 'methods': unknown 'egn'"):
        load_suite("smoke", methods="static,egn")


def test_default_results_dirs():
    assert str(load_suite("default").results_dir) == "results"
    assert str(load_suite("smoke").results_dir) == "results/smoke"



def test_task_optimiser_overrides_trained_methods_only(tmp_path):
    """A task's ``optimiser`` settings reach the torch methods of that task (and their config
    hash), not the closed-form baselines, not other tasks; unknown keys name the key."""
    suite = load_suite("default")
    assert suite.tasks["ala2_window"].optimiser == {"grad_clip": 1.0}
    assert suite.method_entry("egnn", "ala2_window").params["grad_clip"] == 1.0
    assert suite.method_entry("egnn", "ala2_window").params["lr"] == 5e-4  # the entry's own, kept
    assert "grad_clip" not in suite.method_entry("egnn", "md17_irregular").params
    assert "grad_clip" not in suite.method_entry("egnn").params
    assert "grad_clip" not in suite.method_entry("static", "ala2_window").params
    raw = yaml.safe_load((SUITES_DIR / "default.yaml").read_text())
    del raw["tasks"]["ala2_window"]["optimiser"]
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump(raw))
    plain = load_suite(str(tmp_path / "plain.yaml"))
    cell = Cell("ala2_window", "ala2_sim", "egnn", 0)
    assert suite.config_hash(cell) != plain.config_hash(cell)
    other = Cell("md17_irregular", "md17xtb_benzene", "egnn", 0)
    assert suite.config_hash(other) == plain.config_hash(other)
    raw["tasks"]["ala2_window"]["velocities"] = "instantaneous"
    (tmp_path / "bad_v.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="velocities"):
        load_suite(str(tmp_path / "bad_v.yaml"))
    raw["tasks"]["ala2_window"]["velocities"] = "difference"
    raw["tasks"]["ala2_window"]["optimiser"] = {"momentum": 0.9}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="optimiser"):
        load_suite(str(tmp_path / "bad.yaml"))


def test_dataset_params_override_on_their_dataset_only(tmp_path):
    """``dataset_params`` reach that dataset's cells (and their config hash) and no other; an
    unknown dataset or param names its key; a shared-training entry must agree on them."""
    suite = load_suite("default")
    water = suite.method_entry("ito_1step", "domino_extrapolate", "tip3p_water").params
    lj = suite.method_entry("ito_1step", "domino_extrapolate", "lj_argon").params
    assert (water["pairs_per_epoch"], lj["pairs_per_epoch"]) == (64, 512)
    assert suite.method_entry("ito_rollout", "domino_extrapolate", "tip4pew_water").params["mode"] == "rollout"
    assert "dataset_params" not in suite.method_entry("ito_1step", "domino_extrapolate", "lj_argon").hashed
    raw = yaml.safe_load((SUITES_DIR / "default.yaml").read_text())
    for entry in ("ito_1step", "ito_rollout"):
        del raw["methods"][entry]["dataset_params"]
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump(raw))
    plain = load_suite(str(tmp_path / "plain.yaml"))
    for ds, same in (("lj_argon", True), ("tip3p_water", False)):
        cell = Cell("domino_extrapolate", ds, "ito_1step", 0)
        assert (suite.config_hash(cell) == plain.config_hash(cell)) is same
    for edit, match in (({"nowhere": {"batch_size": 2}}, r"dataset_params\.nowhere: unknown 'nowhere'"),
                        ({"lj_argon": {"bogus": 1}}, r"dataset_params\.lj_argon: .*bogus")):
        raw["methods"]["ito_1step"]["dataset_params"] = edit
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
        with pytest.raises(ConfigError, match=match):
            load_suite(str(tmp_path / "bad.yaml"))
    raw["methods"]["ito_1step"]["dataset_params"] = {"lj_argon": {"batch_size": 2}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"ito_rollout\.shares_training_with: params \['batch_size'\] .* on lj_argon"):
        load_suite(str(tmp_path / "bad.yaml"))


# Committed run files of the published board (results/runs/) and the config hash each recorded: the
# suite model must reproduce them exactly (a changed hash would mark every committed run stale).
COMMITTED_RUNS = [
    "results/runs/lj_window/lj_argon/egnn/seed0.json",
    "results/runs/ala2_window/ala2_sim/egnn/seed1.json",  # a task optimiser over a trained method
    "results/runs/domino_extrapolate/tip3p_water/ito_1step/seed0.json",  # dataset_params
    "results/runs/domino_extrapolate/lj_argon/ito_rollout/seed0.json",  # shares_training_with
    "results/runs/md17_irregular/md17xtb_benzene/static/seed2.json",  # a seed-independent baseline
]


@pytest.mark.parametrize("run_file", COMMITTED_RUNS)
def test_config_hash_of_committed_runs_unchanged(run_file):
    run = json.loads((ROOT / run_file).read_text())
    suite = load_suite(run["suite"])
    cell = Cell(run["task"], run["dataset"], run["variant"], run["seed"])
    assert cell in suite.cells
    assert suite.config_hash(cell) == run["config_hash"]


def test_suite_model_is_typed_and_frozen():
    """The suite is built once: typed entries (the task's checked spec, a dataset's resolved params),
    nothing to assign afterwards, and the paths of a cell from one layout."""
    suite = load_suite("smoke", work_dir="w", results_dir="r")
    window, extrapolate = suite.tasks["lj_window"], suite.tasks["lj_extrapolate"]
    assert isinstance(window.spec, WindowSpec) and window.delta_frame == 40
    assert isinstance(extrapolate.spec, ExtrapolateSpec) and extrapolate.delta_frame == 80
    assert window.split.strategy == "by_trajectory" and window.methods[:2] == ("static", "constant_velocity")
    assert window.graph == {"kind": "none"} and window.atoms == "all" and window.velocities == "stored"
    lj = suite.datasets["lj_tiny"]
    assert lj.params["n_particles"] == 64 and "temperature_K" in lj.params  # the kind's default filled in
    assert "temperature_K" not in lj.overrides
    assert suite.methods["static"].method == "static" and not suite.methods["static"].seed_dependent
    with pytest.raises(dataclasses.FrozenInstanceError):
        suite.name = "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        window.protocol = "extrapolate"
    cell = suite.cells[0]
    assert suite.run_path(cell) == Path("r/runs") / cell.task / cell.dataset / cell.variant / f"seed{cell.seed}.json"
    assert suite.model_path(cell) == suite.layout.model(cell.task, cell.dataset, cell.variant, cell.seed)
    assert str(suite.layout.model("{task}", "{dataset}", "{variant}", "{seed}")) == \
        "w/models/smoke/{task}/{dataset}/{variant}/seed{seed}.pt"


def test_hash_ignores_description_and_method_list(tmp_path):
    """A task's description, method list and table tags do not change a cell's config hash; its params do."""
    suite = load_suite("smoke")
    cell = Cell("lj_window", "lj_tiny", "static", 0)

    def edited(edit):
        return load_suite(_suite(tmp_path, edit)).config_hash(cell)

    assert edited(lambda raw: raw["tasks"]["lj_window"].update(description="edited", tables=["leakage"],
                                                               methods=["static"])) == suite.config_hash(cell)
    assert edited(lambda raw: raw["tasks"]["lj_window"]["params"].update(n_test=11)) != suite.config_hash(cell)
