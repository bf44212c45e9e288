"""Data stage: raw_dataset (one of three sources) and cleaned_splits (cleaning rules + a seeded split)."""

import json

import dagster as dg

from titlegen_assets.artifacts import atomic_folder
from titlegen_assets.cleaning import CleaningReport, clean_rows
from titlegen_assets.code_version import DATA_CODE
from titlegen_assets.config import CleanedSplitsConfig, RawDatasetConfig
from titlegen_assets.fingerprint import fingerprint
from titlegen_assets.parallel import available_cpus
from titlegen_assets.plots import histograms_png, markdown_image
from titlegen_assets.resources import ArtifactStore, HuggingFaceHub
from titlegen_assets.markdown import markdown_table
from titlegen_assets.sources import read_source
from titlegen_assets.splitting import SPLIT_COLUMNS, SPLITS, split_rows


def _cleaning_table(report: CleaningReport) -> str:
    """Every rule with the rows it edited and the rows it dropped, as a markdown table."""
    return markdown_table(("rule", "rows edited", "rows dropped"), report.table())


def _drops_in_words(report: CleaningReport) -> str:
    return ", ".join(f"{rule}: {count}" for rule, count in report.dropped.items() if count) or "no rows read"


@dg.asset(group_name="data", kinds={"huggingface", "python"})
def raw_dataset(
    context: dg.AssetExecutionContext, config: RawDatasetConfig, artifacts: ArtifactStore, hub: HuggingFaceHub
) -> dg.Output[dict]:
    """The articles as read from the source, saved with ``datasets.save_to_disk`` under ``raw/<version>/``."""
    import datasets

    source = read_source(config.source, config.hf_dataset, config.hf_revision, config.hf_split, config.path,
                         config.input_column, config.target_column, hub.dataset_commit)
    target = artifacts.path("raw", source.version)
    if target.exists():
        context.log.info(f"raw_dataset {source.version} already at {target}; nothing to write")
    else:
        with atomic_folder(target) as staging:
            datasets.Dataset.from_list(source.rows).save_to_disk(str(staging))
    context.log.info(f"raw_dataset: {len(source.rows)} rows from {source.kind} {source.location}")
    manifest = {"path": str(target), "version": source.version, "rows": len(source.rows),
                "source": {"kind": source.kind, "location": source.location, "revision": source.revision}}
    return dg.Output(
        manifest,
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


@dg.asset(group_name="data", kinds={"python"}, code_version=DATA_CODE)
def cleaned_splits(
    context: dg.AssetExecutionContext, config: CleanedSplitsConfig, artifacts: ArtifactStore, raw_dataset: dict
) -> dg.Output[dict]:
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
            features = datasets.Features({"content": datasets.Value("string"), "title": datasets.Value("string"),
                                          "source_row": datasets.Value("int64")})
            datasets.DatasetDict(  # from columns, so an empty split keeps its columns
                {name: datasets.Dataset.from_dict({k: [r[k] for r in splits[name]] for k in SPLIT_COLUMNS},
                                                  features=features)
                 for name in SPLITS}
            ).save_to_disk(str(staging), num_shards={name: 1 for name in SPLITS if not splits[name]})
            # ↑ one (empty) shard: with none, load_from_disk fails with an IndexError (datasets 5.2)
            histograms_png(
                {"content length": [len(r["content"]) for r in report.kept],
                 "title length": [len(r["title"]) for r in report.kept]},
                staging / "length_histograms.png", "cleaned_splits: lengths (characters)", "characters",
            )
            (staging / "cleaning_report.json").write_text(json.dumps(
                {"rules": config.model_dump(), "dropped": dict(report.dropped), "edited": dict(report.edited),
                 "sizes": sizes, "shortened_to_lead_n": report.shortened_to_lead_n}, ensure_ascii=False, indent=2))
    manifest = {"path": str(target), "version": version, "sizes": sizes, "rules": config.model_dump(),
                "source": raw_dataset["source"]}
    return dg.Output(
        manifest,
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
