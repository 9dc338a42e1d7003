"""Every error a user can cause prints one line naming the file or key and the fix, with no
traceback, through the CLI and through Snakemake (the real commands, run as a user would)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "configs" / "suites" / "smoke.yaml"


def _run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def _one_line(out, returncode: int, *needles: str) -> str:
    """The command failed with ``returncode`` and printed one non-empty stderr line holding every needle."""
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == returncode, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    assert len(lines) == 1, out.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture
def malformed(tmp_path) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\ndatasets: {lj: [1,\n")
    return path


@pytest.fixture
def unknown_key(tmp_path) -> Path:
    raw = yaml.safe_load(SMOKE.read_text())
    raw["name"] = "typo"
    raw["tasks"]["lj_window"]["paramz"] = raw["tasks"]["lj_window"].pop("params")
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_malformed_suite_yaml_cli(malformed):
    line = _one_line(_run("benchmark.cli", "list", "cells", "--suite", str(malformed)), 2, str(malformed),
                     "not valid YAML at line 3", "fix the syntax")
    assert line.startswith("mdhorizon: config error:")


def test_malformed_suite_yaml_snakemake(malformed, tmp_path):
    out = _run("snakemake", "-n", "--cores", "1", "all", "--config", f"suite={malformed}", f"work_dir={tmp_path}")
    _one_line(out, 2, str(malformed), "not valid YAML")


def test_unknown_suite_key_cli_and_snakemake(unknown_key, tmp_path):
    _one_line(_run("benchmark.cli", "validate", "--suite", str(unknown_key)), 2, str(unknown_key),
              "tasks.lj_window", "paramz")
    out = _run("snakemake", "-n", "--cores", "1", "all", "--config", f"suite={unknown_key}", f"work_dir={tmp_path}")
    _one_line(out, 2, str(unknown_key), "paramz")


def test_unknown_workflow_key_snakemake(tmp_path):
    out = _run("snakemake", "-n", "--cores", "1", "all", "--config", "suite=smoke", "seedz=3", f"work_dir={tmp_path}")
    _one_line(out, 2, "seedz", "valid keys: suite, work_dir")


def test_truncated_trajectory(tmp_path):
    work, results = tmp_path / "work", tmp_path / "results"
    common = ["--suite", "smoke", "--work-dir", str(work), "--results-dir", str(results)]
    made = _run("benchmark.cli", "data", "make", "lj_tiny", "--no-progress", *common)
    assert made.returncode == 0, made.stderr
    positions = work / "data" / "lj_tiny" / "traj_000" / "positions.npy"
    positions.write_bytes(positions.read_bytes()[: positions.stat().st_size // 2])
    out = _run("benchmark.cli", "run", "--task", "lj_window", "--dataset", "lj_tiny", "--method", "static",
               "--seed", "0", *common)
    line = _one_line(out, 1, str(positions), "truncated", "regenerate")
    assert line.startswith("mdhorizon: data error:")
