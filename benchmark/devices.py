"""Device selection for every method: ``auto`` = CUDA when present, else CPU.

Snakemake does not assign GPU ids to local jobs.  On a machine with several
GPUs each training/evaluation process takes one GPU for its lifetime through
an exclusive lock file ``<work>/locks/gpu<i>.lock`` (``fcntl.flock``: released
by the kernel when the process ends, even on SIGKILL), so parallel jobs never
share a device.  Throttle the number of GPU jobs with ``--resources gpu=N``.
Under SLURM, ``CUDA_VISIBLE_DEVICES`` already narrows each job to its GPUs.

:func:`tune_malloc` sets the process's glibc allocator for large CPU tensors.
"""

from __future__ import annotations

import fcntl
import time
from pathlib import Path

_HELD: list = []  # open lock files, kept for the life of the process


def acquire_gpu_slot(lock_dir: str | Path, n_gpus: int, poll_s: float = 2.0, timeout_s: float | None = None) -> int:
    """Index of a GPU no other process of this work dir holds; waits while all are taken."""
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    while True:
        for i in range(n_gpus):
            handle = open(lock_dir / f"gpu{i}.lock", "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            _HELD.append(handle)
            return i
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise TimeoutError(f"all {n_gpus} GPUs are held by other jobs (locks in {lock_dir}); "
                               f"limit parallel GPU jobs with --resources gpu={n_gpus}")
        time.sleep(poll_s)


def resolve_device(device: str = "auto", lock_dir: str | Path | None = None) -> str:
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        n = torch.cuda.device_count()
        return f"cuda:{acquire_gpu_slot(lock_dir, n)}" if (n > 1 and lock_dir is not None) else "cuda:0"
    return device


def tune_malloc() -> bool:
    """Process setting: keep freed memory in glibc's heap instead of returning it to the OS (True if applied).

    glibc serves large allocations with fresh mmap pages and unmaps them on
    free, so every large activation tensor page-faults on first touch.  With
    mmap disabled and trimming off, freed blocks are reused: the EGNN on the
    21-atom case of ``python -m benchmark.perf`` went from 30 to 16 CPU
    seconds per epoch (about the effect of preloading tcmalloc, which the
    Makefile does when it is installed).  Peak memory is about unchanged; freed memory stays with this
    process for reuse.  No-op where glibc's ``mallopt`` is missing.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2 ** 30))
