"""Publish stage: hf_repo, one Hub commit (or a local folder target) holding exactly what the eval gate certified."""

import json
import os
import shutil
from pathlib import Path
from typing import Optional

import dagster as dg
from pydantic import Field

from titlegen_assets.defs.conditions import ON_NEW_INPUTS
from titlegen_assets.defs.evaluation_checks import (GATES, GGUF_CERTIFIED, ROUGE_L, certified_ggufs, passed_gate,
                                                    require_same_champion)
from titlegen_assets.defs.guard import latest_if_version
from titlegen_assets.defs.resources import ArtifactStore, HuggingFaceHub
from titlegen_assets.export import model_card
from titlegen_assets.export.gguf_export import require_certified
from titlegen_assets.versioning.artifacts import atomic_folder
from titlegen_assets.versioning.code_version import PUBLISH_CODE
from titlegen_assets.versioning.fingerprint import fingerprint


class PublishConfig(dg.Config):
    """Where hf_repo publishes, within what the deployment allows. The token is never config: it comes only from the
    HF_TOKEN environment variable."""

    repo_id: Optional[str] = Field(
        default=None,
        description="Hub model repo, `org/name`, in a namespace the deployment allows (TITLEGEN_HUB_NAMESPACES, else "
        "HF_ORG). Default: HF_ORG / HF_REPO from the environment, HF_REPO defaulting to a name derived from the base "
        "model (e.g. titlegen-gemma-3n-e4b-it-zh-tw).")
    private: bool = Field(default=True, description="Create the repo private (the default) or public; public only "
                          "where the deployment sets TITLEGEN_ALLOW_PUBLIC=1.")
    commit_message: str = Field(default="titlegen: publish fine-tuned headline model", description="Hub commit message.")

    def resolved_repo_id(self, base_model_name: str) -> str:
        if self.repo_id:
            return self.repo_id
        org, repo = os.environ.get("HF_ORG", ""), os.environ.get("HF_REPO") or model_card.model_name_for(base_model_name)
        return f"{org}/{repo}" if org else repo


@dg.asset(group_name="publish", kinds={"huggingface"}, code_version=PUBLISH_CODE,
          automation_condition=ON_NEW_INPUTS)
def hf_repo(
    context: dg.AssetExecutionContext, config: PublishConfig, artifacts: ArtifactStore, hub: HuggingFaceHub,
    merged_hf_model: dict,
) -> dg.MaterializeResult[dict]:
    """The merged model, its certified GGUF files and its model card as one Hub commit; with no HF_TOKEN, the exact
    folder it would upload. The card is built from the lineage of the merged model it publishes.

    Refuses, before anything else, a repo or a visibility the deployment does not allow (``check_publish``). Refuses a merged model whose eval gate failed or never ran on that version (the check records say which), whose
    gate compared it with another model than the one in service now, and any file whose sha256 is not the one the
    gate certified.
    """
    repo_id = config.resolved_repo_id(merged_hf_model["base_model_name"])
    hub.check_publish(repo_id, config.private)
    evaluations = passed_gate(context, merged_hf_model, "hf_repo")
    require_same_champion(context, evaluations, merged_hf_model, "hf_repo")
    scores = evaluations[ROUGE_L].metadata["scores"].value
    thresholds = {GATES[name][0]: evaluation.metadata["threshold"].value for name, evaluation in evaluations.items()
                  if name in GATES}
    certified = certified_ggufs(evaluations)
    training = json.loads((Path(merged_hf_model["adapter_path"]) / "training_config.json").read_text())
    version = fingerprint(merged_hf_model["version"], scores, thresholds, certified, repo_id,
                          config.model_dump(exclude={"commit_message"}), PUBLISH_CODE)
    target = artifacts.path("hub", version)
    names = {quantization: f"{repo_id.split('/')[-1]}-{quantization}.gguf" for quantization in certified}
    if not target.exists():
        with atomic_folder(target) as staging:
            shutil.copytree(merged_hf_model["path"], staging, dirs_exist_ok=True)
            for quantization, sha256 in certified.items():
                source = Path(merged_hf_model["gguf"]["files"][quantization]["path"])
                shutil.copyfile(require_certified(source, sha256, "hf_repo"), staging / names[quantization])
            # the card lists every file that ships beside it, with its sha256 (so the GGUFs are copied first)
            from titlegen_assets.versioning.artifacts import STAGING_LOCK
            from titlegen_assets.versioning.fingerprint import file_sha256

            shipped = {path.relative_to(staging).as_posix(): file_sha256(path) for path in sorted(staging.rglob("*"))
                       if path.is_file() and path.relative_to(staging).as_posix() not in ("README.md", STAGING_LOCK)}
            rules = merged_hf_model["rules"]
            card = model_card.build(repo_id, merged_hf_model["base_model_name"],
                                    model_card.DataLineage(**merged_hf_model["source"]), training, scores, thresholds,
                                    (rules["title_min_chars"], rules["title_max_chars"]), shipped)
            card.save(staging / "README.md")
    for quantization, sha256 in certified.items():  # the copy that uploads is the certified file
        require_certified(target / names[quantization], sha256, "hf_repo")
    files = sorted(p.name for p in target.iterdir())
    refused = evaluations[GGUF_CERTIFIED].description
    metadata = {"repo_id": repo_id, "private": config.private, "files": ", ".join(files),
                "gguf": dg.MetadataValue.json({names[q]: sha256 for q, sha256 in certified.items()}),
                "gguf_gate": refused, "base_model": merged_hf_model["base_model_name"],
                "merged_version": merged_hf_model["version"], "path": dg.MetadataValue.path(str(target))}
    published = already_published(context.instance, version) if hub.configured() else None
    if published:
        context.log.info(f"hf_repo: version {version} is already on the Hub at {published['commit_url']}; "
                         "nothing uploaded")
        metadata.update(target_kind="hub", uploaded=False, **published)
    elif hub.configured():
        commit = hub.publish(target, repo_id, config.private, config.commit_message)
        context.log.info(f"hf_repo: pushed {len(files)} files to {commit['commit_url']}")
        metadata.update(target_kind="hub", uploaded=True, commit_url=dg.MetadataValue.url(commit["commit_url"]),
                        commit_sha=commit["commit_sha"])
    else:
        context.log.warning(f"hf_repo: HF_TOKEN is not set, so nothing was uploaded; the folder that would be "
                            f"uploaded to {repo_id} is {target}")
        metadata.update(target_kind="local folder (HF_TOKEN not set)")
    manifest = {"path": str(target), "version": version, "repo_id": repo_id,
                "merged_version": merged_hf_model["version"], "gguf": {names[q]: certified[q] for q in certified}}
    return dg.MaterializeResult(value=manifest, data_version=dg.DataVersion(version), metadata=metadata)


def already_published(instance: dg.DagsterInstance, version: str) -> dict | None:
    """The commit of the last hf_repo materialization when it uploaded this same version, else None."""
    materialization = latest_if_version(instance, dg.AssetKey("hf_repo"), version)
    if materialization is None or "commit_sha" not in materialization.metadata:
        return None
    return {"commit_url": materialization.metadata["commit_url"],
            "commit_sha": materialization.metadata["commit_sha"].value}
