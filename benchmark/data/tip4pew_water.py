"""Dataset kind ``tip4pew_water``: 258 rigid TIP4P-Ew waters, 300 K, virtual sites dropped
(see ``benchmark.data.water``)."""

from benchmark.data.water import BASE_DEFAULTS, RESUMABLE, generate_trajectory  # noqa: F401

DEFAULTS = {**BASE_DEFAULTS, "model": "tip4pew"}
