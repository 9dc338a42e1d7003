"""The ``published`` window-split strategy and its vendored split file.

``md17_egno_splits.json`` holds the MD17 start-frame indices of the EGNO /
GMN / GF-NODE public code (train / val / test = the first 500 / 2000 / 2000
entries of their ``<mol>_split.pkl`` arrays, in file order); its origin and
sha256 are recorded in ``README.md`` here and in :data:`MD17_SPLITS_SHA256`
(``tests/test_splits.py`` checks the file still hashes to it).

The ``published`` strategy keeps exactly those start frames, in file order;
the query offsets are drawn as for every window task (regular, or irregular
from the split seed).  Known flaw, kept on purpose because it is the
published protocol: train and test windows interleave on one trajectory, so
test targets are frames the model was trained on (aspirin has 30,946
train/test pairs closer than 3000 frames).  The leak-free alternative is the
``blocks`` strategy of :mod:`benchmark.splits.window`; the paper suite reports both.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from benchmark.specs import PARTS, TaskError

SPLITS_DIR = Path(__file__).resolve().parent
MD17_SPLITS = SPLITS_DIR / "md17_egno_splits.json"
MD17_SPLITS_SHA256 = "aa4c93acc89d2ac21294cb3c78d55ff92afd1e939f4b07e01dff376108ab9741"


@lru_cache(maxsize=1)
def md17_published_starts() -> dict:
    """{molecule: {"train": [...], "val": [...], "test": [...]}} start-frame indices."""
    return json.loads(MD17_SPLITS.read_text())["molecules"]


def published_ranges(dataset, spec, params: dict) -> dict[str, list[tuple[int, int, int]]]:
    """The published start frames as one-frame ranges ``(trajectory 0, t0, t0)`` per part.

    :func:`benchmark.splits.window.build_window_split` draws ``n_<part>`` distinct starts
    from these ranges; as there are exactly that many, every published start is
    taken once and in file order.  ``params['molecule']`` overrides the molecule
    named in the dataset manifest.  Raises ``TaskError`` when a window would
    leave the trajectory or more starts are requested than were published.
    """
    mol = params.get("molecule") or dataset.info.get("molecule") or dataset.manifest.get("params", {}).get("molecule")
    table = md17_published_starts()
    if mol not in table:
        raise TaskError(f"split 'published': no published split for molecule {mol!r} of dataset "
                        f"{dataset.name}; valid: {', '.join(table)} (set split params.molecule)")
    trajectories = dataset.manifest["trajectories"]
    if len(trajectories) != 1:
        raise TaskError(f"split 'published' needs one MD17 trajectory; {dataset.name} has {len(trajectories)}")
    frames = trajectories[0]["n_frames"]
    ranges = {}
    for part in PARTS:
        n = getattr(spec, f"n_{part}")
        starts = table[mol][part]
        if n > len(starts):
            raise TaskError(f"split 'published': n_{part}={n} but only {len(starts)} {part} starts were "
                            f"published for {mol}")
        starts = starts[:n]
        low, high = min(starts), max(starts)
        if low - (spec.observed - 1) < 0 or high + spec.delta_frame >= frames:
            raise TaskError(f"split 'published': {mol} {part} starts span frames {low}..{high}, so windows of "
                            f"delta_frame={spec.delta_frame} (observed={spec.observed}) need frames "
                            f"{low - spec.observed + 1}..{high + spec.delta_frame}, but {dataset.name} has "
                            f"{frames} frames; use the full published file")
        ranges[part] = [(0, int(t), int(t)) for t in starts]
    return ranges
