"""A reproducible train/validation/test split that does not depend on the order rows arrive in."""

from __future__ import annotations

import hashlib

SPLITS = ("train", "validation", "test")
#: The columns a saved split keeps: the article, its reference title, and the source row for error messages.
SPLIT_COLUMNS = ("content", "title", "source_row")


def _rank(seed: int, key: str) -> str:
    return hashlib.blake2b(f"{seed}\x00{key}".encode(), digest_size=16).hexdigest()


def split_rows(rows: list[dict], seed: int, validation_fraction: float, test_fraction: float) -> dict[str, list[dict]]:
    """Order rows by a seeded hash of their content and cut test, validation, then train from that order.

    The same rows and seed always give the same splits, whatever order the source lists them in. Each held-out
    split gets at least one row when there are three or more rows; a row lands in exactly one split.
    """
    ordered = sorted(rows, key=lambda row: _rank(seed, row["content"]))
    n = len(ordered)
    n_test = max(1, round(n * test_fraction)) if n >= 3 else 0
    n_validation = max(1, round(n * validation_fraction)) if n >= 3 else 0
    return {
        "test": ordered[:n_test],
        "validation": ordered[n_test : n_test + n_validation],
        "train": ordered[n_test + n_validation :],
    }


def leaked_rows(splits: dict[str, list[dict]]) -> list[tuple[str, str, str]]:
    """(field, split_a, split_b) for each content or title that appears in two splits; empty when nothing leaks."""
    leaks = []
    for field in ("content", "title"):
        owner: dict[str, str] = {}
        for name in SPLITS:
            for row in splits.get(name, []):
                first = owner.setdefault(row[field], name)
                if first != name:
                    leaks.append((field, first, name))
    return leaks


def held_out_articles(splits_path: str) -> list[dict]:
    """The test split's rows: what the eval gate, the sample generations and the latency requests use."""
    import datasets

    return datasets.load_from_disk(splits_path)["test"].to_list()
