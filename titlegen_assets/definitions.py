"""The code location: assets, checks, jobs, schedules, sensors and resources. Only assembles; stays light to import."""

import os

import dagster as dg

from titlegen_assets.defs.automation import (
    data_change_sensor,
    data_job,
    full_pipeline_job,
    publish_and_serve_job,
    retraining_schedule,
    training_job,
)
from titlegen_assets.defs.data import cleaned_splits, raw_dataset
from titlegen_assets.defs.data_checks import cleaned_splits_checks
from titlegen_assets.defs.eval_gate import eval_gate
from titlegen_assets.defs.publish import hf_repo
from titlegen_assets.defs.serving import latency_report, latency_spec, ollama_model
from titlegen_assets.defs.training import lora_adapter, merged_hf_model
from titlegen_assets.io_manager import ManifestIOManager
from titlegen_assets.resources import ArtifactStore, HuggingFaceHub, OllamaServer


def _executor():
    """TITLEGEN_EXECUTOR=k8s runs each step in its own pod (Helm deployments), so GPU steps get the GPU request."""
    if os.environ.get("TITLEGEN_EXECUTOR") == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    return None


defs = dg.Definitions(
    assets=[raw_dataset, cleaned_splits, lora_adapter, merged_hf_model, hf_repo, ollama_model, latency_report],
    asset_checks=[cleaned_splits_checks, eval_gate, latency_spec],
    jobs=[data_job, training_job, publish_and_serve_job, full_pipeline_job],
    schedules=[retraining_schedule],
    sensors=[data_change_sensor],
    executor=_executor(),
    resources={
        "artifacts": ArtifactStore(),
        # step outputs on the artifact root, so a later run in another process, container or pod can load them
        "io_manager": ManifestIOManager(artifacts=ArtifactStore()),
        "ollama": OllamaServer(),
        "hub": HuggingFaceHub(),  # reads HF_TOKEN / HF_ENDPOINT when it is used, so no secret lands in a snapshot
    },
)
