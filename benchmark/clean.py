"""Disk housekeeping: everything generated lives under the suite's ``work_dir``.

``work_dir`` layout: ``data/`` (trajectories), ``splits/``, ``models/``
(trained models, Snakemake outputs), ``checkpoints/`` (resumable training
state), ``logs/``.  ``mdhorizon clean`` removes caches (checkpoints, logs by
default; models and splits on request; data only with ``--data``) and never
touches the results directory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

CACHE_KINDS = ("checkpoints", "logs", "models", "splits", "data")
DEFAULT_CLEAN = ("checkpoints", "logs")


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def clean(work_dir: Path, results_dir: Path, kinds=DEFAULT_CLEAN) -> list[tuple[Path, int]]:
    """Delete the given cache kinds under ``work_dir``; returns (path, bytes freed)."""
    work_dir, results_dir = Path(work_dir).resolve(), Path(results_dir).resolve()
    removed = []
    for kind in kinds:
        if kind not in CACHE_KINDS:
            raise ValueError(f"unknown cache kind {kind!r}; valid: {', '.join(CACHE_KINDS)}")
        path = work_dir / kind
        if results_dir == path or results_dir.is_relative_to(path) or path.is_relative_to(results_dir):
            raise ValueError(f"refusing to delete {path}: it overlaps the results directory {results_dir}")
        if path.exists():
            size = directory_size(path)
            shutil.rmtree(path)
            removed.append((path, size))
    return removed
