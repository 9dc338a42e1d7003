"""Arithmetic on the cost measurements: the speedup over MD, the scaling verdict, and one report
merged from the sections of several."""

from __future__ import annotations

import json

import numpy as np

SPEEDUP_TARGET = 1000.0  # the target for the liquids: predict a 3000-step window >= 1000x faster than MD
SCALING_TARGET = 1.2  # per-atom cost largest/smallest box
SECTIONS = ("methods", "egnn_layer", "speedup", "scaling")


def speedup(md: dict, pred: dict) -> dict:
    """MD seconds for the window (extrapolated from the measured rate) / the method's seconds, CPU and wall."""
    md_cpu = md["window_steps"] / md["steps_per_cpu_s"]
    md_wall = md["window_steps"] / md["steps_per_wall_s"]
    return {"md_cpu_s": md_cpu, "md_wall_s": md_wall,
            "speedup_cpu": md_cpu / pred["cpu_s"] if pred["cpu_s"] > 0 else float("inf"),
            "speedup_wall": md_wall / pred["wall_s"] if pred["wall_s"] > 0 else float("inf")}


def scaling_summary(rows: list[dict], target: float = SCALING_TARGET) -> dict:
    """Per-atom cost (CPU s / atom) per size, ratio largest/smallest box and the verdict.

    ``rows``: [{"n_atoms", "cpu_s"} or {"n_atoms", "error"}] of one method.
    """
    ok = sorted((r for r in rows if "error" not in r), key=lambda r: r["n_atoms"])
    per_atom = {int(r["n_atoms"]): r["cpu_s"] / r["n_atoms"] for r in ok}
    sizes = sorted(int(r["n_atoms"]) for r in rows)
    if len(ok) < 2 or int(ok[-1]["n_atoms"]) != sizes[-1] or int(ok[0]["n_atoms"]) != sizes[0]:
        return {"per_atom_cpu_s": per_atom, "ratio": None, "passes": False,
                "verdict": "incomplete (a size failed)"}
    small, large = ok[0], ok[-1]
    ratio = per_atom[int(large["n_atoms"])] / per_atom[int(small["n_atoms"])]
    # the exponent a of cost ~ atoms^a between smallest and largest box (1 = linear, 2 = all pairs)
    exponent = float(np.log(large["cpu_s"] / small["cpu_s"]) / np.log(large["n_atoms"] / small["n_atoms"]))
    passes = ratio <= target
    return {"per_atom_cpu_s": per_atom, "ratio": ratio, "exponent": exponent, "passes": passes,
            "verdict": f"{'PASS' if passes else 'FAIL'} (target <= {target})"
                       + ("; grows ~quadratically: all-pairs work" if exponent >= 1.5 else "")}


def merge(parts: list[dict]) -> dict:
    """One report from the sections of several (each section from one part; provenance of all)."""
    data = {k: v for k, v in parts[0].items() if k not in SECTIONS}
    prov = dict(parts[0]["provenance"])
    for key in ("command", "git_sha", "date_utc", "load_average_start", "load_average_end"):
        values = [str(p["provenance"].get(key)) for p in parts]
        prov[key] = values[0] if len(set(values)) == 1 else " ; ".join(values)
    for key in ("hardware", "torch", "threads", "suite"):
        if len({json.dumps(p["provenance"].get(key, p.get(key))) for p in parts}) != 1:
            raise ValueError(f"cannot merge reports measured with different {key}")
    data["provenance"], data["parts"] = prov, [p["provenance"] for p in parts]
    for part in parts:
        for key in SECTIONS:
            if key in part:
                if key in data:
                    raise ValueError(f"section {key!r} is in more than one of the merged reports")
                data[key] = part[key]
    return data
