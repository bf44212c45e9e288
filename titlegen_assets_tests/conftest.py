"""Shared fixtures: an artifact root per test, the definitions' resources pointed at it."""

import os
from pathlib import Path

import pytest

from titlegen_assets.resources import ArtifactStore, HuggingFaceHub

# Tests never reach a hub: anything that tries fails at once instead of retrying for half a minute.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
TEST_DATA = Path(__file__).parent / "data"


@pytest.fixture
def artifact_root(tmp_path) -> Path:
    root = tmp_path / "artifacts"
    root.mkdir()
    return root


@pytest.fixture
def resources(artifact_root) -> dict:
    return {"artifacts": ArtifactStore(root=str(artifact_root)), "hub": HuggingFaceHub()}
