"""Jobs, the retraining schedule, the Hub resource's address and token, and the GPU steps' Kubernetes request and pool."""

import json

import dagster as dg
import pytest

from titlegen_assets.definitions import defs

SEVEN = {"raw_dataset", "cleaned_splits", "lora_adapter", "merged_hf_model", "hf_repo", "ollama_model", "latency_report"}


def _assets(job_name: str) -> set[str]:
    job = defs.resolve_job_def(job_name)
    return {key.to_user_string() for key in job.asset_layer.executable_asset_keys}


def test_jobs_cover_their_stages_the_data_and_full_jobs_observe_the_source_and_the_full_pipeline_covers_all():
    assert _assets("data_job") == {"watched_source", "raw_dataset", "cleaned_splits"}
    assert _assets("training_job") == {"lora_adapter", "merged_hf_model"}
    assert _assets("publish_and_serve_job") == {"hf_repo", "ollama_model", "latency_report"}
    assert _assets("full_pipeline_job") == SEVEN | {"watched_source"}
    checks = {key.name for key in defs.resolve_job_def("full_pipeline_job").asset_layer.asset_graph.asset_check_keys}
    assert {"rouge_l", "bleu_1", "title_only_rate", "no_leakage_between_splits", "latency_spec"} <= checks


def test_retraining_schedule_is_weekly_refreshes_the_data_and_is_stopped_by_default():
    """data_job, not full_pipeline_job: the Docker stack runs data and training in two code locations."""
    schedule = defs.resolve_schedule_def("weekly_retraining")
    assert schedule.job_name == "data_job" and schedule.cron_schedule == "0 3 * * 1"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


def test_the_hub_unreachable_names_the_endpoint_tried_and_keeps_the_cause(monkeypatch, tmp_path):
    """The real HfApi against a closed loopback port: what a user behind a broken proxy or a down mirror sees."""
    from huggingface_hub import constants

    from titlegen_assets.defs.resources import HubPublishError, HuggingFaceHub

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # read once at import; the tests set it for safety
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # HF_ENDPOINT, as huggingface_hub read it
    monkeypatch.setenv("HF_TOKEN", "hf_unusedTOKEN")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(HubPublishError) as raised:
        HuggingFaceHub().publish(tmp_path, "o/r", True, "m")
    message = str(raised.value)
    assert "at http://127.0.0.1:9" in message and "HF_ENDPOINT" in message and "HF_HUB_OFFLINE" in message
    assert raised.value.__cause__ is not None and "hf_unusedTOKEN" not in message


@pytest.fixture
def recording_hub(monkeypatch):
    """A loopback server answering the Hub's dataset-revision call and recording every request it gets."""
    import http.server
    import threading

    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    requests_seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests_seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"id": "o/d", "sha": "b" * 40}).encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", requests_seen
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("field", ["endpoint", "token"])
def test_a_run_config_cannot_send_the_token_elsewhere_or_hold_one(recording_hub, monkeypatch, field):
    """The launchpad's run config for data_job, naming another Hub or a token, is refused before any request."""
    url, requests_seen = recording_hub
    monkeypatch.setenv("HF_TOKEN", "hf_deploymentSECRET")
    run_config = {"resources": {"hub": {"config": {field: url if field == "endpoint" else "hf_fromLAUNCHPAD"}}},
                  "ops": {"raw_dataset": {"config": {"source": "hub", "hf_dataset": "o/d"}}}}
    with pytest.raises(dg.DagsterInvalidConfigError, match=f'Received unexpected config entry "{field}"'):
        defs.resolve_job_def("data_job").execute_in_process(run_config=run_config)
    assert requests_seen == []


def test_the_hub_address_is_the_deployments_hf_endpoint(recording_hub, monkeypatch):
    from huggingface_hub import constants

    from titlegen_assets.defs.resources import HuggingFaceHub

    url, requests_seen = recording_hub
    monkeypatch.setattr(constants, "ENDPOINT", url)  # HF_ENDPOINT in the deployment's environment
    monkeypatch.setenv("HF_TOKEN", "hf_deploymentSECRET")
    assert HuggingFaceHub().dataset_commit("o/d", "main") == "b" * 40
    assert requests_seen == [("/api/datasets/o/d/revision/main", "Bearer hf_deploymentSECRET")]




def test_the_eval_gate_asks_kubernetes_for_a_gpu_and_shares_the_gpu_pool_with_training():
    job = defs.resolve_implicit_global_asset_job_def()
    gate, training = job.graph.node_named("eval_gate").definition, job.graph.node_named("lora_adapter").definition
    assert gate.pool == training.pool == "gpu"
    k8s = json.loads(gate.tags["dagster-k8s/config"])  # op tags hold non-string values JSON-encoded
    assert k8s["container_config"]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert gate.tags["dagster-k8s/config"] == training.tags["dagster-k8s/config"]
