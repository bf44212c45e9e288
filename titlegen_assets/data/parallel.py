"""Spread a per-item function over worker processes in ordered chunks: cleaning a corpus is CPU-bound Python."""

from __future__ import annotations

from collections.abc import Callable, Sequence

#: Below this many items a pool costs more (process start, pickling) than it saves.
MIN_ITEMS_FOR_WORKERS = 20_000


def map_chunks(function: Callable[[list], list], items: Sequence, workers: int, chunk_size: int = 2_000,
               min_items: int = MIN_ITEMS_FOR_WORKERS) -> list:
    """``function`` applied to consecutive chunks of ``items``, results concatenated in the input order.

    ``function`` takes a list and returns a list of the same length; it must be a module-level function so the
    worker processes can import it. With ``workers <= 1`` or fewer than ``min_items`` it runs in this process.
    """
    items = list(items)
    if workers <= 1 or len(items) < min_items:
        return function(items)
    from concurrent.futures import ProcessPoolExecutor

    chunks = [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return [result for chunk in pool.map(function, chunks) for result in chunk]


def available_cpus() -> int:
    """CPUs this process may run on (its affinity, not the machine's count)."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
