"""The one markdown-table builder of the generated tables and reports."""

from __future__ import annotations

ALIGN = {"l": "---", "r": "---:"}


def md_table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    """The lines of a markdown table: header, rule, one line per row (cells as given).

    ``align``: one letter per column, ``l`` (left, the default) or ``r`` (right)."""
    align = align or "l" * len(header)
    if len(align) != len(header):
        raise ValueError(f"align {align!r} has {len(align)} letters for {len(header)} columns")
    rule = "|" + "".join(ALIGN[a] + "|" for a in align)
    return [_line(header), rule] + [_line(r) for r in rows]


def _line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"
