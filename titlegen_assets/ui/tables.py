"""Markdown for Dagster metadata: tables people read in the UI."""

from __future__ import annotations


def markdown_table(header: tuple[str, ...], rows: list[tuple]) -> str:
    """A GitHub-flavoured table; ``|`` inside a cell is replaced by its full-width twin so columns stay aligned."""
    def cell(value) -> str:
        return str(value).replace("|", "｜").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
