"""Transitional re-exports: this module's contents moved to :mod:`benchmark.specs` (task specs),
:mod:`benchmark.splits` (split building) and :mod:`benchmark.samples` (sample loading).

Kept so that ``methods/``, the reporting modules and the tests that import from here keep working;
import from the new modules instead, then delete this file.
"""

from benchmark.samples import VELOCITIES, Context, SampleSet, open_parts, remap_bonds, select_atoms
from benchmark.specs import DOMINO_WINDOWS, PARTS, SPECS, ExtrapolateSpec, TaskError, WindowSpec, make_spec
from benchmark.splits import (
    build_extrapolate_split,
    build_split,
    build_window_split,
    draw_offsets,
    load_split,
    regular_offsets,
)

__all__ = ["DOMINO_WINDOWS", "PARTS", "SPECS", "VELOCITIES", "Context", "ExtrapolateSpec", "SampleSet", "TaskError",
           "WindowSpec", "build_extrapolate_split", "build_split", "build_window_split", "draw_offsets",
           "load_split", "make_spec", "open_parts", "regular_offsets", "remap_bonds", "select_atoms"]
