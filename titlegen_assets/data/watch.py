"""What the retraining sensor watches and the run config it launches with."""

from __future__ import annotations

import os
from pathlib import Path

from titlegen_assets.data.sources import HUB_DATASET
from titlegen_assets.versioning.fingerprint import file_sha256


def watched_source() -> dict[str, str]:
    """A local file when TITLEGEN_WATCH_FILE is set, else the Hub dataset (TITLEGEN_WATCH_DATASET or the default)."""
    path = os.environ.get("TITLEGEN_WATCH_FILE")
    if path:
        return {"kind": "file", "location": path}
    return {"kind": "hub", "location": os.environ.get("TITLEGEN_WATCH_DATASET", HUB_DATASET)}


def current_revision(source: dict[str, str], hub) -> str:
    """The Hub dataset's latest commit sha (``HfApi.dataset_info``), or the file's content hash."""
    if source["kind"] == "file":
        return "sha256:" + file_sha256(Path(source["location"]))
    return hub.api().dataset_info(source["location"]).sha


def run_config(source: dict[str, str], revision: str) -> dict:
    """raw_dataset pinned to exactly what the sensor saw; every other asset keeps its production defaults."""
    if source["kind"] == "file":
        config = {"source": "file", "path": source["location"]}
    else:
        config = {"source": "hub", "hf_dataset": source["location"], "hf_revision": revision}
    return {"ops": {"raw_dataset": {"config": config}}}
