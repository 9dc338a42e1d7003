"""Reporting: every generated table, figure and status text of the board, from ``metrics.csv``.

Entry points: :func:`benchmark.report.leaderboard.write_leaderboard` (``mdhorizon leaderboard``),
:func:`benchmark.report.task_tables.write_tables` (``mdhorizon tables``) and
:func:`benchmark.report.spectrum.write_fig4` (``mdhorizon spectrum``); the module docstring of
:mod:`benchmark.report.leaderboard` lists the package's modules and their jobs.
"""
