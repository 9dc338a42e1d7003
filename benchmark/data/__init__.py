"""Datasets: the on-disk format (``format``), the registered kinds and their generators."""

from benchmark.data.format import DataError, Dataset, Trajectory, load_trajectory, open_dataset, write_trajectory

__all__ = ["DataError", "Dataset", "Trajectory", "load_trajectory", "open_dataset", "write_trajectory"]
