"""Markdown for Dagster metadata: tables people read in the UI."""

from __future__ import annotations


def markdown_table(header: tuple[str, ...], rows: list[tuple]) -> str:
    """A GitHub-flavoured table; ``|`` inside a cell is replaced by its full-width twin so columns stay aligned."""
    def cell(value) -> str:
        return str(value).replace("|", "｜").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def interval_cell(value: float, low: float, high: float, sign: str = "") -> str:
    """A score and its interval, 0.412 [0.371, 0.455]; ``sign="+"`` for differences, where the sign is the news."""
    return f"{value:{sign}.3f} [{low:{sign}.3f}, {high:{sign}.3f}]"


def scores_table(summary: dict[str, dict[str, dict[str, float]]]) -> str:
    """System × metric with the interval in each cell, from ``intervals.Bootstrap.summary()``."""
    keys = tuple(next(iter(summary.values())))
    return markdown_table(("system", *keys), [
        (system, *(interval_cell(c["score"], c["low"], c["high"]) for c in row.values())) for system, row in summary.items()
    ])


def differences_table(challenger: str, differences: dict[str, dict[str, dict[str, float]]]) -> str:
    """One row per baseline, "challenger − baseline" per metric with its paired interval, from
    ``intervals.paired_differences``."""
    keys = tuple(next(iter(differences.values())))
    return markdown_table(("paired difference", *keys), [
        (f"{challenger} − {baseline}", *(interval_cell(c["difference"], c["low"], c["high"], "+") for c in row.values()))
        for baseline, row in differences.items()
    ])
