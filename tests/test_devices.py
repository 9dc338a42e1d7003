"""GPU job-slot assignment: parallel jobs never share a device (tested with lock files only)."""

import subprocess
import sys

import pytest

from benchmark.devices import acquire_gpu_slot, resolve_device

HOLD = """
import sys, time
from benchmark.devices import acquire_gpu_slot
print(acquire_gpu_slot(sys.argv[1], 2), flush=True)
time.sleep(30)
"""


def test_parallel_jobs_get_distinct_gpus(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        slots = sorted(int(p.stdout.readline()) for p in procs)
        assert slots == [0, 1]
        with pytest.raises(TimeoutError, match="all 2 GPUs are held"):
            acquire_gpu_slot(tmp_path, 2, poll_s=0.05, timeout_s=0.2)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    # a killed job's lock is released by the kernel
    assert acquire_gpu_slot(tmp_path, 2, timeout_s=1) in (0, 1)


def test_auto_is_cpu_without_cuda():
    import torch

    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto") == expected
    assert resolve_device("cpu") == "cpu"
