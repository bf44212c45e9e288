"""Data stage: watched_source (the observed version of the data retraining follows), raw_dataset (that source at its
observed version, or one chosen in config), cleaned_splits (cleaning rules + a seeded split) and the blocking
data-quality checks that keep a bad split from reaching training."""

import dataclasses
import json
from collections.abc import Iterator
from typing import Literal, Optional

import dagster as dg
from pydantic import Field, model_validator

from titlegen_assets.data.cleaning import CleaningReport, CleaningRules, clean_rows
from titlegen_assets.data.parallel import available_cpus
from titlegen_assets.data.sources import HUB_DATASET, MAX_ROW_MB, RawSource, read_source
from titlegen_assets.data.splitting import SPLITS, SplitsUnreadable, leaked_rows, load_splits, save_splits, split_rows
from titlegen_assets.data import watch
from titlegen_assets.defs.conditions import OBSERVE_SCHEDULE, ON_NEW_INPUTS
from titlegen_assets.defs.guard import evaluated
from titlegen_assets.defs.resources import ArtifactStore, HuggingFaceHub
from titlegen_assets.ui.plots import histograms_png, markdown_image
from titlegen_assets.ui.tables import markdown_table
from titlegen_assets.versioning.artifacts import atomic_folder
from titlegen_assets.versioning.code_version import DATA_CODE
from titlegen_assets.versioning.fingerprint import fingerprint

_RULES = CleaningRules()  # the cleaning rules' own defaults are the config's defaults


class RawDatasetConfig(dg.Config):
    """Where the articles come from."""

    source: Literal["watched", "hub", "file", "sample"] = Field(
        default="watched",
        description="watched: the source watched_source observes (TITLEGEN_WATCH_FILE, else TITLEGEN_WATCH_DATASET, "
        "else the production dataset) at the version last observed, as automation runs load it; hub: a Hugging Face "
        "dataset (hf_dataset at hf_revision); file: a local JSONL/Parquet file (path); sample: the zh-TW sample "
        "bundled with titlegen (offline demo).",
    )
    hf_dataset: str = Field(
        default=HUB_DATASET,
        description="Hub dataset id (or a local folder holding a copy of it). `content` is the article, `title` the "
        "target. Read with HF_TOKEN only in a namespace the deployment allows (TITLEGEN_HUB_NAMESPACES, HF_ORG, "
        "TITLEGEN_HUB_READ_NAMESPACES); elsewhere without a token, so only a public dataset can be read.",
    )
    hf_revision: str = Field(
        default="main",
        description="Branch, tag or commit of hf_dataset. A branch is resolved to its commit before loading and the "
        "commit is recorded, so the run can be repeated exactly; pin a commit sha for fully reproducible retraining.",
    )
    hf_split: str = Field(default="train", description="Split to read; the dataset ships only `train`.")
    path: Optional[str] = Field(default=None, description="Local .jsonl or .parquet file, for source='file'.")
    input_column: str = Field(default="content", description="Column holding the article text.")
    target_column: str = Field(default="title", description="Column holding the reference headline.")
    max_row_mb: float = Field(
        default=MAX_ROW_MB, gt=0,
        description="Largest row read, in MB (a JSONL line; any text value of a Parquet or Hub row): a larger one "
        "stops the read with its row number before it is read whole (Parquet: from the file's footer before anything "
        "is decompressed). Raise it only for unusually long articles.",
    )

    @model_validator(mode="after")
    def _file_needs_path(self):
        if self.source == "file" and not self.path:
            raise ValueError("source='file' needs path: set raw_dataset.config.path to a .jsonl or .parquet file")
        return self


class CleanedSplitsConfig(dg.Config):
    """Cleaning rules and the split; all of it is part of the splits' data version."""

    title_min_chars: int = Field(default=_RULES.title_min_chars, ge=1,
                                 description="Titles shorter than this (characters) are dropped; the eval gate's "
                                 "length compliance uses the same bounds.")
    title_max_chars: int = Field(default=_RULES.title_max_chars, description="Titles longer than this (characters) are dropped.")
    content_max_chars: int = Field(
        default=_RULES.content_max_chars, ge=50,
        description="Content budget in characters, so the prompt fits the training sequence length (2048 tokens). "
        "Longer articles keep their leading sentences (Lead-N), not a blind cut.",
    )
    content_min_chars: int = Field(default=_RULES.content_min_chars, ge=1, description="Articles shorter than this after cleaning are dropped.")
    near_duplicate_threshold: float = Field(
        default=_RULES.near_duplicate_threshold, gt=0, le=1,
        description="Character 5-gram Jaccard similarity at or above which an article counts as a near-duplicate.",
    )
    seed: int = Field(default=42, description="Seed of the train/validation/test split.")
    validation_fraction: float = Field(default=0.1, ge=0, lt=0.5, description="Share of rows for validation.")
    test_fraction: float = Field(default=0.1, gt=0, lt=0.5, description="Share of rows held out for the eval gate.")

    @model_validator(mode="after")
    def _consistent(self):
        if self.title_min_chars > self.title_max_chars:
            raise ValueError(
                f"title_min_chars ({self.title_min_chars}) is above title_max_chars ({self.title_max_chars}); "
                "lower the minimum or raise the maximum"
            )
        if self.validation_fraction + self.test_fraction >= 0.5:
            raise ValueError("validation_fraction + test_fraction must stay below 0.5 so most rows remain for training")
        return self

    def rules(self) -> CleaningRules:
        return CleaningRules(**{field.name: getattr(self, field.name) for field in dataclasses.fields(CleaningRules)})


def _cleaning_table(report: CleaningReport) -> str:
    """Every rule with the rows it edited and the rows it dropped, as a markdown table."""
    return markdown_table(("rule", "rows edited", "rows dropped"), report.table())


def _drops_in_words(report: CleaningReport) -> str:
    return ", ".join(f"{rule}: {count}" for rule, count in report.dropped.items() if count) or "no rows read"


def latest_observed_version(instance: dg.DagsterInstance, source: watch.WatchedSource) -> Optional[str]:
    """The data version of watched_source's latest observation in Dagster's event log, when that observation was of
    ``source`` (the deployment may since watch another dataset or file); None before the first such."""
    records = instance.fetch_observations(dg.AssetRecordsFilter(asset_key=watched_source.key), limit=1).records
    if not records:
        return None
    metadata = records[0].asset_observation.metadata
    seen = (getattr(metadata.get("source"), "value", None), getattr(metadata.get("location"), "value", None))
    return records[0].asset_observation.data_version if seen == (source.kind, source.location) else None


@dg.observable_source_asset(group_name="data", automation_condition=OBSERVE_SCHEDULE)
def watched_source(context: dg.AssetExecutionContext, hub: HuggingFaceHub) -> dg.ObserveResult:
    """The version of the data retraining follows: the Hub dataset's latest commit, or the watched file's sha256.
    A source that cannot be read is a reason to wait, not a failure: the observation repeats the last version seen,
    so nothing downstream starts, and its metadata and log say why."""
    source = watch.watched_source()
    where = {"source": source.kind, "location": source.location}
    try:
        version = watch.current_version(source, hub.dataset_commit)
    except Exception as error:  # the Hub client raises per its HTTP stack (httpx2, httpx or requests), files OSError
        reason = (f"cannot read {source.location} ({type(error).__name__}: {str(error)[:300]}); "
                  "will try again at the next observation")
        context.log.warning(f"watched_source: {reason}")
        previous = latest_observed_version(context.instance, source)
        return dg.ObserveResult(data_version=dg.DataVersion(previous) if previous else None,
                                metadata={**where, "unreadable": reason})
    context.log.info(f"watched_source: {source.location} at {version}")
    return dg.ObserveResult(data_version=dg.DataVersion(version), metadata=where)


def _read_watched(context: dg.AssetExecutionContext, config: RawDatasetConfig, hub: HuggingFaceHub) -> RawSource:
    """The watched source at the version watched_source last observed, read from Dagster's event log: a run that
    automation started on a new commit loads that commit, even if the branch moved since (as the retraining
    sensor's pinned run config used to)."""
    source = watch.watched_source()
    observed = latest_observed_version(context.instance, source)
    if observed is None:  # never observed, or the latest observation was of another source
        raise dg.Failure(f"raw_dataset: watched_source has no observed version of {source.location} yet: observe it "
                         "(run data_job, or turn on default_automation_condition_sensor under Automation), or set "
                         "raw_dataset's source to hub, file or sample")
    if source.kind == "hub":
        return read_source("hub", source.location, observed, config.hf_split, None, config.input_column,
                           config.target_column, hub.dataset_commit, config.max_row_mb, hub.read_token(source.location))
    read = read_source("file", hf_dataset="", hf_revision="", hf_split="", path=source.location,
                       input_column=config.input_column, target_column=config.target_column,
                       resolve_commit=hub.dataset_commit, max_row_mb=config.max_row_mb)
    if read.revision != observed:  # a file cannot be read at an older content: refuse rather than mislabel lineage
        raise dg.Failure(f"raw_dataset: {source.location} changed since watched_source observed it ({observed}; now "
                         f"{read.revision}); the next observation records the new content and starts a run on it")
    return read


@dg.asset(group_name="data", kinds={"huggingface", "python"}, deps=[watched_source],
          automation_condition=ON_NEW_INPUTS)
def raw_dataset(
    context: dg.AssetExecutionContext, config: RawDatasetConfig, artifacts: ArtifactStore, hub: HuggingFaceHub
) -> dg.MaterializeResult[dict]:
    """The articles as read from the source, saved with ``datasets.save_to_disk`` under ``raw/<version>/``."""
    import datasets

    if config.source == "watched":
        source = _read_watched(context, config, hub)
    else:
        source = read_source(config.source, config.hf_dataset, config.hf_revision, config.hf_split, config.path,
                             config.input_column, config.target_column, hub.dataset_commit, config.max_row_mb,
                             hub.read_token(config.hf_dataset))
    target = artifacts.path("raw", source.version)
    if target.exists():
        context.log.info(f"raw_dataset {source.version} already at {target}; nothing to write")
    else:
        with atomic_folder(target) as staging:
            datasets.Dataset.from_list(source.rows).save_to_disk(str(staging))
    context.log.info(f"raw_dataset: {len(source.rows)} rows from {source.kind} {source.location}")
    manifest = {"path": str(target), "version": source.version, "rows": len(source.rows),
                "source": {"kind": source.kind, "location": source.location, "revision": source.revision}}
    return dg.MaterializeResult(
        value=manifest,
        data_version=dg.DataVersion(source.version),
        metadata={
            "source": source.kind,
            "location": source.location,
            "revision": source.revision,
            "row_count": len(source.rows),
            "columns": ", ".join(source.columns),
            "column_mapping": source.layout,
            "path": dg.MetadataValue.path(str(target)),
        },
    )


@dg.asset(group_name="data", kinds={"python"}, code_version=DATA_CODE, automation_condition=ON_NEW_INPUTS)
def cleaned_splits(
    context: dg.AssetExecutionContext, config: CleanedSplitsConfig, artifacts: ArtifactStore, raw_dataset: dict
) -> dg.MaterializeResult[dict]:
    """Cleaned articles in train/validation/test under ``splits/<version>/``; version = fingerprint(raw, config, code)."""
    import datasets

    version = fingerprint(raw_dataset["version"], config.model_dump(), DATA_CODE)
    target = artifacts.path("splits", version)
    rows = datasets.load_from_disk(raw_dataset["path"]).to_list()
    report = clean_rows(rows, config.rules(), workers=available_cpus())
    if not report.kept:
        raise dg.Failure(
            description=f"cleaned_splits: no usable rows in {raw_dataset['source']['location']}: "
            f"all {len(rows)} rows were dropped ({_drops_in_words(report)}). Check that input_column/target_column "
            "name the article and the title, or loosen the rules that dropped them (title_min_chars, "
            "title_max_chars, content_min_chars).",
            metadata={"cleaning_by_rule": dg.MetadataValue.md(_cleaning_table(report))},
        )
    splits = split_rows(report.kept, config.seed, config.validation_fraction, config.test_fraction)
    sizes = {name: len(splits[name]) for name in SPLITS}
    context.log.info(f"cleaned_splits: kept {len(report.kept)} of {len(rows)} rows; splits {sizes}")
    if target.exists():
        context.log.info(f"cleaned_splits {version} already at {target}: inputs and config unchanged, nothing written")
    else:
        with atomic_folder(target) as staging:
            save_splits(splits, str(staging))
            histograms_png(
                {"content length": [len(r["content"]) for r in report.kept],
                 "title length": [len(r["title"]) for r in report.kept]},
                staging / "length_histograms.png", "cleaned_splits: lengths (characters)", "characters",
            )
            (staging / "cleaning_report.json").write_text(json.dumps(
                {"rules": config.model_dump(), "dropped": dict(report.dropped), "edited": dict(report.edited),
                 "sizes": sizes, "shortened_to_lead_n": report.shortened_to_lead_n}, ensure_ascii=False, indent=2))
    manifest = {"path": str(target), "version": version, "sizes": sizes, "rules": config.model_dump(),
                "source": raw_dataset["source"], "inputs": {"raw_dataset": raw_dataset["version"]}}
    return dg.MaterializeResult(
        value=manifest,
        data_version=dg.DataVersion(version),
        metadata={
            **{f"rows_{name}": size for name, size in sizes.items()},
            "rows_in": len(rows),
            "rows_dropped": sum(report.dropped.values()),
            "cleaning_by_rule": dg.MetadataValue.md(_cleaning_table(report)),
            "shortened_to_lead_n": report.shortened_to_lead_n,
            "length_histograms": dg.MetadataValue.md(markdown_image(target / "length_histograms.png", "length histograms")),
            "seed": config.seed,
            "data_version": version,
            "path": dg.MetadataValue.path(str(target)),
        },
    )


NON_EMPTY = "splits_not_empty"
NO_EMPTY_FIELDS = "no_empty_content_or_title"
TITLE_BOUNDS = "titles_within_bounds"
NO_LEAKAGE = "no_leakage_between_splits"
#: The blocking checks on cleaned_splits: training refuses splits on which any of them failed or never ran.
DATA_CHECKS = (NON_EMPTY, NO_EMPTY_FIELDS, TITLE_BOUNDS, NO_LEAKAGE)


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
    """Loads the splits once and yields the four data checks, each recording the splits version it evaluated;
    splits that cannot be loaded fail all four."""
    version = evaluated(cleaned_splits["version"])
    try:
        splits = load_splits(cleaned_splits["path"])
    except SplitsUnreadable as error:
        for name in DATA_CHECKS:
            yield dg.AssetCheckResult(check_name=name, passed=False, description=str(error),
                                      metadata={"path": dg.MetadataValue.path(cleaned_splits["path"]), **version})
        return
    rows = [(name, row) for name in SPLITS for row in splits[name]]
    rules = cleaned_splits["rules"]
    low, high = rules["title_min_chars"], rules["title_max_chars"]

    sizes = {name: len(splits[name]) for name in SPLITS}
    empty_splits = [name for name in SPLITS if not sizes[name]]
    yield dg.AssetCheckResult(check_name=NON_EMPTY, passed=not empty_splits, metadata={**sizes, **version},
                              description=f"empty split(s): {', '.join(empty_splits)}" if empty_splits else None)

    empty = [f"{name} row {row['source_row']}" for name, row in rows
             if not (row["content"] or "").strip() or not (row["title"] or "").strip()]
    yield dg.AssetCheckResult(check_name=NO_EMPTY_FIELDS, passed=not empty,
                              metadata={"empty_rows": len(empty), "examples": _examples(empty), **version},
                              description=f"{len(empty)} row(s) with an empty content or title: {_examples(empty)}"
                              if empty else None)

    outside = [f"{name} row {row['source_row']} ({len(row['title'] or '')} chars)" for name, row in rows
               if not low <= len(row["title"] or "") <= high]
    yield dg.AssetCheckResult(check_name=TITLE_BOUNDS, passed=not outside,
                              metadata={"bounds": f"{low}-{high}", "titles_outside": len(outside),
                                        "examples": _examples(outside), **version},
                              description=f"{len(outside)} title(s) outside {low}-{high} characters: "
                              f"{_examples(outside)}" if outside else None)

    leaks = [f"{field} in {a} and {b}" for field, a, b in leaked_rows(splits)]
    yield dg.AssetCheckResult(check_name=NO_LEAKAGE, passed=not leaks,
                              metadata={"leaks": len(leaks), "examples": _examples(leaks), **version},
                              description=f"{len(leaks)} text(s) in two splits: {_examples(leaks)}" if leaks else None)


def _examples(items: list[str]) -> str:
    return ", ".join(items[:10]) or "none"
