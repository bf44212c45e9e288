"""Pictures for the Dagster UI: small PNGs saved beside the artifacts and embedded in markdown metadata."""

from __future__ import annotations

import base64
from pathlib import Path


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def histograms_png(series: dict[str, list[float]], path: Path, title: str, xlabel: str) -> Path:
    """One histogram panel per named series (e.g. content and title lengths), side by side."""
    plt = _figure()
    fig, axes = plt.subplots(1, len(series), figsize=(4.2 * len(series), 3), squeeze=False)
    for ax, (name, values) in zip(axes[0], series.items()):
        ax.hist(values, bins=20, color="#4C72B0", edgecolor="white")
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("rows")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def curves_png(curves: dict[str, tuple[list[float], list[float]]], path: Path, title: str, xlabel: str, ylabel: str) -> Path:
    """Line plot of named (x, y) curves, e.g. train and eval loss against step."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, (xs, ys) in curves.items():
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def markdown_image(path: Path, alt: str) -> str:
    """Markdown that shows the PNG inline in the Dagster UI (data URI), with the file path under it."""
    encoded = base64.b64encode(Path(path).read_bytes()).decode()
    return f"![{alt}](data:image/png;base64,{encoded})\n\n`{path}`"
