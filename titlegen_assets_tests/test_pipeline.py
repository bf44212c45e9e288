"""The graph from raw data through the eval gate to hf_repo and ollama_model, on the sample with the smoke model,
across separate runs that share one Dagster instance: the gate's decision is Dagster's record of the checks."""

import dagster as dg
import pytest
from huggingface_hub import ModelCard

from titlegen_assets.defs.resources import OllamaServer
from titlegen_assets_tests.doubles.hub_double import API_DOUBLE, HubDouble, hf_api_double
from titlegen_assets_tests.doubles.ollama_server import OllamaDouble
from titlegen_assets_tests.support import demo_config, materialize, step_error

FAKE_TOKEN = "hf_FAKEtokenTITLEGENtest0123456789secret"
THROUGH_MERGE = ["raw_dataset", "cleaned_splits", "lora_adapter", "merged_hf_model"]
THROUGH_PUBLISH = [*THROUGH_MERGE, "hf_repo"]


def test_a_failing_gate_stops_hf_repo_and_ollama_model_in_that_run_and_in_later_runs(artifact_root):
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(THROUGH_PUBLISH, demo_config(rouge_l_min=0.99), instance, hub=HubDouble())
    rouge_l = next(e for e in result.get_asset_check_evaluations() if e.check_name == "rouge_l")
    assert not rouge_l.passed
    assert rouge_l.metadata["threshold"].value == 0.99 and rouge_l.metadata["missed_by"].value > 0.5
    assert "| lead-1 |" in rouge_l.metadata["baselines"].value and "| base model |" in rouge_l.metadata["baselines"].value
    materialized = {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
    assert "merged_hf_model" in materialized and "hf_repo" not in materialized

    with OllamaDouble() as server:
        for asset, resources in (("hf_repo", {"hub": HubDouble()}),
                                 ("ollama_model", {"ollama": OllamaServer(host=server.host)})):
            again = materialize([asset], demo_config(), instance, **resources)
            error = step_error(again, asset)
            assert f"{asset}: refusing merged_hf_model" in error and "rouge_l failed: rougeL" in error
            assert "missed by" in error
        assert server.blobs == {} and server.models == {}, "a refused model must not reach Ollama"
    assert not (artifact_root / "hub").exists()


def test_a_gate_that_never_ran_is_refused_with_what_to_run(artifact_root):
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(THROUGH_MERGE[:2], demo_config(), instance).success  # the data checks run
    assert materialize(THROUGH_MERGE[2:], demo_config(), instance, checks=False).success  # the gate does not
    refused = materialize(["hf_repo"], demo_config(), instance, hub=HubDouble())
    error = step_error(refused, "hf_repo")
    assert "rouge_l never ran on merged_hf_model" in error
    assert "dagster asset materialize --select merged_hf_model" in error


def test_a_passing_gate_lets_ollama_model_serve_in_a_later_run(artifact_root):
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(THROUGH_MERGE, demo_config(), instance).success
    with OllamaDouble() as server:
        served = materialize(["ollama_model"], demo_config(), instance, ollama=OllamaServer(host=server.host))
        assert served.success
        assert "titlegen-smoke-gemma3n-tiny-zh-tw:latest" in server.models


def test_a_passing_gate_publishes_in_one_commit_with_a_card_that_carries_the_lineage(artifact_root, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    config = demo_config()
    config["ops"]["hf_repo"] = {"config": {"repo_id": "titlegen-test/headlines"}}
    API_DOUBLE["api"] = api = hf_api_double("titlegen-test/headlines")
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(THROUGH_PUBLISH, config, instance, hub=HubDouble())
    assert result.success
    api.create_repo.assert_called_once_with("titlegen-test/headlines", repo_type="model", private=True, exist_ok=True)
    assert api.upload_folder.call_count == 1
    folder = api.upload_folder.call_args.kwargs["folder_path"]

    card = ModelCard.load(f"{folder}/README.md")
    raw = result.asset_materializations_for_node("raw_dataset")[0].metadata
    assert card.data.base_model == "titlegen/smoke-gemma3n-tiny" and card.data.license == "gemma"
    assert card.data.language == ["zh"]
    assert card.data.titlegen_data_source == {"kind": "sample", "location": "zh_tw_news_sample.jsonl",
                                              "revision": raw["revision"].value}
    rouge_l = next(e for e in result.get_asset_check_evaluations() if e.check_name == "rouge_l")
    scored = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert scored["rougeL"] == round(rouge_l.metadata["score"].value, 4)
    assert card.data.titlegen_gate_thresholds == {"rougeL": 0.0, "bleu1": 0.0, "title_only_rate": 0.0}
    assert "| lead-1 |" in card.text and "| base model |" in card.text and '"max_steps": 4' in card.text
    assert "titles of 8–30 characters" in card.text

    meta = result.asset_materializations_for_node("hf_repo")[0].metadata
    assert meta["commit_sha"].value == api.commits["titlegen-test/headlines"][-1].oid
    assert meta["path"].value == folder
    logs = [repr(entry) for entry in instance.all_logs(result.run_id)]
    assert logs and not any(FAKE_TOKEN in line for line in logs)
    for path in artifact_root.rglob("*"):
        if path.is_file():
            assert FAKE_TOKEN.encode() not in path.read_bytes(), path


def test_without_a_token_hf_repo_writes_the_local_folder_it_would_upload(artifact_root, monkeypatch):
    """Also a smaller gate: the first three test articles only, and no base-model baseline."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    API_DOUBLE["api"] = api = hf_api_double("x/y")
    config = demo_config(max_samples=3, compare_base_model=False)
    result = materialize(THROUGH_PUBLISH, config, dg.DagsterInstance.ephemeral(), hub=HubDouble())
    assert result.success
    rouge_l = next(e for e in result.get_asset_check_evaluations() if e.check_name == "rouge_l").metadata
    assert rouge_l["sample_size"].value == 3 and rouge_l["samples"].value.count("\n") == 1 + 3
    assert rouge_l["base_model_baseline"].value == "skipped: compare_base_model is false"
    assert set(rouge_l["scores"].value) == {"fine-tuned", "lead-1"}
    meta = result.asset_materializations_for_node("hf_repo")[0].metadata
    assert meta["target_kind"].value.startswith("local folder")
    assert "model.safetensors" in meta["files"].value and "README.md" in meta["files"].value
    api.upload_folder.assert_not_called()


@pytest.mark.parametrize(("status", "advice"), [(401, "set HF_TOKEN to a valid token"), (403, "'write' scope"),
                                                 (404, "check HF_ORG / HF_REPO")])
def test_hub_errors_explain_the_fix_and_hide_the_token(status, advice, tmp_path, monkeypatch):
    import requests
    from huggingface_hub.errors import HfHubHTTPError

    from titlegen_assets.defs.resources import HubPublishError

    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    response = requests.Response()
    response.status_code = status
    response.url = "https://huggingface.co/api/repos/create"
    API_DOUBLE["api"] = api = hf_api_double("o/r")
    api.create_repo.side_effect = HfHubHTTPError(f"{status} error for token {FAKE_TOKEN}", response=response)
    with pytest.raises(HubPublishError, match=advice) as raised:
        HubDouble().publish(tmp_path, "o/r", True, "msg")
    assert FAKE_TOKEN not in str(raised.value)


def test_a_second_run_on_unchanged_data_and_code_trains_scores_uploads_and_creates_nothing(artifact_root, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    API_DOUBLE["api"] = api = hf_api_double("titlegen-test/headlines")
    config = demo_config()
    config["ops"]["hf_repo"] = {"config": {"repo_id": "titlegen-test/headlines"}}
    instance = dg.DagsterInstance.ephemeral()
    everything = [*THROUGH_PUBLISH, "ollama_model"]
    with OllamaDouble() as server:
        first = materialize(everything, config, instance, hub=HubDouble(), ollama=OllamaServer(host=server.host))
        again = materialize(everything, config, instance, hub=HubDouble(), ollama=OllamaServer(host=server.host))
        creates = [request for request in server.requests if request == ("POST", "/api/create")]
    assert first.success and again.success
    assert api.upload_folder.call_count == 1, "the unchanged model was uploaded again"
    assert len(creates) == 1, "the unchanged model was created on Ollama again"
    logs = "\n".join(str(entry.user_message) for entry in instance.all_logs(again.run_id))
    assert "already trained" in logs and "generating nothing" in logs and "nothing uploaded" in logs
    assert "nothing re-created" in logs
    for node in ("lora_adapter", "merged_hf_model"):
        assert again.output_for_node(node)["version"] == first.output_for_node(node)["version"]
    assert again.asset_materializations_for_node("ollama_model")[0].metadata["recreated"].value is False


def test_a_retrained_model_is_judged_against_the_model_in_service_and_a_worse_one_never_replaces_it(artifact_root):
    """Model A is served; B (one training step) is scored beside A on the same articles in B's gate. The check's
    verdict must follow the paired differences it reports, and a refused B must leave A in service."""
    instance = dg.DagsterInstance.ephemeral()
    with OllamaDouble() as server:
        ollama = OllamaServer(host=server.host)
        assert materialize([*THROUGH_MERGE, "ollama_model"], demo_config(max_steps=30), instance, ollama=ollama).success
        challenger = materialize(THROUGH_MERGE, demo_config(max_steps=1, champion_margin=0.0), instance)
        check = next(e for e in challenger.get_asset_check_evaluations() if e.check_name == "not_worse_than_champion")
        comparison = check.metadata["comparison"].value
        assert set(comparison) == {"rougeL", "bleu1", "title_only_rate"}
        assert check.passed == all(row["difference"] >= 0.0 for row in comparison.values())
        assert all(row["champion"] == pytest.approx(row["challenger"] - row["difference"]) for row in comparison.values())
        served = materialize(["ollama_model"], demo_config(), instance, ollama=ollama)
        creates = [request for request in server.requests if request == ("POST", "/api/create")]
        if check.passed:
            assert served.success and len(creates) == 2
        else:
            assert "not_worse_than_champion failed" in step_error(served, "ollama_model")
            assert "champion" in check.description and len(creates) == 1, "the champion stays served"


@pytest.mark.parametrize(("existing", "private", "uploaded", "fix"), [
    (False, True, False, "make it private in the repo's Settings on the Hub (or `HfApi().update_repo_settings('o/r', "
                         "private=True)`), or set hf_repo's `private: false`"),
    (True, False, False, "make it public in the repo's Settings"),
    (True, True, True, None), (False, False, True, None), (None, True, True, None),
])
def test_publish_checks_the_existing_repos_visibility_before_uploading(existing, private, uploaded, fix, tmp_path,
                                                                        monkeypatch):
    """create_repo(exist_ok=True) keeps an existing repo's visibility (huggingface_hub 2.4.0), so publish compares
    it with ``private`` and uploads nothing on a mismatch; a new repo is created with the visibility asked for."""
    from titlegen_assets.defs.resources import RepoVisibilityMismatch

    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    API_DOUBLE["api"] = api = hf_api_double("o/r", existing_private=existing)
    if uploaded:
        assert HubDouble().publish(tmp_path, "o/r", private, "msg")["commit_sha"] == api.commits["o/r"][-1].oid
    else:
        with pytest.raises(RepoVisibilityMismatch, match="nothing was uploaded") as raised:
            HubDouble().publish(tmp_path, "o/r", private, "msg")
        assert fix in str(raised.value) and FAKE_TOKEN not in str(raised.value)
    assert api.upload_folder.called is uploaded
    assert api.repos == {"o/r": private if existing is None else existing}
