"""The graph from raw data through the eval gate and hf_repo, on the sample with the smoke model."""

import copy
from importlib import resources as pkg_resources

import dagster as dg
import pytest
import yaml

from titlegen_assets.definitions import defs
from titlegen_assets.resources import ArtifactStore, OllamaServer
from titlegen_assets_tests.doubles.hub_double import API_DOUBLE, HubDouble, hf_api_double

FAKE_TOKEN = "hf_FAKEtokenTITLEGENtest0123456789secret"
THROUGH_PUBLISH = ["raw_dataset", "cleaned_splits", "lora_adapter", "merged_hf_model", "hf_repo"]


def demo_config(**eval_overrides) -> dict:
    config = yaml.safe_load((pkg_resources.files("titlegen_assets") / "configs" / "demo.yaml").read_text())
    config = copy.deepcopy(config)
    config["ops"]["lora_adapter"]["config"]["max_steps"] = 4
    config["ops"]["eval_gate"]["config"].update(eval_overrides)
    return config


def resources_for(artifact_root, hub) -> dict:
    return {"artifacts": ArtifactStore(root=str(artifact_root)), "hub": hub,
            "io_manager": dg.FilesystemIOManager(base_dir=str(artifact_root.parent / "io")),  # shared between runs
            "ollama": OllamaServer(host="127.0.0.1:9")}  # the serving assets are not selected in these tests


def run(artifact_root, hub, run_config, instance=None):
    for serving_op in ("ollama_model", "latency_report"):  # not selected here, so they take no config
        run_config["ops"].pop(serving_op, None)
    return dg.materialize(
        [*defs.assets, *defs.asset_checks], selection=THROUGH_PUBLISH, run_config=run_config,
        resources=resources_for(artifact_root, hub),
        raise_on_error=False, instance=instance,
    )


def test_a_failing_gate_stops_hf_repo_and_says_which_metric_missed_by_how_much(artifact_root):
    result = run(artifact_root, HubDouble(), demo_config(rouge_l_min=0.99))
    rouge_l = next(e for e in result.get_asset_check_evaluations() if e.check_name == "rouge_l")
    assert not rouge_l.passed
    assert rouge_l.metadata["threshold"].value == 0.99 and rouge_l.metadata["missed_by"].value > 0.5
    assert "missed by" in rouge_l.description
    assert "| lead-1 |" in rouge_l.metadata["baselines"].value and "| base model |" in rouge_l.metadata["baselines"].value
    materialized = {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
    assert "merged_hf_model" in materialized and "hf_repo" not in materialized
    assert not (artifact_root / "hub").exists()

    again = dg.materialize([*defs.assets, *defs.asset_checks], selection=["hf_repo"], raise_on_error=False,
                           resources=resources_for(artifact_root, HubDouble()),
                           run_config={"ops": {"hf_repo": {"config": {"repo_id": "o/r"}}}})
    failure = again.get_step_failure_events()[0].event_specific_data.error.to_string()
    assert "the eval gate failed for this model (rougeL" in failure and not (artifact_root / "hub").exists()


def test_a_passing_gate_publishes_in_one_commit_and_the_token_appears_nowhere(artifact_root, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    config = demo_config()
    config["ops"]["hf_repo"] = {"config": {"repo_id": "titlegen-test/headlines"}}
    API_DOUBLE["api"] = api = hf_api_double("titlegen-test/headlines")
    instance = dg.DagsterInstance.ephemeral()
    result = run(artifact_root, HubDouble(), config, instance)
    assert result.success
    api.create_repo.assert_called_once_with("titlegen-test/headlines", repo_type="model", private=True, exist_ok=True)
    assert api.upload_folder.call_count == 1
    folder = api.upload_folder.call_args.kwargs["folder_path"]
    card = (artifact_root / "hub").joinpath(*folder.split("/hub/")[1:], "README.md").read_text()
    assert card.startswith("---\nlicense: gemma\n") and "rougeL" in card and "smoke model" in card
    meta = result.asset_materializations_for_node("hf_repo")[0].metadata
    assert meta["commit_sha"].value == "0123456789abcdef0123456789abcdef01234567"

    logs = [repr(entry) for entry in instance.all_logs(result.run_id)]
    assert logs and not any(FAKE_TOKEN in line for line in logs)
    for path in artifact_root.rglob("*"):
        if path.is_file():
            assert FAKE_TOKEN.encode() not in path.read_bytes(), path


def test_without_a_token_hf_repo_writes_the_local_folder_it_would_upload(artifact_root, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    API_DOUBLE["api"] = api = hf_api_double("x/y")
    result = run(artifact_root, HubDouble(), demo_config())
    assert result.success
    meta = result.asset_materializations_for_node("hf_repo")[0].metadata
    assert meta["target_kind"].value.startswith("local folder")
    assert "model.safetensors" in meta["files"].value and "README.md" in meta["files"].value
    api.upload_folder.assert_not_called()


@pytest.mark.parametrize(("status", "advice"), [(401, "set HF_TOKEN to a valid token"), (403, "'write' scope"),
                                                 (404, "check HF_ORG / HF_REPO")])
def test_hub_errors_explain_the_fix_and_hide_the_token(status, advice, tmp_path):
    import requests
    from huggingface_hub.errors import HfHubHTTPError

    from titlegen_assets.resources import HubPublishError

    response = requests.Response()
    response.status_code = status
    response.url = "https://huggingface.co/api/repos/create"
    API_DOUBLE["api"] = api = hf_api_double("o/r")
    api.create_repo.side_effect = HfHubHTTPError(f"{status} error for token {FAKE_TOKEN}", response=response)
    with pytest.raises(HubPublishError, match=advice) as raised:
        HubDouble(token=FAKE_TOKEN).publish(tmp_path, "o/r", True, "msg")
    assert FAKE_TOKEN not in str(raised.value)
