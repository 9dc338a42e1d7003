"""Measure a dataset kind's generation throughput with a short run of its real generator.

    python -m benchmark.data.throughput KIND [key=value ...] [--frames N]

Runs one trajectory of ``KIND`` with its defaults overridden by the
``key=value`` pairs and ``n_frames = N``, in a temporary directory, and prints
the set-up + equilibration time, the production throughput (frames/s and MD
steps/s, from the progress callbacks) and the projected time of one
trajectory of the kind's (or the given) full ``n_frames``.  The dataset cards
quote these numbers with the command that produced them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import tempfile
import time

from benchmark.data.registry import get_kind, resolve_params


class _Clock:
    def __init__(self):
        self.times: list[float] = []

    def update(self, n: int = 1) -> None:
        self.times.append(time.perf_counter())


def measure(kind: str, overrides: dict, frames: int, seed: int = 0) -> dict:
    params = resolve_params(kind, overrides)
    full_frames = params["n_frames"]
    params["n_frames"] = frames
    params.setdefault("structure_seed", seed)
    module = importlib.import_module(get_kind(kind).module)
    clock = _Clock()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        module.generate_trajectory(os.path.join(tmp, "traj"), params, 0, seed, clock)
        total = time.perf_counter() - start
    production = clock.times[-1] - clock.times[0]
    fps = (len(clock.times) - 1) / production
    steps = params.get("steps_per_frame", 1)
    return {"kind": kind, "overrides": overrides, "frames_measured": frames,
            "setup_and_equilibration_s": round(clock.times[0] - start, 2),
            "frames_per_s": round(fps, 2), "steps_per_s": round(fps * steps, 1),
            "measured_total_s": round(total, 1),
            "projected_s_per_trajectory": round(clock.times[0] - start + full_frames / fps, 1),
            "n_frames_projected": full_frames, "load_average": os.getloadavg()}


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind")
    parser.add_argument("overrides", nargs="*", help="key=value parameter overrides (JSON values)")
    parser.add_argument("--frames", type=int, default=100, help="frames to record in the measurement")
    args = parser.parse_args(argv)
    overrides = {k: _value(v) for k, v in (item.split("=", 1) for item in args.overrides)}
    print(json.dumps(measure(args.kind, overrides, args.frames)), flush=True)


if __name__ == "__main__":
    main()
