"""Does this machine simulate LJ argon to the same bytes as the board's machines? A 30-second check.

    python -m benchmark.data.portability [--frames 300] [--variants]

Builds one short ``lj_argon`` trajectory (258 atoms, the default Reference
platform, dataset seed 0) in a temporary directory and compares its checksum
with the one recorded in :data:`RECORDED` for this OpenMM version, so a
machine of another processor kind learns in seconds, not after the 40-minute
full build, whether it regenerates the board's build.  ``--variants`` repeats
the build in subprocesses with the numerical libraries forced onto other code
paths (OpenBLAS kernels, numpy without AVX-512, glibc without FMA/AVX2), which
is how the Reference path was shown to be independent of everything but
glibc's FMA choice (the module docstring of ``benchmark/data/lj.py``).
Exit status 1 when the checksum differs from the recorded one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

# (OpenMM version, frames) -> the first 16 hex digits of the dataset checksum, measured with
# `python -m benchmark.data.portability --frames N` (AMD EPYC, 2026-12-06: the drift-free generator,
# centre-of-mass momentum zeroed and CMMotionRemover; the 2026-12-03 generator gave 640081ac099c77a8
# and 840fda29ad136302).
RECORDED = {("8.6.1", 5): "ab769fe8ae80bf33", ("8.6.1", 300): "d57d44e265d44897"}

VARIANTS = {
    "default": {},
    "OpenBLAS Prescott kernels": {"OPENBLAS_CORETYPE": "Prescott"},
    "OpenBLAS Haswell kernels": {"OPENBLAS_CORETYPE": "Haswell"},
    "OpenBLAS SkylakeX kernels": {"OPENBLAS_CORETYPE": "SkylakeX"},
    "numpy without AVX-512": {"NPY_DISABLE_CPU_FEATURES": "AVX512F,AVX512CD,AVX512_SKX,AVX512_CLX,AVX512_CNL,"
                                                          "AVX512_ICL,AVX512_SPR"},
    "glibc without FMA/AVX2 (expected to differ)": {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F,-AVX2,-FMA"},
}


def build_checksum(frames: int, platform: str = "Reference") -> str:
    from benchmark.data.registry import make_dataset

    with tempfile.TemporaryDirectory() as tmp:
        ds = make_dataset(os.path.join(tmp, "lj"), "lj_portability", "lj_argon",
                          {"n_frames": frames, "n_trajectories": 1, "platform": platform}, seed=0, progress=False)
        return ds.checksum[:16]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--variants", action="store_true", help="also rebuild under other library code paths")
    ap.add_argument("--platform", default="Reference", help=argparse.SUPPRESS)  # used by --variants children
    ap.add_argument("--checksum-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.checksum_only:
        print(build_checksum(args.frames, args.platform))
        return 0
    import openmm

    from benchmark.io import hardware_string

    mine = build_checksum(args.frames, args.platform)
    recorded = RECORDED.get((openmm.__version__, args.frames))
    print(f"{hardware_string('cpu')}, OpenMM {openmm.__version__}: lj_argon, {args.frames} frames -> {mine}")
    if args.variants:
        for name, env in VARIANTS.items():
            out = subprocess.run([sys.executable, "-m", "benchmark.data.portability", "--checksum-only",
                                  "--frames", str(args.frames), "--platform", args.platform],
                                 env={**os.environ, **env}, capture_output=True, text=True, check=True)
            print(f"  {name:45s} {out.stdout.strip()}")
    if recorded is None:
        print(f"no checksum recorded for OpenMM {openmm.__version__} and {args.frames} frames: nothing to compare")
        return 0
    same = mine == recorded
    print(f"recorded {recorded}: {'the same' if same else 'DIFFERENT'} - this machine "
          f"{'regenerates' if same else 'does not regenerate'} the Reference-platform LJ builds "
          "of the recording machine")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
