"""The test split of a model's own lineage: what the gate, the merged model's sample, the served check and the
latency report read, never whatever split is latest.

Every manifest from lora_adapter on names the splits version it descends from (``inputs.cleaned_splits``). A
re-materialized cleaned_splits (another seed, other rules) is another version in another folder, so a model is
always scored on the articles it was held out from.
"""

import dagster as dg

from titlegen_assets.data.splitting import held_out_articles
from titlegen_assets.defs.guard import ChecksRefused, require_passed_checks
from titlegen_assets.defs.resources import ArtifactStore

SPLITS = dg.AssetKey("cleaned_splits")
RUN_THE_DATA_CHECKS = ("materialize cleaned_splits with its checks (`dagster asset materialize --select "
                       "raw_dataset,cleaned_splits`, or data_job)")


def splits_version(manifest: dict) -> str:
    """The cleaned_splits version a manifest (lora_adapter, merged_hf_model, ollama_model) descends from."""
    return manifest["inputs"]["cleaned_splits"]


def own_test_articles(context, artifacts: ArtifactStore, manifest: dict, consumer: str) -> list[dict]:
    """The held-out articles of the splits ``manifest`` was trained on; refuses (``ChecksRefused``) when that split
    is gone from the artifact root or its data checks did not pass on it, saying what to run."""
    version = splits_version(manifest)
    folder = artifacts.path("splits", version)
    if not folder.is_dir():
        raise ChecksRefused(
            f"{consumer}: the test split this model was trained beside, cleaned_splits {version}, is gone from "
            f"{folder}; it is the only split the model may be scored on. To go on: re-materialize raw_dataset and "
            "cleaned_splits with the source and config that made it (the same inputs make the same version and "
            "folder), or retrain on the current splits")
    require_passed_checks(context, SPLITS, version, consumer, RUN_THE_DATA_CHECKS)
    return held_out_articles(str(folder))
