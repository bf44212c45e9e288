"""Blocking data-quality checks on cleaned_splits: a bad split never reaches training."""

from collections.abc import Iterator

import dagster as dg

from titlegen_assets.splitting import SPLITS, leaked_rows

NON_EMPTY = "splits_not_empty"
NO_EMPTY_FIELDS = "no_empty_content_or_title"
TITLE_BOUNDS = "titles_within_bounds"
NO_LEAKAGE = "no_leakage_between_splits"


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
    """Loads the splits once and yields the four data checks."""
    import datasets

    loaded = datasets.load_from_disk(cleaned_splits["path"])
    splits = {name: loaded[name].to_list() for name in SPLITS}
    rows = [(name, row) for name in SPLITS for row in splits[name]]
    rules = cleaned_splits["rules"]
    low, high = rules["title_min_chars"], rules["title_max_chars"]

    sizes = {name: len(splits[name]) for name in SPLITS}
    yield dg.AssetCheckResult(check_name=NON_EMPTY, passed=all(sizes.values()), metadata=sizes)

    empty = [f"{name} row {row['source_row']}" for name, row in rows if not row["content"].strip() or not row["title"].strip()]
    yield dg.AssetCheckResult(check_name=NO_EMPTY_FIELDS, passed=not empty,
                              metadata={"empty_rows": len(empty), "examples": ", ".join(empty[:10]) or "none"})

    outside = [f"{name} row {row['source_row']} ({len(row['title'])})" for name, row in rows
               if not low <= len(row["title"]) <= high]
    yield dg.AssetCheckResult(check_name=TITLE_BOUNDS, passed=not outside,
                              metadata={"bounds": f"{low}-{high}", "titles_outside": len(outside),
                                        "examples": ", ".join(outside[:10]) or "none"})

    leaks = leaked_rows(splits)
    yield dg.AssetCheckResult(check_name=NO_LEAKAGE, passed=not leaks,
                              metadata={"leaks": len(leaks),
                                        "examples": ", ".join(f"{f}: {a}/{b}" for f, a, b in leaks[:10]) or "none"})
