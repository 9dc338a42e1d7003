"""Dataset kind ``tip3p_water``: 258 rigid TIP3P waters, 300 K (see ``benchmark.data.water``)."""

from benchmark.data.water import BASE_DEFAULTS, RESUMABLE, generate_trajectory  # noqa: F401

DEFAULTS = {**BASE_DEFAULTS, "model": "tip3p"}
