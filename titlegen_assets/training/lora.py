"""Train a LoRA adapter on the cleaned splits with the backend the hardware calls for."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from titlegen_assets.training import environment, sft
from titlegen_assets.training.settings import LoraSettings
from titlegen_assets.ui.plots import curves_png

LOSS_CURVE = "loss_curve.png"


def backend_module(backend: str):
    if backend == "unsloth":
        from titlegen_assets.training import unsloth_backend

        return unsloth_backend
    from titlegen_assets.training import trl_backend

    return trl_backend


def train_lora(
    config: LoraSettings,
    splits_path: str,
    base_model: str,
    target: Path,
    work_dir: Path,
    log: Callable[[str], None],
    extra_callbacks: Sequence = (),
) -> sft.TrainResult:
    """Train into ``target`` (adapter, tokenizer, config, state, loss curve); checkpoints go to ``work_dir``.

    ``config`` is plain ``LoraSettings`` (the asset passes its Dagster ``TrainingConfig``, which is one)."""
    import datasets

    backend = environment.pick_backend(config.backend)
    precision = environment.pick_precision(config.precision)
    splits = datasets.load_from_disk(splits_path)
    validation = splits["validation"] if len(splits["validation"]) else None

    def attempt(precision: str):
        log(f"training with {backend} on {environment.device_name()} ({precision}): "
            f"{len(splits['train'])} train / {len(validation) if validation is not None else 0} validation rows")
        args_for = partial(sft.sft_args, config, work_dir / sft.CHECKPOINTS, precision, validation is not None)
        trainer, tokenizer = backend_module(backend).build_trainer(
            config, base_model, splits["train"], validation, args_for, sft.callbacks(log, extra_callbacks), log=log
        )
        return trainer, tokenizer, sft.run(trainer, work_dir, log, backend, precision)

    try:
        trainer, tokenizer, result = attempt(precision)
    except sft.NonFiniteLoss as error:
        if config.precision != "auto" or precision == "fp32":
            raise
        log(f"{error}; precision 'auto' retries in fp32 from the start")
        shutil.rmtree(work_dir / sft.CHECKPOINTS, ignore_errors=True)
        trainer, tokenizer, result = attempt("fp32")
    sft.save_adapter(trainer, tokenizer, target, result, {**config.model_dump(), "resolved_base_model": base_model},
                     log)
    loss_curve(result.log_history, target / LOSS_CURVE)
    return result


def loss_curve(history: list[dict], path: Path) -> Path:
    curves = {}
    for key, name in (("loss", "train loss"), ("eval_loss", "eval loss")):
        points = [(entry["step"], entry[key]) for entry in history if key in entry]
        if points:
            curves[name] = ([s for s, _ in points], [v for _, v in points])
    return curves_png(curves, path, "lora_adapter: loss", "step", "loss")
