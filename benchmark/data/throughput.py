"""Measure a dataset kind's generation throughput with a short run of its real generator.

    python -m benchmark.data.throughput KIND [key=value ...] [--frames N]

Runs one trajectory of ``KIND`` with its defaults overridden by the
``key=value`` pairs and ``n_frames = N``, in a temporary directory, and prints
the set-up + equilibration time, the production throughput (frames/s and MD
steps/s, from the progress callbacks) in wall-clock time and in this
process's CPU time (close to one idle core's wall time for the one-thread
generators, and far less sensitive to other jobs sharing the machine), and
the projected CPU time of one trajectory of the kind's (or the given) full
``n_frames``.  The dataset cards
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
    """Progress callback recording wall time and this process's CPU time at every frame."""

    def __init__(self):
        self.times: list[float] = []
        self.cpu: list[float] = []

    def update(self, n: int = 1) -> None:
        self.times.append(time.perf_counter())
        self.cpu.append(time.process_time())


def measure(kind: str, overrides: dict, frames: int, seed: int = 0) -> dict:
    params = resolve_params(kind, overrides)
    full_frames = params["n_frames"]
    params["n_frames"] = frames
    params.setdefault("structure_seed", seed)
    module = importlib.import_module(get_kind(kind).module)
    clock = _Clock()
    with tempfile.TemporaryDirectory() as tmp:
        start, start_cpu = time.perf_counter(), time.process_time()
        module.generate_trajectory(os.path.join(tmp, "traj"), params, 0, seed, clock)
        total = time.perf_counter() - start
    frames_done = len(clock.times) - 1
    fps = frames_done / (clock.times[-1] - clock.times[0])
    fps_cpu = frames_done / (clock.cpu[-1] - clock.cpu[0])
    steps = params.get("steps_per_frame", 1)
    # CPU-time rates are what one idle core would give: on a shared machine the wall-clock
    # rates fall with the load average, the CPU-time rates much less.
    return {"kind": kind, "overrides": overrides, "frames_measured": frames,
            "setup_and_equilibration_wall_s": round(clock.times[0] - start, 2),
            "setup_and_equilibration_cpu_s": round(clock.cpu[0] - start_cpu, 2),
            "frames_per_wall_s": round(fps, 2), "steps_per_wall_s": round(fps * steps, 1),
            "frames_per_cpu_s": round(fps_cpu, 2), "steps_per_cpu_s": round(fps_cpu * steps, 1),
            "measured_total_wall_s": round(total, 1),
            "projected_cpu_s_per_trajectory": round(clock.cpu[0] - start_cpu + full_frames / fps_cpu, 1),
            "n_frames_projected": full_frames, "load_average": [round(x, 2) for x in os.getloadavg()]}


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
