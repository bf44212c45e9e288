"""A reproducible train/validation/test split that does not depend on the order rows arrive in."""

from __future__ import annotations

import hashlib

SPLITS = ("train", "validation", "test")
#: The columns a saved split keeps: the article, its reference title, and the source row for error messages.
SPLIT_COLUMNS = {"content": "string", "title": "string", "source_row": "int64"}


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


def save_splits(splits: dict[str, list[dict]], folder: str) -> None:
    """Save the splits as one ``DatasetDict`` with exactly ``SPLIT_COLUMNS``, an empty split keeping its columns."""
    import datasets

    features = datasets.Features({name: datasets.Value(dtype) for name, dtype in SPLIT_COLUMNS.items()})
    datasets.DatasetDict(  # from columns, so an empty split keeps its columns
        {name: datasets.Dataset.from_dict({k: [r[k] for r in splits[name]] for k in SPLIT_COLUMNS}, features=features)
         for name in SPLITS}
    ).save_to_disk(folder, num_shards={name: 1 for name in SPLITS if not splits[name]})
    # ↑ one (empty) shard: with none, load_from_disk fails with an IndexError (datasets 5.2)


class SplitsUnreadable(Exception):
    """The splits folder is missing, not a saved DatasetDict, or lacks a split or a column."""


def load_splits(path: str) -> dict[str, list[dict]]:
    """Each split's rows, or ``SplitsUnreadable`` saying what is wrong with the folder at ``path``."""
    import datasets

    try:
        loaded = datasets.load_from_disk(path)
    except Exception as error:  # datasets raises FileNotFoundError, IndexError, ... for a broken folder
        raise SplitsUnreadable(f"cannot load the splits at {path} ({type(error).__name__}: {error}); "
                               "re-materialize cleaned_splits") from error
    if not isinstance(loaded, datasets.DatasetDict):
        raise SplitsUnreadable(f"{path} holds one dataset, not train/validation/test splits; re-materialize cleaned_splits")
    missing = [name for name in SPLITS if name not in loaded]
    if missing:
        raise SplitsUnreadable(f"{path} has no split {', '.join(missing)}; re-materialize cleaned_splits")
    for name in SPLITS:
        lacking = sorted(set(SPLIT_COLUMNS) - set(loaded[name].column_names))
        if lacking:
            raise SplitsUnreadable(f"{path}: split {name} lacks column(s) {', '.join(lacking)}; "
                                   "re-materialize cleaned_splits")
    return {name: loaded[name].to_list() for name in SPLITS}
