"""The errors a user can cause, and the one line the command line and the workflow print for them.

Every such error (a suite file or ``--config`` key, a dataset file, task parameters, a download)
derives from :class:`UserError`; its message names the file or key and the fix.  ``mdhorizon``
and the Snakefile print it with :func:`one_line`, without a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """An error in what the user gave: the message names the file or key and the fix."""

    label = "error"
    exit_code = 1


def one_line(exc: UserError) -> str:
    """``mdhorizon: <label>: <message>`` on one line (a multi-line message's lines joined by '; ')."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    for line in lines[1:]:
        text += (" " if text.endswith(":") else "; ") + line
    return f"mdhorizon: {exc.label}: {text}"
