"""Publish stage: hf_repo, one step from the merged folder to a Hub model repo (or a local folder target)."""

import json
import shutil
from pathlib import Path

import dagster as dg

from titlegen_assets import gguf_export, model_card
from titlegen_assets.artifacts import atomic_folder
from titlegen_assets.config import PublishConfig
from titlegen_assets.fingerprint import fingerprint
from titlegen_assets.resources import ArtifactStore, HuggingFaceHub


def gguf_skip_reason(config: PublishConfig, merged: Path) -> str | None:
    """Why no GGUF is exported in this run, or None when it will be."""
    if not config.export_gguf:
        return "export_gguf is false"
    if not (merged / "tokenizer.model").is_file():
        return "the merged model has no SentencePiece tokenizer.model (the base model's was not found locally)"
    return gguf_export.missing_tools(gguf_export.llama_cpp_dir())


def eval_summary_path(artifacts: ArtifactStore, merged_version: str):
    """Where the eval gate leaves the scores of its latest pass over a merged model (read by the model card)."""
    return artifacts.path("reports", "eval") / f"{merged_version}.summary.json"


@dg.asset(group_name="publish", kinds={"huggingface"})
def hf_repo(
    context: dg.AssetExecutionContext, config: PublishConfig, artifacts: ArtifactStore, hub: HuggingFaceHub,
    merged_hf_model: dict, lora_adapter: dict, raw_dataset: dict,
) -> dg.Output[dict]:
    """The merged model and its model card as one Hub commit; with no HF_TOKEN, the exact folder it would upload."""
    summary_file = eval_summary_path(artifacts, merged_hf_model["version"])
    if not summary_file.is_file():
        raise RuntimeError(f"hf_repo: no eval results at {summary_file}; materialize merged_hf_model with its "
                           "eval_gate checks first (the gate must pass before publishing)")
    summary = json.loads(summary_file.read_text())
    if not summary["passed"]:
        raise RuntimeError(f"hf_repo: the eval gate failed for this model ({'; '.join(summary['misses'])}); "
                           "not publishing. Improve the model or, deliberately, the thresholds in eval_gate's config")
    training = json.loads((artifacts.path("adapters", lora_adapter["version"]) / "training_config.json").read_text())
    version = fingerprint(merged_hf_model["version"], summary, config.model_dump(exclude={"commit_message"}))
    target = artifacts.path("hub", version)
    gguf_status = gguf_skip_reason(config, Path(merged_hf_model["path"]))
    if not target.exists():
        with atomic_folder(target) as staging:
            shutil.copytree(merged_hf_model["path"], staging, dirs_exist_ok=True)
            card = model_card.render(config.repo_id, training["base_model"], raw_dataset.get("location", "unknown"),
                                     raw_dataset.get("revision", "unknown"), training, summary["scores"])
            (staging / "README.md").write_text(card, encoding="utf-8")
            if gguf_status is None:
                name = f"{config.repo_id.split('/')[-1]}-{config.gguf_quantization.upper()}.gguf"
                context.log.info(f"hf_repo: exporting {name} with llama.cpp")
                gguf_export.export(staging, staging / name, config.gguf_quantization)
    if gguf_status:
        context.log.info(f"hf_repo: GGUF export skipped: {gguf_status}")
    files = sorted(p.name for p in target.iterdir())
    gguf_files = [f for f in files if f.endswith(".gguf")]
    metadata = {"repo_id": config.repo_id, "private": config.private, "files": ", ".join(files),
                "gguf": ", ".join(gguf_files) or f"skipped: {gguf_status}",
                "local_folder": dg.MetadataValue.path(str(target))}
    if hub.configured():
        commit = hub.publish(target, config.repo_id, config.private, config.commit_message)
        context.log.info(f"hf_repo: pushed {len(files)} files to {commit['commit_url']}")
        metadata.update(target_kind="hub", commit_url=dg.MetadataValue.url(commit["commit_url"]), commit_sha=commit["commit_sha"])
    else:
        context.log.warning(f"hf_repo: HF_TOKEN is not set, so nothing was uploaded; the folder that would be "
                            f"uploaded to {config.repo_id} is {target}")
        metadata.update(target_kind="local folder (HF_TOKEN not set)")
    return dg.Output({"path": str(target), "version": version, "repo_id": config.repo_id}, metadata=metadata)
