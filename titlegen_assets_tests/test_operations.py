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

        def do_HEAD(self):  # a file's metadata: nothing here
            requests_seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(404)
            self.end_headers()

        do_POST = do_HEAD

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
    monkeypatch.setenv("HF_ORG", "o")  # a namespace the deployment reads with its token
    assert HuggingFaceHub().dataset_commit("o/d", "main") == "b" * 40
    assert requests_seen == [("/api/datasets/o/d/revision/main", "Bearer hf_deploymentSECRET")]


# --- issue 29: the deployment decides what runs may do with what it holds ------------------------------------------

#: What a run config names, read in a child whose HF_ENDPOINT is the recording server: the dataset's commit, the
#: dataset through datasets' builder, and a base model as lora_adapter resolves it (the token the resource decides).
READ_IN_A_CHILD = """
import sys
import tempfile
from pathlib import Path

from titlegen_assets.data.sources import read_source
from titlegen_assets.defs.resources import HuggingFaceHub
from titlegen_assets.training.base_model import resolve_base_model

hub, dataset, model = HuggingFaceHub(), sys.argv[1], sys.argv[2]
for read in (lambda: hub.dataset_commit(dataset, "main"),
             lambda: read_source("hub", dataset, "main", "train", None, "content", "title", hub.dataset_commit,
                                 token=hub.read_token(dataset)),
             lambda: resolve_base_model(model, Path(tempfile.mkdtemp()), token=hub.read_token(model))):
    try:
        read()
    except Exception as error:  # the recording server answers no read in full: only what was sent matters
        print(type(error).__name__, str(error)[:300])
"""


@pytest.mark.parametrize(("namespaces", "sent"), [
    ({"HF_ORG": "our-team"}, None),  # another team's repos: asked for as anyone would
    ({"HF_ORG": "our-team", "TITLEGEN_HUB_READ_NAMESPACES": "other-team"}, "Bearer hf_deploymentSECRET"),
    ({"TITLEGEN_HUB_NAMESPACES": "our-team,other-team"}, "Bearer hf_deploymentSECRET"),
])
def test_a_run_config_naming_another_namespaces_dataset_or_base_model_reads_it_without_the_token(
        recording_hub, tmp_path, namespaces, sent):
    """hf_dataset and base_model name any repo; the token goes with a read only where the deployment allows it, so
    a private or gated repo of another team stays out of reach (the Hub answers an anonymous read 401/404)."""
    import os
    import subprocess
    import sys

    url, requests_seen = recording_hub
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TITLEGEN_HUB"))}, **namespaces,
           "HF_ENDPOINT": url, "HF_TOKEN": "hf_deploymentSECRET", "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0",
           "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    child = subprocess.run([sys.executable, "-c", READ_IN_A_CHILD, "other-team/private-news",
                            "other-team/private-model"], capture_output=True, text=True, env=env, timeout=300)
    assert child.returncode == 0, child.stderr
    asked = ("/api/datasets/other-team/private-news/revision/main",  # the commit
             "/datasets/other-team/private-news/resolve/",  # datasets' builder reading the repo's files
             "/api/models/other-team/private-model")  # the base model's commit
    assert all(any(path.startswith(prefix) for path, _ in requests_seen) for prefix in asked), requests_seen
    assert {authorization for _, authorization in requests_seen} == {sent}, requests_seen


@pytest.mark.parametrize(("env", "hf_repo_config", "refusal"), [
    ({"HF_ORG": "our-team"}, {"repo_id": "other-team/headlines"},
     r"other-team/headlines is in the namespace 'other-team', and this deployment publishes only to our-team "
     r"\(TITLEGEN_HUB_NAMESPACES, else HF_ORG\); nothing was sent to the Hub.*add other-team to TITLEGEN_HUB_NAMESPACES"),
    ({"HF_ORG": "other-team", "TITLEGEN_HUB_NAMESPACES": "our-team, lab"}, {"repo_id": "other-team/headlines"},
     r"publishes only to our-team, lab"),
    ({"HF_ORG": "our-team"}, {"repo_id": "headlines"},
     r"headlines names no namespace, so the Hub would put it under the token's own account.*set repo_id to "
     r"our-team/headlines"),
    ({}, {"repo_id": "other-team/headlines"}, r"this deployment names no namespace to publish to"),
    ({"HF_ORG": "our-team"}, {"repo_id": "our-team/../other-team"}, r"is not a Hub repo id"),
    ({"HF_ORG": "our-team"}, {"private": False},
     r"private is false, which would publish our-team/titlegen-m for anyone to read, and this deployment does not "
     r"allow public publishing; nothing was sent to the Hub: keep private: true, or have the operator set "
     r"TITLEGEN_ALLOW_PUBLIC=1"),
    ({"HF_ORG": "our-team", "TITLEGEN_ALLOW_PUBLIC": "0"}, {"private": False}, r"TITLEGEN_ALLOW_PUBLIC=1"),
])
def test_hf_repo_refuses_a_namespace_or_a_visibility_the_deployment_did_not_allow_before_any_request(
        artifact_root, monkeypatch, env, hf_repo_config, refusal):
    from titlegen_assets.defs.publish_assets import PublishConfig, hf_repo
    from titlegen_assets.defs.resources import ArtifactStore, HubPublishRefused
    from titlegen_assets_tests.doubles.hub_double import API_DOUBLE, HubDouble, hf_api_double

    for name in ("HF_ORG", "HF_REPO", "TITLEGEN_HUB_NAMESPACES", "TITLEGEN_ALLOW_PUBLIC"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"HF_TOKEN": "hf_deploymentSECRET", "HF_REPO": "titlegen-m", **env}.items():
        monkeypatch.setenv(name, value)
    API_DOUBLE["api"] = api = hf_api_double("other-team/headlines", existing_private=True)
    with pytest.raises(HubPublishRefused, match=refusal):
        hf_repo(dg.build_asset_context(), config=PublishConfig(**hf_repo_config), artifacts=ArtifactStore(),
                hub=HubDouble(), merged_hf_model={"base_model_name": "m"})
    assert api.mock_calls == [], "a request reached the Hub"


@pytest.mark.parametrize(("env", "repo_id", "private"), [
    ({"HF_ORG": "our-team"}, "our-team/headlines", True),
    ({"HF_ORG": "our-team", "TITLEGEN_HUB_NAMESPACES": "lab,our-team"}, "lab/headlines", True),
    ({"HF_ORG": "our-team", "TITLEGEN_ALLOW_PUBLIC": "1"}, "our-team/headlines", False),
    ({}, "headlines", True),  # a laptop: no namespace named, the token's own account
])
def test_what_the_deployment_allows_is_published(monkeypatch, env, repo_id, private):
    from titlegen_assets.defs.resources import HuggingFaceHub

    for name in ("HF_ORG", "TITLEGEN_HUB_NAMESPACES", "TITLEGEN_ALLOW_PUBLIC"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    HuggingFaceHub().check_publish(repo_id, private)


@pytest.mark.parametrize(("resource", "config", "entry"), [
    ("ollama", {"host": "http://169.254.169.254"}, "host"),  # cloud metadata, or any address of the launcher's
    ("artifacts", {"root": "/var/lib/other-team"}, "root"),  # the IO manager's store is the same, never config
])
def test_a_run_config_cannot_point_ollama_or_the_artifact_root_elsewhere(artifact_root, monkeypatch, tmp_path,
                                                                         resource, config, entry):
    """The Ollama address and the artifact root are the deployment's (OLLAMA_HOST, TITLEGEN_HOME): Dagster refuses the
    run config before any step, and the Ollama double saw no request."""
    from titlegen_assets_tests.doubles.ollama_server import OllamaDouble

    with OllamaDouble() as server:
        monkeypatch.setenv("OLLAMA_HOST", server.host)
        with pytest.raises(dg.DagsterInvalidConfigError,
                           match=f'Received unexpected config entry "{entry}" at path root:resources:{resource}'):
            defs.resolve_job_def("publish_and_serve_job").execute_in_process(
                run_config={"resources": {resource: {"config": config}}})
    assert server.requests == []
    assert not list(artifact_root.iterdir())


def test_hf_endpoint_and_the_hub_rules_reach_every_service_and_run_that_holds_the_token():
    """A private Hub's token never goes to the public Hub: wherever HF_TOKEN goes (compose's services, the run
    containers dagster.yaml starts, the Helm deployment whose env its run pods take), HF_ENDPOINT goes too, and the
    namespaces and public-publishing rule the runs check."""
    from pathlib import Path

    import yaml

    docker = Path(__file__).resolve().parents[1] / "docker"
    rules = {"HF_ENDPOINT", "TITLEGEN_HUB_NAMESPACES", "TITLEGEN_HUB_READ_NAMESPACES", "TITLEGEN_ALLOW_PUBLIC"}
    compose = yaml.safe_load((docker / "compose.yaml").read_text())
    holders = {name: service["environment"] for name, service in compose["services"].items()
               if "HF_TOKEN" in service.get("environment", {})}
    assert holders and all(rules <= set(env) for env in holders.values()), holders
    assert all(env["HF_ENDPOINT"] == "${HF_ENDPOINT:-https://huggingface.co}" for env in holders.values())
    forwarded = yaml.safe_load((docker / "dagster.yaml").read_text())["run_launcher"]["config"]["env_vars"]
    assert "HF_TOKEN" in forwarded and rules <= set(forwarded), forwarded
    values = yaml.safe_load((docker / "k8s" / "values.yaml").read_text())
    for deployment in values["dagster-user-deployments"]["deployments"]:
        if "titlegen-hf-token" in {secret["name"] for secret in deployment.get("envSecrets", [])}:
            assert "HF_ENDPOINT" in {variable["name"] for variable in deployment["env"]}, deployment["name"]




def test_the_eval_gate_asks_kubernetes_for_a_gpu_and_shares_the_gpu_pool_with_training():
    job = defs.resolve_implicit_global_asset_job_def()
    gate, training = job.graph.node_named("eval_gate").definition, job.graph.node_named("lora_adapter").definition
    assert gate.pool == training.pool == "gpu"
    k8s = json.loads(gate.tags["dagster-k8s/config"])  # op tags hold non-string values JSON-encoded
    assert k8s["container_config"]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert gate.tags["dagster-k8s/config"] == training.tags["dagster-k8s/config"]
