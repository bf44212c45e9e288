"""Run config for the assets (Dagster ``Config``, i.e. pydantic): production defaults, launchpad descriptions,
and validation messages that say what to change."""

from typing import Literal, Optional

import dagster as dg
from pydantic import Field, field_validator, model_validator

from titlegen_assets.cleaning import CleaningRules
from titlegen_assets.prompts import TITLE_MAX_NEW_TOKENS
from titlegen_assets.sources import HUB_DATASET
from titlegen_assets.training.settings import LoraSettings

_RULES = CleaningRules()  # the cleaning rules' own defaults are the config's defaults


class RawDatasetConfig(dg.Config):
    """Where the articles come from."""

    source: Literal["hub", "file", "sample"] = Field(
        default="hub",
        description="hub: a Hugging Face dataset (hf_dataset at hf_revision); file: a local JSONL/Parquet file (path); "
        "sample: the zh-TW sample bundled with titlegen (offline demo).",
    )
    hf_dataset: str = Field(
        default=HUB_DATASET,
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

    title_min_chars: int = Field(default=_RULES.title_min_chars, ge=1,
                                 description="Titles shorter than this (characters) are dropped; the eval gate's "
                                 "length compliance uses the same bounds.")
    title_max_chars: int = Field(default=_RULES.title_max_chars, description="Titles longer than this (characters) are dropped.")
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


class TrainingConfig(dg.Config, LoraSettings):
    """LoRA fine-tuning (the fields and their validation live in ``training.settings.LoraSettings``)."""


class MergeConfig(dg.Config):
    """The merged model's one sample generation, a quick look that the reloaded folder works."""

    sample_max_new_tokens: int = Field(default=TITLE_MAX_NEW_TOKENS, gt=0, description="Cap for the sample title.")


class EvalGateConfig(dg.Config):
    """The eval gate on merged_hf_model. Thresholds default to the spec; a miss blocks publishing and serving."""

    rouge_l_min: float = Field(default=0.30, ge=0, le=1, description="Minimum character ROUGE-L F1 on the test split.")
    bleu_1_min: float = Field(default=0.45, ge=0, le=1, description="Minimum character BLEU-1 on the test split.")
    title_only_min: float = Field(default=0.98, ge=0, le=1, description="Minimum share of predictions that are only a title.")
    length_compliance_min: float = Field(
        default=0.90, ge=0, le=1, description="Share of predictions within the length bounds (a warning, not blocking)."
    )
    max_new_tokens: int = Field(default=TITLE_MAX_NEW_TOKENS, gt=0, description="Generation cap per title.")
    batch_size: int = Field(default=8, gt=0, description="Articles generated per batch.")
    max_samples: Optional[int] = Field(default=None, gt=0, description="Evaluate only the first N test rows (None: all).")
    compare_base_model: bool = Field(
        default=True, description="Also score the base model before fine-tuning, when it can be loaded."
    )


def _default_repo_id() -> str:
    import os

    org, repo = os.environ.get("HF_ORG", ""), os.environ.get("HF_REPO", "titlegen-gemma3n-zh-tw")
    return f"{org}/{repo}" if org else repo


class PublishConfig(dg.Config):
    """Where hf_repo publishes. The token is never config: it comes only from the HF_TOKEN environment variable."""

    repo_id: str = Field(default_factory=_default_repo_id,
                         description="Hub model repo, `org/name`; default from HF_ORG and HF_REPO.")
    private: bool = Field(default=True, description="Create the repo private (the default) or public.")
    commit_message: str = Field(default="titlegen: publish fine-tuned headline model", description="Hub commit message.")
    export_gguf: bool = Field(default=True, description="Also export a GGUF where llama.cpp is available (LLAMA_CPP_DIR).")
    gguf_quantization: str = Field(
        default="Q4_K_M", description="GGUF type: Q4_K_M (default), Q8_0, ... or BF16/F32 straight from the converter."
    )


#: What ``ollama create`` can quantize to (Ollama's ``ParseFileType``, read upper-cased), in Ollama's spelling;
#: llama-quantize takes the same names when the GGUF is made here.
OLLAMA_QUANTIZATIONS = ("q4_K_M", "q4_K_S", "q8_0")


class OllamaModelConfig(dg.Config):
    """The Ollama model created from the merged model: its llama.cpp GGUF by default, or its safetensors folder."""

    model_name: str = Field(default="titlegen-gemma3n-zh-tw", description="Ollama model name.")
    tag: str = Field(default="latest", description="Ollama model tag.")
    import_from: Literal["gguf", "safetensors"] = Field(
        default="gguf",
        description="gguf: the merged model converted by llama.cpp and quantized by llama-quantize (the import path "
        "Ollama documents for every architecture); safetensors: upload the merged folder and let `ollama create` "
        "convert and quantize it (Gemma 3 safetensors with quantize fail in open upstream reports, ollama#10611).",
    )
    quantize: Optional[str] = Field(
        default="q4_K_M",
        description="Quantization of the served model: q4_K_M, q4_K_S or q8_0; null keeps 16-bit (BF16). From gguf "
        "it is done by llama-quantize before the upload (Ollama is not asked to quantize again); from safetensors "
        "by `ollama create`.",
    )
    temperature: float = Field(default=0.1, ge=0, le=2, description="Sampling temperature; titles want near-greedy.")
    num_predict: int = Field(default=TITLE_MAX_NEW_TOKENS, gt=0, description="Cap on generated tokens: a title is short.")
    keep_alive: str = Field(default="30m", description="How long Ollama keeps the model loaded after a request.")
    num_thread: Optional[int] = Field(
        default=None, gt=0, description="Runner threads (llama.cpp -t); null: Ollama's default (the physical cores).")
    num_batch: Optional[int] = Field(
        default=None, gt=0, description="Prompt tokens evaluated per batch (llama.cpp -b/-ub); null: Ollama's default.")
    num_ctx: Optional[int] = Field(
        default=None, gt=0, description="Context window per request in tokens; null: Ollama's default. A title's "
        "prompt and answer need a few hundred.")

    @field_validator("quantize")
    @classmethod
    def _ollama_accepts(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        spelled = {name.lower(): name for name in OLLAMA_QUANTIZATIONS}
        if value.lower() not in spelled:
            raise ValueError(f"quantize {value!r} is not a type Ollama quantizes to: use one of "
                             f"{', '.join(OLLAMA_QUANTIZATIONS)} (case does not matter, e.g. q4_k_m is read as "
                             "q4_K_M), or null to keep 16-bit")
        return spelled[value.lower()]

    @property
    def name(self) -> str:
        return f"{self.model_name}:{self.tag}"

    def runtime_options(self) -> dict:
        """The runner options this config sets, as Modelfile parameters (unset ones keep Ollama's defaults)."""
        return {"num_thread": self.num_thread, "num_batch": self.num_batch, "num_ctx": self.num_ctx}


class LatencyConfig(dg.Config):
    """The latency measurement against the spec (p50 ≤ 500 ms, p95 ≤ 1 s)."""

    requests: int = Field(default=100, gt=0, description="Measured requests, built from test-split articles.")
    concurrency: int = Field(default=2, gt=0, description="Requests in flight at once (match OLLAMA_NUM_PARALLEL).")
    warmup: int = Field(default=3, ge=0, description="Requests sent first and not counted (model load).")
    p50_max_ms: float = Field(default=500, gt=0, description="Spec: median client latency, milliseconds.")
    p95_max_ms: float = Field(default=1000, gt=0, description="Spec: 95th percentile client latency, milliseconds.")
