"""Training stage (GPU): lora_adapter (Unsloth on NVIDIA, TRL + PEFT elsewhere) and merged_hf_model (16-bit folder
and its GGUF files, each to be certified by the eval gate)."""

import json
import shutil
from pathlib import Path

import dagster as dg
from pydantic import Field, field_validator

from titlegen_assets.defs.conditions import ON_NEW_INPUTS
from titlegen_assets.defs.guard import require_passed_checks
from titlegen_assets.defs.lineage import RUN_THE_DATA_CHECKS, SPLITS, own_test_articles
from titlegen_assets.defs.resources import ArtifactStore, HuggingFaceHub
from titlegen_assets.deploy.gpu import GPU_ASSET_TAGS, GPU_OP_TAGS, GPU_POOL
from titlegen_assets.export.gguf_export import DEFAULT_LADDER, quantization_name
from titlegen_assets.prompts import TITLE_MAX_NEW_TOKENS
from titlegen_assets.training.settings import LoraSettings
from titlegen_assets.ui.plots import markdown_image
from titlegen_assets.versioning.artifacts import atomic_folder, atomic_write_text, version_lock
from titlegen_assets.versioning.code_version import EVAL_CODE, MERGE_CODE, TRAINING_CODE
from titlegen_assets.versioning.fingerprint import fingerprint

class TrainingConfig(dg.Config, LoraSettings):
    """LoRA fine-tuning (the fields and their validation live in ``training.settings.LoraSettings``)."""


#: The ``gguf`` settings that make every type of the ladder and let the eval gate pick the one to serve.
LADDER_MODES = ("auto", "fastest")


class MergeConfig(dg.Config):
    """The merged 16-bit folder and the GGUF files made from it: the one place the shipped quantization is set."""

    sample_max_new_tokens: int = Field(default=TITLE_MAX_NEW_TOKENS, gt=0, description="Cap for the sample title.")
    gguf: str = Field(
        default="auto",
        description="GGUF files made with llama.cpp, which the eval gate scores through llama-server and hf_repo and "
        "ollama_model ship: auto (every type of gguf_ladder; the smallest whose answers pass the gate ships), "
        "fastest (every type of gguf_ladder; each that passes ships to hf_repo, and ollama_model serves the one the "
        "gate measured fastest on this host's llama-server: eval_gate's latency_* settings), one type (Q4_0, "
        "Q4_K_M, Q5_K_M, Q6_K, Q8_0, BF16, F32, any case, or a mixed recipe such as Q8_0_EMB_IQ4_NL: Q8_0 with the token "
        "embedding in IQ4_NL), or none. Where llama.cpp is not built, none is made and the run says so.",
    )
    gguf_ladder: list[str] = Field(default=list(DEFAULT_LADDER),
                                   description="The types auto and fastest try, smallest first.")

    @field_validator("gguf")
    @classmethod
    def _known_gguf(cls, value: str) -> str:
        return value.lower() if value.lower() in LADDER_MODES + ("none",) else quantization_name(value)

    @field_validator("gguf_ladder")
    @classmethod
    def _known_ladder(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("gguf_ladder is empty: list at least one GGUF type, e.g. [Q4_K_M, Q8_0]")
        return [quantization_name(name) for name in value]

    def quantizations(self) -> list[str]:
        """The GGUF types to make, in the order the gate tries them."""
        return [] if self.gguf == "none" else self.gguf_ladder if self.gguf in LADDER_MODES else [self.gguf]

    def mode(self) -> str:
        """How the gate picks the file to serve: ``auto`` (the smallest that passes), ``fastest``, or ``fixed``."""
        return self.gguf if self.gguf in LADDER_MODES else "fixed"



@dg.asset(group_name="training", kinds={"pytorch"}, tags=GPU_ASSET_TAGS, op_tags=GPU_OP_TAGS, pool=GPU_POOL,
          code_version=TRAINING_CODE, automation_condition=ON_NEW_INPUTS)
def lora_adapter(
    context: dg.AssetExecutionContext, config: TrainingConfig, artifacts: ArtifactStore, hub: HuggingFaceHub,
    cleaned_splits: dict,
) -> dg.MaterializeResult[dict]:
    """A LoRA adapter for headline generation under ``adapters/<version>/``; an interrupted run resumes. A Hub base
    model is read with the token only where the deployment allows it (``HuggingFaceHub.read_token``)."""
    from titlegen_assets.training import environment

    backend = environment.pick_backend(config.backend)
    if backend == "unsloth":  # before anything below imports trl, transformers or peft
        from titlegen_assets.training.unsloth_backend import import_unsloth_first

        import_unsloth_first(context.log.warning)
    from titlegen_assets.training.base_model import base_model_identity, resolve_base_model
    from titlegen_assets.training.lora import LOSS_CURVE, train_lora

    require_passed_checks(context, SPLITS, cleaned_splits["version"], "lora_adapter", RUN_THE_DATA_CHECKS)
    token = hub.read_token(config.base_model)
    base_model = resolve_base_model(config.base_model, artifacts.base(), context.log.info,
                                    pin_hub_revision=backend != "unsloth", token=token)
    base_identity = base_model_identity(base_model, token)
    version = fingerprint(cleaned_splits["version"], config.model_dump(), backend, base_identity, TRAINING_CODE)
    target = artifacts.path("adapters", version)
    with version_lock(target):  # a concurrent run of the same version waits here, then reuses the folder
        if target.exists():
            context.log.info(f"lora_adapter {version} already trained at {target}; reusing it")
        else:
            work_dir = artifacts.path("adapters", f".work-{version}")
            with atomic_folder(target) as staging:
                train_lora(config, cleaned_splits["path"], base_model, staging, work_dir, context.log.info)
            shutil.rmtree(work_dir, ignore_errors=True)
    result = json.loads((target / "train_result.json").read_text())
    manifest = {"path": str(target), "version": version, "backend": backend, "base_model": base_model,
                "base_model_name": config.base_model, "base_model_identity": base_identity,
                "inputs": {"cleaned_splits": cleaned_splits["version"], **cleaned_splits["inputs"]},
                "source": cleaned_splits["source"], "rules": cleaned_splits["rules"]}
    return dg.MaterializeResult(
        value=manifest,
        data_version=dg.DataVersion(version),
        metadata={
            "backend": backend,
            "device": result["device"],
            "precision": result["precision"],
            **result.get("weights", {}),  # what the weights were after loading, read from the model
            "base_model": config.base_model,
            "base_model_identity": base_identity,
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
          code_version=MERGE_CODE, automation_condition=ON_NEW_INPUTS)
def merged_hf_model(
    context: dg.AssetExecutionContext, config: MergeConfig, artifacts: ArtifactStore,
    lora_adapter: dict,
) -> dg.MaterializeResult[dict]:
    """The adapter merged into a 16-bit Hugging Face folder under ``merged/<version>/``, reloaded and tried once on
    an article of its own test split (once per version), and the GGUF files made from it under ``gguf/<version>/``
    (what the eval gate scores and the consumers ship)."""
    if lora_adapter["backend"] == "unsloth":  # before anything below imports trl, transformers or peft
        from titlegen_assets.training.unsloth_backend import import_unsloth_first

        import_unsloth_first(context.log.warning)
    from titlegen_assets.evaluation.generation import generate_titles
    from titlegen_assets.export import gguf_export
    from titlegen_assets.training.merge import load_for_generation, merge_adapter

    quantizations = config.quantizations()
    version = fingerprint(lora_adapter["version"], quantizations, gguf_export.toolchain_id(), MERGE_CODE)
    target = artifacts.path("merged", version)
    with version_lock(target):
        if target.exists():
            context.log.info(f"merged_hf_model {version} already at {target}; reusing it")
        else:
            with atomic_folder(target) as staging:
                merge_adapter(Path(lora_adapter["path"]), lora_adapter["base_model"], lora_adapter["backend"], staging)
    gguf = {**gguf_export.exported_files(target, artifacts.path("gguf", version), quantizations, context.log.info),
            "mode": config.mode()}
    if gguf["skipped"]:
        context.log.warning(f"merged_hf_model: no GGUF made, so none can be certified or shipped: {gguf['skipped']}")
    article = own_test_articles(context, artifacts, lora_adapter, "merged_hf_model")[0]
    sample_file = artifacts.path("reports", "merged_samples") / f"{fingerprint(version, config.sample_max_new_tokens, EVAL_CODE)}.json"
    if sample_file.is_file():  # an unchanged re-run generates nothing: the folder and its sample are the same
        sample = json.loads(sample_file.read_text(encoding="utf-8"))["sample"]
    else:
        model, tokenizer = load_for_generation(str(target), lora_adapter["backend"])
        [sample] = generate_titles(model, tokenizer, [article["content"]], config.sample_max_new_tokens)
        atomic_write_text(sample_file, json.dumps({"sample": sample}, ensure_ascii=False))
    context.log.info(f"merged_hf_model sample title: {sample!r} (reference {article['title']!r})")
    saved_config = json.loads((target / "config.json").read_text())
    lineage = {key: lora_adapter[key] for key in ("base_model_name", "base_model_identity", "source", "rules")}
    return dg.MaterializeResult(
        value={"path": str(target), "version": version, "base_model": lora_adapter["base_model"],
               "backend": lora_adapter["backend"], "architecture": saved_config.get("model_type", "unknown"),
               "gguf": gguf, "adapter_path": lora_adapter["path"],
               "inputs": {"lora_adapter": lora_adapter["version"], **lora_adapter["inputs"]}, **lineage},
        data_version=dg.DataVersion(version),
        metadata={
            "size_mb": folder_size_mb(target),
            "dtype": saved_config.get("dtype") or saved_config.get("torch_dtype", "unknown"),
            "files": ", ".join(sorted(p.name for p in target.iterdir())),
            "gguf": ", ".join(f"{q} ({f['mib']} MiB, sha256 {f['sha256'][:12]})" for q, f in gguf["files"].items())
            or f"none: {gguf['skipped']}",
            "sample_article": article["content"][:120],
            "sample_reference": article["title"],
            "sample_generation": sample,
            "path": dg.MetadataValue.path(str(target)),
        },
    )
