"""The data source retraining watches, and its version: what the observable source asset records and what
raw_dataset loads when it follows that source."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from titlegen_assets.data.sources import HUB_DATASET
from titlegen_assets.versioning.fingerprint import file_sha256


@dataclass(frozen=True)
class WatchedSource:
    kind: str  # "hub" or "file"
    location: str  # a Hub dataset id, or a local file's path


def watched_source() -> WatchedSource:
    """A local file when TITLEGEN_WATCH_FILE is set, else the Hub dataset (TITLEGEN_WATCH_DATASET or the default):
    set by whoever deploys, so the observation and every run that follows it read the same place."""
    path = os.environ.get("TITLEGEN_WATCH_FILE")
    if path:
        return WatchedSource("file", path)
    return WatchedSource("hub", os.environ.get("TITLEGEN_WATCH_DATASET") or HUB_DATASET)


def current_version(source: WatchedSource, dataset_commit) -> str:
    """The Hub dataset's latest commit sha (``dataset_commit(id, "main")``), or ``sha256:`` and the file's content
    hash: the same revision string raw_dataset records for that source."""
    if source.kind == "file":
        return "sha256:" + file_sha256(Path(source.location).expanduser())
    return dataset_commit(source.location, "main")
