"""Blocking data-quality checks on cleaned_splits: a bad split never reaches training."""

from collections.abc import Iterator

import dagster as dg

from titlegen_assets.splitting import SPLITS, leaked_rows

REQUIRED_COLUMNS = {"content", "title", "source_row"}

NON_EMPTY = "splits_not_empty"
NO_EMPTY_FIELDS = "no_empty_content_or_title"
TITLE_BOUNDS = "titles_within_bounds"
NO_LEAKAGE = "no_leakage_between_splits"


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
        if not REQUIRED_COLUMNS <= set(loaded[name].column_names):
            raise SplitsUnreadable(f"{path}: split {name} lacks column(s) "
                                   f"{', '.join(sorted(REQUIRED_COLUMNS - set(loaded[name].column_names)))}; "
                                   "re-materialize cleaned_splits")
    return {name: loaded[name].to_list() for name in SPLITS}


def _spec(name: str, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset="cleaned_splits", blocking=True, description=description)


@dg.multi_asset_check(
    specs=[
        _spec(NON_EMPTY, "train, validation and test each have at least one row"),
        _spec(NO_EMPTY_FIELDS, "no row has an empty content or title"),
        _spec(TITLE_BOUNDS, "every title is within the configured character bounds"),
        _spec(NO_LEAKAGE, "no content or title appears in two splits"),
    ],
    ins={"cleaned_splits": dg.AssetIn("cleaned_splits")},
)
def cleaned_splits_checks(cleaned_splits: dict) -> Iterator[dg.AssetCheckResult]:
    """Loads the splits once and yields the four data checks; splits that cannot be loaded fail all four."""
    try:
        splits = load_splits(cleaned_splits["path"])
    except SplitsUnreadable as error:
        for name in (NON_EMPTY, NO_EMPTY_FIELDS, TITLE_BOUNDS, NO_LEAKAGE):
            yield dg.AssetCheckResult(check_name=name, passed=False, description=str(error),
                                      metadata={"path": dg.MetadataValue.path(cleaned_splits["path"])})
        return
    rows = [(name, row) for name in SPLITS for row in splits[name]]
    rules = cleaned_splits["rules"]
    low, high = rules["title_min_chars"], rules["title_max_chars"]

    sizes = {name: len(splits[name]) for name in SPLITS}
    empty_splits = [name for name in SPLITS if not sizes[name]]
    yield dg.AssetCheckResult(check_name=NON_EMPTY, passed=not empty_splits, metadata=sizes,
                              description=f"empty split(s): {', '.join(empty_splits)}" if empty_splits else None)

    empty = [f"{name} row {row['source_row']}" for name, row in rows
             if not (row["content"] or "").strip() or not (row["title"] or "").strip()]
    yield dg.AssetCheckResult(check_name=NO_EMPTY_FIELDS, passed=not empty,
                              metadata={"empty_rows": len(empty), "examples": _examples(empty)},
                              description=f"{len(empty)} row(s) with an empty content or title: {_examples(empty)}"
                              if empty else None)

    outside = [f"{name} row {row['source_row']} ({len(row['title'] or '')} chars)" for name, row in rows
               if not low <= len(row["title"] or "") <= high]
    yield dg.AssetCheckResult(check_name=TITLE_BOUNDS, passed=not outside,
                              metadata={"bounds": f"{low}-{high}", "titles_outside": len(outside),
                                        "examples": _examples(outside)},
                              description=f"{len(outside)} title(s) outside {low}-{high} characters: "
                              f"{_examples(outside)}" if outside else None)

    leaks = [f"{field} in {a} and {b}" for field, a, b in leaked_rows(splits)]
    yield dg.AssetCheckResult(check_name=NO_LEAKAGE, passed=not leaks,
                              metadata={"leaks": len(leaks), "examples": _examples(leaks)},
                              description=f"{len(leaks)} text(s) in two splits: {_examples(leaks)}" if leaks else None)


def _examples(items: list[str]) -> str:
    return ", ".join(items[:10]) or "none"
