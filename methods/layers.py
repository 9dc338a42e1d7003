"""Old import path of names the harness's performance and spectrum modules still use; the layers
live in :mod:`methods.nn` and the allocator setting in :mod:`benchmark.devices`.  Remove this module
once ``benchmark/perf.py``, ``benchmark/perf_report.py`` and ``benchmark/spectrum.py`` import from there.
"""

from benchmark.devices import tune_malloc
from methods.nn.laplacian import adjacency
from methods.nn.model import GraphModel

__all__ = ["GraphModel", "adjacency", "tune_malloc"]
