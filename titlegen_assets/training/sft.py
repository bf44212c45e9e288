"""What both backends share: the SFT arguments, checkpoint resume, progress logging and the run's telemetry.

The backends differ only in how they load the model, add LoRA and mask the prompt; the loop is TRL's SFTTrainer.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from titlegen_assets.prompts import training_example
from titlegen_assets.training import environment

CHECKPOINTS = "checkpoints"


@dataclass
class TrainResult:
    backend: str
    device: str
    precision: str
    global_step: int
    train_loss: float | None
    eval_loss: float | None
    tokens_seen: int
    tokens_per_second: float
    wall_seconds: float
    resumed_from: str | None
    peak_memory: dict[str, float]
    environment: dict[str, str]
    log_history: list[dict] = field(default_factory=list)
    #: read from the trained model (``environment.loaded_weights``): what the weights were, not what was asked for
    weights: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def conversational(split):
    """Rows of a cleaned split as TRL conversational prompt/completion examples built by the prompts module."""
    return split.map(lambda row: training_example(row["content"], row["title"]), remove_columns=split.column_names)


def sft_args(config, output_dir: Path, precision: str, has_eval: bool, **backend_args):
    """SFTConfig from the validated training config; checkpoints keep only the best and the last."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(output_dir),
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_steps,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        max_length=config.max_seq_length,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.checkpoint_steps,
        save_total_limit=2,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=config.checkpoint_steps if has_eval else None,
        load_best_model_at_end=has_eval,
        metric_for_best_model="eval_loss" if has_eval else None,
        greater_is_better=False if has_eval else None,
        use_cpu=environment.device_name() == "cpu",  # transformers refuses bf16 on a CPU unless told it is one
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        gradient_checkpointing=config.gradient_checkpointing,
        include_num_input_tokens_seen=True,
        logging_nan_inf_filter=False,  # on, Trainer logs a NaN step loss as the running mean: the guard never sees it
        seed=config.seed,
        report_to="none",
        dataloader_pin_memory=False,
        **backend_args,
    )


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite (bf16 overflow, or a learning rate far too high)."""


def non_finite_loss(loss: float, when: str, precision: str) -> NonFiniteLoss:
    fix = "lower learning_rate" if precision == "fp32" else "set precision to fp32, or lower learning_rate"
    return NonFiniteLoss(f"the training loss became {loss} {when} in {precision}: {fix}")


def finite_loss_guard():
    """A TrainerCallback that stops training at the first logged NaN/inf loss instead of training on garbage; it sees
    one only because ``sft_args`` turns off Trainer's ``logging_nan_inf_filter``."""
    from transformers import TrainerCallback

    class StopOnNonFiniteLoss(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(loss):
                precision = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"
                raise non_finite_loss(loss, f"at step {state.global_step}", precision)

    return StopOnNonFiniteLoss()


def progress_callback(log: Callable[[str], None]):
    """A TrainerCallback that writes each logged loss to the run's log, so progress shows while it trains."""
    from transformers import TrainerCallback

    class LogToDagster(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in (logs or {}).items()}
            log(f"step {state.global_step}/{state.max_steps}: {shown}")

    return LogToDagster()


def last_checkpoint(work_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    folder = work_dir / CHECKPOINTS
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def tokens_at(checkpoint: str | None) -> int:
    """Input tokens already trained when ``checkpoint`` was written (0 for a fresh start)."""
    if not checkpoint:
        return 0
    from transformers import TrainerState

    return int(TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json")).num_input_tokens_seen or 0)


def run(trainer, work_dir: Path, log: Callable[[str], None], backend: str, precision: str) -> TrainResult:
    """Train, resuming from the last checkpoint in ``work_dir`` if an earlier run was interrupted."""
    resume = last_checkpoint(work_dir)
    tokens_before = tokens_at(resume)
    if resume:
        log(f"resuming from {resume} ({tokens_before} tokens already trained)")
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=resume)
    wall = time.perf_counter() - started
    history = trainer.state.log_history
    evals = [entry["eval_loss"] for entry in history if "eval_loss" in entry]
    tokens = int(trainer.state.num_input_tokens_seen or 0)
    trained_now = tokens - tokens_before  # this session's tokens over this session's time
    return TrainResult(
        backend=backend,
        device=environment.device_name(),
        precision=precision,
        global_step=trainer.state.global_step,
        train_loss=output.training_loss,
        eval_loss=evals[-1] if evals else None,
        tokens_seen=tokens,
        tokens_per_second=round(trained_now / wall, 1) if wall else 0.0,
        wall_seconds=round(wall, 2),
        resumed_from=Path(resume).name if resume else None,
        peak_memory=environment.peak_memory_mb(),
        environment=environment.report(backend),
        log_history=history,
        weights=environment.loaded_weights(trainer.model),
    )


def save_adapter(trainer, tokenizer, target: Path, result: TrainResult, config_dump: dict,
                 log: Callable[[str], None] = lambda _: None) -> None:
    """The adapter folder: PEFT weights, tokenizer (with its SentencePiece model), training_config.json and
    trainer_state.json."""
    from titlegen_assets.training.tokenizer_files import save_tokenizer

    trainer.save_model(str(target))
    save_tokenizer(tokenizer, target, config_dump.get("resolved_base_model") or config_dump["base_model"], log)
    trainer.state.save_to_json(str(target / "trainer_state.json"))
    (target / "training_config.json").write_text(json.dumps(config_dump, indent=2))
    (target / "train_result.json").write_text(result.to_json())


def callbacks(log: Callable[[str], None], extra: Sequence = ()) -> list:
    return [progress_callback(log), *extra, finite_loss_guard()]
