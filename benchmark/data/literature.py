"""Literature values the data report compares a dataset with, each with its citation.

Reference values only (no computation): :func:`references` lists what applies to a dataset of a
given kind and parameters; :mod:`benchmark.data.checks` puts the measured value beside each one.
"""

from __future__ import annotations

# Best published heavy-atom MSE (A^2) of a 3000-frame (1.5 ps) prediction on the real MD17:
# GF-NODE (Table 1), the calibration target of the MD17-xTB stand-ins.
MD17_BEST_PUBLISHED_A2 = {"aspirin": 0.0885, "benzene": 0.409, "ethanol": 0.044, "malonaldehyde": 0.125,
                          "naphthalene": 0.004, "salicylic": 0.0087, "toluene": 0.086, "uracil": 0.0062}
MD17_SOURCE = "best published error on the real MD17 at 3000 frames (GF-NODE, Table 1; Chmiela et al. 2017 data)"
CALIBRATION_HORIZON = 3000  # frames (1.5 ps at 0.5 fs)
CALIBRATION_GOAL = (1.0, 5.0)  # raw static MSE / best published error, the goal of issue "Data v2"

ARGON_LIQUID_DENSITY = ("density_g_cm3", 1.31, "saturated liquid argon at 100 K (NIST Chemistry WebBook; "
                        "Tegeler, Span & Wagner, J. Phys. Chem. Ref. Data 28, 779 (1999))")
ARGON_DIFFUSION = ("diffusion_A2_per_ps", (0.24, 0.35), "self-diffusion of liquid argon at 90-100 K, "
                   "2.4-3.5e-5 cm^2/s (Naghizadeh & Rice, J. Chem. Phys. 36, 2710 (1962))")
LJ_COEXISTENCE = ("coexistence rho* at T* 0.835", (0.72, 0.75), "liquid branch of the 3-sigma shifted "
                  "LJ potential (vapour ~0.01-0.02); rho* 0.50 lies between: two phases")
ONE_PHASE_S_KMIN = ("structure_factor_kmin", 0.5, "a homogeneous liquid has S(k_min) well below 1 "
                    "(one-phase LJ liquid at rho* 0.80: 0.06; a vapour cavity gives 1.4-13)")
WATER = {
    "tip3p_water": [("density_g_cm3", 0.98, "TIP3P at 298 K (Jorgensen et al., J. Chem. Phys. 79, 926 (1983))"),
                    ("diffusion_A2_per_ps", (0.50, 0.60), "TIP3P at 298 K, about 5-6e-5 cm^2/s (Mark & Nilsson, "
                                                          "J. Phys. Chem. A 105, 9954 (2001))")],
    "tip4pew_water": [("density_g_cm3", 0.995, "TIP4P-Ew at 298 K (Horn et al., J. Chem. Phys. 120, 9665 (2004))"),
                      ("diffusion_A2_per_ps", (0.24, 0.24), "TIP4P-Ew at 298 K, 2.4e-5 cm^2/s (Horn et al. 2004)")],
}
# Declared phase of the periodic kinds without a ``phase`` parameter (LJ builds made before the
# parameter existed were all DoMiNO's two-phase state point).
PHASE_BY_KIND = {"tip3p_water": "one_phase_liquid", "tip4pew_water": "one_phase_liquid", "lj_argon": "two_phase"}


def declared_phase(kind: str, params: dict) -> str | None:
    """"one_phase_liquid", "two_phase", or None (not a liquid)."""
    return params.get("phase") or PHASE_BY_KIND.get(kind)


def references(kind: str, params: dict) -> list[tuple[str, object, str]]:
    """(quantity, reference value or (low, high), citation) for a dataset of ``kind`` with ``params``."""
    out: list[tuple[str, object, str]] = []
    if "temperature_K" in params:
        out.append(("temperature_K", float(params["temperature_K"]), "the generator's thermostat target"))
    if kind == "lj_argon":
        if declared_phase(kind, params) == "one_phase_liquid":
            out += [ARGON_LIQUID_DENSITY, ARGON_DIFFUSION, ONE_PHASE_S_KMIN]
        else:
            out.append(LJ_COEXISTENCE)
    out += WATER.get(kind, [])
    molecule = params.get("molecule")
    if kind in ("md17_xtb", "md17") and molecule in MD17_BEST_PUBLISHED_A2:
        out.append((f"static_mse_A2 at {CALIBRATION_HORIZON} frames", MD17_BEST_PUBLISHED_A2[molecule], MD17_SOURCE))
    return out
