"""The graph from raw data through the eval gate to hf_repo and ollama_model, on the sample with the smoke model,
across separate runs that share one Dagster instance: the gate's decision is Dagster's record of the checks."""

import json
from pathlib import Path

import dagster as dg
import pytest
from huggingface_hub import ModelCard

from titlegen_assets_tests.doubles.hub_double import API_DOUBLE, HubDouble, hf_api_double
from titlegen_assets_tests.doubles.ollama_server import OllamaDouble
from titlegen_assets_tests.support import demo_config, materialize, ollama_at, step_error

FAKE_TOKEN = "hf_FAKEtokenTITLEGENtest0123456789secret"
THROUGH_MERGE = ["raw_dataset", "cleaned_splits", "lora_adapter", "merged_hf_model"]
THROUGH_PUBLISH = [*THROUGH_MERGE, "hf_repo"]


def test_a_failing_gate_stops_hf_repo_and_ollama_model_in_that_run_and_in_later_runs(artifact_root, monkeypatch):
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
                                 ("ollama_model", {"ollama": ollama_at(monkeypatch, server)})):
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


def test_a_passing_gate_lets_ollama_model_serve_in_a_later_run(artifact_root, monkeypatch):
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(THROUGH_MERGE, demo_config(), instance).success
    with OllamaDouble() as server:
        served = materialize(["ollama_model"], demo_config(), instance, ollama=ollama_at(monkeypatch, server))
        assert served.success
        assert "titlegen-smoke-gemma3n-tiny-zh-tw:latest" in server.models


def test_a_passing_gate_publishes_in_one_commit_with_a_card_that_carries_the_lineage(artifact_root, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("HF_ORG", "titlegen-test")  # the deployment's organisation: where runs may publish
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


def count_generation(monkeypatch) -> dict[str, int]:
    """Counts every batch of titles generated from here on, with transformers or through llama-server."""
    from titlegen_assets.evaluation import generation, gguf_scoring

    counts = {"transformers": 0, "llama-server": 0}
    for module, name, kind in ((generation, "generate_titles", "transformers"),
                               (gguf_scoring, "gguf_answers", "llama-server")):
        def counted(*args, _real=getattr(module, name), _kind=kind, **kwargs):
            counts[_kind] += 1
            return _real(*args, **kwargs)
        monkeypatch.setattr(module, name, counted)
    return counts


def test_a_second_run_on_unchanged_data_and_code_trains_generates_uploads_creates_and_asks_nothing(artifact_root, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("HF_ORG", "titlegen-test")
    API_DOUBLE["api"] = api = hf_api_double("titlegen-test/headlines")
    config = demo_config()
    config["ops"]["hf_repo"] = {"config": {"repo_id": "titlegen-test/headlines"}}
    instance = dg.DagsterInstance.ephemeral()
    everything = [*THROUGH_PUBLISH, "ollama_model"]
    with OllamaDouble() as server:
        generated = count_generation(monkeypatch)
        first = materialize(everything, config, instance, hub=HubDouble(), ollama=ollama_at(monkeypatch, server))
        asked_before = server.requests.count(("POST", "/api/generate"))
        assert generated["transformers"] > 0 and generated["llama-server"] > 0, "the counters count"
        generated.update(transformers=0, **{"llama-server": 0})
        again = materialize(everything, config, instance, hub=HubDouble(), ollama=ollama_at(monkeypatch, server))
        creates = [request for request in server.requests if request == ("POST", "/api/create")]
        asked_again = server.requests.count(("POST", "/api/generate")) - asked_before
    assert first.success and again.success
    assert asked_before > 0 and asked_again == 0, "the unchanged served model was asked again"
    assert generated == {"transformers": 0, "llama-server": 0}, "the unchanged run generated titles"
    assert api.upload_folder.call_count == 1, "the unchanged model was uploaded again"
    assert len(creates) == 1, "the unchanged model was created on Ollama again"
    logs = "\n".join(str(entry.user_message) for entry in instance.all_logs(again.run_id))
    assert "already trained" in logs and "generating nothing" in logs and "nothing uploaded" in logs
    assert "nothing re-created" in logs
    for node in ("lora_adapter", "merged_hf_model"):
        assert again.output_for_node(node)["version"] == first.output_for_node(node)["version"]
    assert again.asset_materializations_for_node("ollama_model")[0].metadata["recreated"].value is False


def mute_copy(smoke_base_model: str, target) -> str:
    """The smoke base model with its (tied) embedding zeroed: every logit but the trained turn tokens' is 0, so a
    model fine-tuned from it can only emit special tokens and every title it writes is empty. A challenger made
    worse on purpose."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(smoke_base_model, target)
    weights = load_file(str(target / "model.safetensors"))
    weights["model.embed_tokens.weight"].zero_()
    save_file(weights, str(target / "model.safetensors"), metadata={"format": "pt"})
    return str(target)


def gate_report(result) -> dict:
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "rouge_l")
    return json.loads(Path(check.metadata["predictions"].value).read_text(encoding="utf-8"))


def test_a_challenger_is_scored_beside_the_model_in_service_and_only_a_worse_one_is_refused(artifact_root,
                                                                                           smoke_base_model, tmp_path):
    """Model A is published. B is A's training again with another logging interval (a new version, the same
    weights): its titles are A's, it is accepted. C is trained from a muted base (every title empty): it is
    refused and A stays in service. Each branch is asserted, and the gate is shown to have scored A itself."""
    instance = dg.DagsterInstance.ephemeral()

    def config(**training):
        chosen = demo_config(max_steps=4, champion_margin=0.0, compare_base_model=False)
        chosen["ops"]["merged_hf_model"]["config"]["gguf"] = "none"
        chosen["ops"]["lora_adapter"]["config"].update(training)
        return chosen

    served = materialize([*THROUGH_PUBLISH], config(), instance, hub=HubDouble())
    assert served.success
    champion_titles = gate_report(served)["systems"]["fine-tuned"]
    assert any(champion_titles)

    same = materialize(THROUGH_MERGE, config(logging_steps=2), instance)
    accepted = next(e for e in same.get_asset_check_evaluations() if e.check_name == "not_worse_than_champion")
    systems = gate_report(same)["systems"]
    assert systems["in service"] == champion_titles, "the gate scored the model in service, not the challenger"
    assert systems["fine-tuned"] == champion_titles and accepted.passed
    assert accepted.metadata["champion_version"].value == served.output_for_node("merged_hf_model")["version"]

    worse = materialize(THROUGH_MERGE, config(base_model=mute_copy(smoke_base_model, tmp_path / "mute")), instance)
    refused = next(e for e in worse.get_asset_check_evaluations() if e.check_name == "not_worse_than_champion")
    systems = gate_report(worse)["systems"]
    assert systems["fine-tuned"] == [""] * len(champion_titles) and systems["in service"] == champion_titles
    assert not refused.passed and "title_only_rate" in refused.description
    error = step_error(materialize(["hf_repo"], config(), instance, hub=HubDouble()), "hf_repo")
    assert "not_worse_than_champion failed" in error
    latest = instance.get_latest_materialization_event(dg.AssetKey("hf_repo")).asset_materialization
    assert latest.metadata["merged_version"].value == served.output_for_node("merged_hf_model")["version"]


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
