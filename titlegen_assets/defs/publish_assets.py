"""Publish stage: hf_repo, one step from the merged folder to a Hub model repo (or a local folder target)."""

import json
import shutil
from pathlib import Path

import dagster as dg
from pydantic import Field

from titlegen_assets.defs.evaluation_checks import GATES, ROUGE_L, passed_gate
from titlegen_assets.defs.resources import ArtifactStore, HuggingFaceHub
from titlegen_assets.export import gguf_export, model_card
from titlegen_assets.versioning.artifacts import atomic_folder
from titlegen_assets.versioning.fingerprint import fingerprint


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



def gguf_skip_reason(config: PublishConfig, merged: Path) -> str | None:
    """Why no GGUF is exported in this run, or None when it will be."""
    if not config.export_gguf:
        return "export_gguf is false"
    if not (merged / "tokenizer.model").is_file():
        return "the merged model has no SentencePiece tokenizer.model (the base model's was not found locally)"
    return gguf_export.missing_tools(gguf_export.llama_cpp_dir())


@dg.asset(group_name="publish", kinds={"huggingface"})
def hf_repo(
    context: dg.AssetExecutionContext, config: PublishConfig, artifacts: ArtifactStore, hub: HuggingFaceHub,
    merged_hf_model: dict, lora_adapter: dict, cleaned_splits: dict,
) -> dg.Output[dict]:
    """The merged model and its model card as one Hub commit; with no HF_TOKEN, the exact folder it would upload.

    Refuses a merged model whose eval gate failed or never ran (Dagster's check records say which).
    """
    evaluations = passed_gate(context.instance, merged_hf_model, "hf_repo")
    scores = evaluations[ROUGE_L].metadata["scores"].value
    thresholds = {GATES[name][0]: evaluation.metadata["threshold"].value for name, evaluation in evaluations.items()}
    training = json.loads((Path(lora_adapter["path"]) / "training_config.json").read_text())
    version = fingerprint(merged_hf_model["version"], scores, thresholds, config.model_dump(exclude={"commit_message"}))
    target = artifacts.path("hub", version)
    gguf_status = gguf_skip_reason(config, Path(merged_hf_model["path"]))
    if not target.exists():
        with atomic_folder(target) as staging:
            shutil.copytree(merged_hf_model["path"], staging, dirs_exist_ok=True)
            rules = cleaned_splits["rules"]
            card = model_card.build(config.repo_id, training["base_model"], model_card.DataLineage(**cleaned_splits["source"]),
                                    training, scores, thresholds, (rules["title_min_chars"], rules["title_max_chars"]))
            card.save(staging / "README.md")
            if gguf_status is None:
                name = f"{config.repo_id.split('/')[-1]}-{config.gguf_quantization.upper()}.gguf"
                context.log.info(f"hf_repo: exporting {name} with llama.cpp")
                shutil.copyfile(gguf_export.exported(Path(merged_hf_model["path"]), artifacts.path(
                    "gguf", merged_hf_model["version"]), config.gguf_quantization), staging / name)
    if gguf_status:
        context.log.info(f"hf_repo: GGUF export skipped: {gguf_status}")
    files = sorted(p.name for p in target.iterdir())
    gguf_files = [f for f in files if f.endswith(".gguf")]
    metadata = {"repo_id": config.repo_id, "private": config.private, "files": ", ".join(files),
                "gguf": ", ".join(gguf_files) or f"skipped: {gguf_status}",
                "path": dg.MetadataValue.path(str(target))}
    if hub.configured():
        commit = hub.publish(target, config.repo_id, config.private, config.commit_message)
        context.log.info(f"hf_repo: pushed {len(files)} files to {commit['commit_url']}")
        metadata.update(target_kind="hub", commit_url=dg.MetadataValue.url(commit["commit_url"]), commit_sha=commit["commit_sha"])
    else:
        context.log.warning(f"hf_repo: HF_TOKEN is not set, so nothing was uploaded; the folder that would be "
                            f"uploaded to {config.repo_id} is {target}")
        metadata.update(target_kind="local folder (HF_TOKEN not set)")
    return dg.Output({"path": str(target), "version": version, "repo_id": config.repo_id}, metadata=metadata)
