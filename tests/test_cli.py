import subprocess
import sys


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], capture_output=True, text=True)


def test_list_methods_and_datasets():
    out = _cli("list", "methods")
    assert out.returncode == 0
    names = [line.split("\t")[0] for line in out.stdout.splitlines()]
    assert "static" in names and "constant_velocity" in names
    assert all("\t" in line for line in out.stdout.splitlines())  # name <tab> description
    out = _cli("list", "datasets")
    assert "lj_argon" in out.stdout


def test_config_error_exit_code_and_message():
    out = _cli("validate", "--suite", "nonexistent")
    assert out.returncode == 2 and "config key 'suite'" in out.stderr
