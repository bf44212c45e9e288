"""Training stage (GPU): lora_adapter (Unsloth on NVIDIA, TRL + PEFT elsewhere) and merged_hf_model (16-bit)."""

import json
import shutil
from pathlib import Path

import dagster as dg

from titlegen_assets.artifacts import atomic_folder
from titlegen_assets.code_version import MERGE_CODE, TRAINING_CODE
from titlegen_assets.config import MergeConfig, TrainingConfig
from titlegen_assets.splitting import held_out_articles
from titlegen_assets.fingerprint import fingerprint
from titlegen_assets.gpu import GPU_ASSET_TAGS, GPU_OP_TAGS, GPU_POOL
from titlegen_assets.plots import markdown_image
from titlegen_assets.resources import ArtifactStore


@dg.asset(group_name="training", kinds={"pytorch"}, tags=GPU_ASSET_TAGS, op_tags=GPU_OP_TAGS, pool=GPU_POOL,
          code_version=TRAINING_CODE)
def lora_adapter(
    context: dg.AssetExecutionContext, config: TrainingConfig, artifacts: ArtifactStore, cleaned_splits: dict
) -> dg.Output[dict]:
    """A LoRA adapter for headline generation under ``adapters/<version>/``; an interrupted run resumes."""
    from titlegen_assets.training import environment

    backend = environment.pick_backend(config.backend)
    if backend == "unsloth":  # before anything below imports trl, transformers or peft
        from titlegen_assets.training.unsloth_backend import import_unsloth_first

        import_unsloth_first(context.log.warning)
    from titlegen_assets.training.base_model import resolve_base_model
    from titlegen_assets.training.lora import LOSS_CURVE, train_lora

    version = fingerprint(cleaned_splits["version"], config.model_dump(), backend, TRAINING_CODE)
    target = artifacts.path("adapters", version)
    base_model = resolve_base_model(config.base_model, artifacts.base(), context.log.info)
    if target.exists():
        context.log.info(f"lora_adapter {version} already trained at {target}; reusing it")
    else:
        work_dir = artifacts.path("adapters", f".work-{version}")
        with atomic_folder(target) as staging:
            train_lora(config, cleaned_splits["path"], base_model, staging, work_dir, context.log.info)
        shutil.rmtree(work_dir, ignore_errors=True)
    result = json.loads((target / "train_result.json").read_text())
    manifest = {"path": str(target), "version": version, "backend": backend, "base_model": base_model}
    return dg.Output(
        manifest,
        data_version=dg.DataVersion(version),
        metadata={
            "backend": backend,
            "device": result["device"],
            "precision": result["precision"],
            **result.get("weights", {}),  # what the weights were after loading, read from the model
            "base_model": config.base_model,
            "steps": result["global_step"],
            "train_loss": result["train_loss"],
            "eval_loss": result["eval_loss"],
            "tokens_per_second": result["tokens_per_second"],
            "wall_seconds": result["wall_seconds"],
            "resumed_from": result["resumed_from"] or "none",
            **result["peak_memory"],
            "environment": dg.MetadataValue.json(result["environment"]),
            "loss_curve": dg.MetadataValue.md(markdown_image(target / LOSS_CURVE, "loss curve")),
            "path": dg.MetadataValue.path(str(target)),
        },
    )


def folder_size_mb(folder: Path) -> float:
    return round(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20, 2)


@dg.asset(group_name="training", kinds={"pytorch", "huggingface"}, tags=GPU_ASSET_TAGS, op_tags=GPU_OP_TAGS, pool=GPU_POOL,
          code_version=MERGE_CODE)
def merged_hf_model(
    context: dg.AssetExecutionContext, config: MergeConfig, artifacts: ArtifactStore,
    lora_adapter: dict, cleaned_splits: dict,
) -> dg.Output[dict]:
    """The adapter merged into a 16-bit Hugging Face folder under ``merged/<version>/``, reloaded and tried once."""
    if lora_adapter["backend"] == "unsloth":  # before anything below imports trl, transformers or peft
        from titlegen_assets.training.unsloth_backend import import_unsloth_first

        import_unsloth_first(context.log.warning)
    from titlegen_assets.generation import generate_titles
    from titlegen_assets.training.merge import load_for_generation, merge_adapter

    version = fingerprint(lora_adapter["version"], MERGE_CODE)
    target = artifacts.path("merged", version)
    if target.exists():
        context.log.info(f"merged_hf_model {version} already at {target}; reusing it")
    else:
        with atomic_folder(target) as staging:
            merge_adapter(Path(lora_adapter["path"]), lora_adapter["base_model"], lora_adapter["backend"], staging)
    model, tokenizer = load_for_generation(str(target), lora_adapter["backend"])
    article = held_out_articles(cleaned_splits["path"])[0]
    [sample] = generate_titles(model, tokenizer, [article["content"]], config.sample_max_new_tokens)
    context.log.info(f"merged_hf_model sample title: {sample!r} (reference {article['title']!r})")
    saved_config = json.loads((target / "config.json").read_text())
    return dg.Output(
        {"path": str(target), "version": version, "base_model": lora_adapter["base_model"], "backend": lora_adapter["backend"]},
        data_version=dg.DataVersion(version),
        metadata={
            "size_mb": folder_size_mb(target),
            "dtype": saved_config.get("dtype") or saved_config.get("torch_dtype", "unknown"),
            "files": ", ".join(sorted(p.name for p in target.iterdir())),
            "sample_article": article["content"][:120],
            "sample_reference": article["title"],
            "sample_generation": sample,
            "path": dg.MetadataValue.path(str(target)),
        },
    )
