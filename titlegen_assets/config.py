"""Run config for the assets (Dagster ``Config``, i.e. pydantic): production defaults, launchpad descriptions,
and validation messages that say what to change."""


from typing import Literal, Optional

import dagster as dg
from pydantic import Field, model_validator

from titlegen_assets.cleaning import CleaningRules


class RawDatasetConfig(dg.Config):
    """Where the articles come from."""

    source: Literal["hub", "file", "sample"] = Field(
        default="hub",
        description="hub: a Hugging Face dataset (hf_dataset at hf_revision); file: a local JSONL/Parquet file (path); "
        "sample: the zh-TW sample bundled with titlegen (offline demo).",
    )
    hf_dataset: str = Field(
        default="AWeirdDev/zh-tw-pts-articles-sm",
        description="Hub dataset id (or a local folder holding a copy of it). `content` is the article, `title` the target.",
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

    @model_validator(mode="after")
    def _file_needs_path(self):
        if self.source == "file" and not self.path:
            raise ValueError("source='file' needs path: set raw_dataset.config.path to a .jsonl or .parquet file")
        return self


class CleanedSplitsConfig(dg.Config):
    """Cleaning rules and the split; all of it is part of the splits' data version."""

    title_min_chars: int = Field(default=8, ge=1, description="Titles shorter than this (characters) are dropped.")
    title_max_chars: int = Field(default=30, description="Titles longer than this (characters) are dropped.")
    content_max_chars: int = Field(
        default=1200, ge=50,
        description="Content budget in characters, so the prompt fits the training sequence length (2048 tokens). "
        "Longer articles keep their leading sentences (Lead-N), not a blind cut.",
    )
    content_min_chars: int = Field(default=20, ge=1, description="Articles shorter than this after cleaning are dropped.")
    near_duplicate_threshold: float = Field(
        default=0.8, gt=0, le=1,
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
        return CleaningRules(
            title_min_chars=self.title_min_chars,
            title_max_chars=self.title_max_chars,
            content_max_chars=self.content_max_chars,
            content_min_chars=self.content_min_chars,
            near_duplicate_threshold=self.near_duplicate_threshold,
        )
