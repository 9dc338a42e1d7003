"""mdhorizon: a reproducible benchmark for long-horizon molecular-dynamics prediction.

The harness lives here (data, tasks, metrics, training, aggregation, CLI);
the methods live in the sibling package ``methods`` (one module per method).
"""

__version__ = "0.1.0"

# Bumped whenever a metric's definition changes; stamped into every result row.
# 2: Ramachandran KL as a periodic binned KDE; 3: box-edge normalisation for periodic systems;
# 4: evaluation v2: `ceiling`, `mse_aligned` and `valid` rows and per-window test errors
#    (`artifacts.window_errors`) behind skill.csv's bootstrap intervals; the primary MSE is unchanged.
METRICS_VERSION = "4"
