"""The production Docker stack, run for real: images built from docker/, compose's PostgreSQL, code location,
webserver and daemon, and three runs launched through the daemon as a user would (GraphQL against the webserver),
each in its own run container started by GpuAwareDockerRunLauncher, sharing their outputs on the artifacts volume.

Run with ``python -m pytest -m docker`` (about 10 minutes the first time; see benchmarks/RESULTS.md). Left out here:
the GPU image (nvidia/cuda base) and Ollama's image cannot be pulled or built without a registry; the training run
is routed as a GPU run with the NVIDIA device request, but starts from the CPU image (TITLEGEN_GPU_IMAGE).
"""

from pathlib import Path

import pytest
import yaml
from dagster._core.storage.tags import DOCKER_IMAGE_TAG
from dagster_docker.docker_run_launcher import DOCKER_CONTAINER_ID_TAG

from titlegen_assets_tests import docker_stack
from titlegen_assets_tests.docker_stack import CPU_IMAGE, docker

pytestmark = pytest.mark.docker

# the smoke model's config: the real 270M demo is minutes of CPU training and not in the CPU image
DEMO_OPS = yaml.safe_load((docker_stack.REPO / "titlegen_assets" / "configs" / "smoke.yaml").read_text())["ops"]
SHORT_TRAINING = {"max_steps": 2, "checkpoint_steps": 2, "logging_steps": 1}
RUN_TIMEOUT_S = 600


def smoke_config(*ops: str, **overrides: dict) -> dict:
    """The smoke run config for these ops only (a run refuses config for ops it does not execute)."""
    return {"ops": {op: {"config": {**DEMO_OPS[op]["config"], **overrides.get(op, {})}} for op in ops}}


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """Engine, images and stack up; data_job, training_job and hf_repo alone launched one after the other."""
    from dagster_graphql import DagsterGraphQLClient

    workdir = tmp_path_factory.mktemp("docker_stack")
    hook_log = workdir / "nvidia-hook.log"
    hook_log.touch()
    with docker_stack.docker_engine(hook_log) as started_engine:
        existing = docker("volume", "ls", "-q", "--filter", "name=titlegen_artifacts").stdout.split()
        if "titlegen_artifacts" in existing:
            pytest.fail("a titlegen_artifacts volume exists already (a real stack's, or a crashed suite's): this "
                        "suite removes its volumes at the end, so it will not run beside it. Remove it with "
                        "`docker volume rm titlegen_artifacts titlegen_compute_logs` if it is disposable")
        docker_stack.make_base_images()
        if not started_engine:
            docker_stack.require_nvidia_device_requests()
        docker_stack.build_cpu_image()
        with docker_stack.compose_stack(workdir) as stack:
            client = DagsterGraphQLClient("127.0.0.1", port_number=stack.ui_port)
            runs = {}
            for name, submit in [
                ("data", dict(job_name="data_job", run_config=smoke_config("raw_dataset", "cleaned_splits"))),
                ("training", dict(job_name="training_job", run_config=smoke_config(
                    "lora_adapter", "eval_gate", lora_adapter=SHORT_TRAINING))),
                ("publish", dict(job_name="__ASSET_JOB", asset_selection=["hf_repo"],
                                 run_config=smoke_config("hf_repo"))),
            ]:
                run_id = client.submit_job_execution(**submit)
                docker_stack.log(f"{name} run {run_id} submitted")
                runs[name] = {"run_id": run_id, **docker_stack.follow_run(client, run_id, RUN_TIMEOUT_S)}
                if runs[name]["status"].value != "SUCCESS":
                    runs[name]["failures"] = docker_stack.failure_messages(stack, run_id)
                docker_stack.log(f"{name} run finished: {runs[name]['status'].value}")
            yield {"runs": runs, "stack": stack, "client": client, "hook_log": hook_log,
                   "started_engine": started_engine}


def the_container(launched, name: str) -> dict:
    containers = launched["runs"][name]["containers"]
    assert len(containers) == 1, f"{name} run: expected one run container, saw {len(containers)}"
    return next(iter(containers.values()))


def test_each_run_succeeds_and_postgres_records_its_success(launched):
    from dagster import DagsterEventType

    stack = launched["stack"]
    for name, run in launched["runs"].items():
        assert run["status"].value == "SUCCESS", (f"{name} run {run['run_id']} ended {run['status'].value}: "
                                                  + "\n".join(run.get("failures", [])))
        rows = stack.psql(f"select status from runs where run_id = '{run['run_id']}'")
        assert rows == [["SUCCESS"]], rows
        events = stack.psql(f"select count(*) from event_logs where run_id = '{run['run_id']}' "
                            f"and dagster_event_type = '{DagsterEventType.RUN_SUCCESS.value}'")
        assert events == [["1"]], f"{name}: no RUN_SUCCESS event in PostgreSQL"


def test_each_run_ran_in_its_own_container_started_by_the_gpu_aware_launcher(launched):
    ids = [next(iter(r["containers"])) for r in launched["runs"].values() if r["containers"]]
    assert len(set(ids)) == 3, "three runs, three run containers"
    for name, run in launched["runs"].items():
        attrs = the_container(launched, name)
        assert attrs["Config"]["Labels"]["dagster/run_id"] == run["run_id"]
        assert "titlegen_artifacts:/artifacts" in attrs["HostConfig"]["Binds"]
        assert attrs["HostConfig"]["AutoRemove"] is True
        tags = launched["stack"].graphql("""query($id: ID!) { runOrError(runId: $id) { ... on Run {
            tags { key value } } } }""", {"id": run["run_id"]})["runOrError"]["tags"]
        recorded = {t["key"]: t["value"] for t in tags}  # what the launcher wrote on the run, as the UI shows it
        assert recorded[DOCKER_CONTAINER_ID_TAG] == attrs["Id"], name
        assert recorded[DOCKER_IMAGE_TAG] == attrs["Config"]["Image"], name


def test_only_the_training_run_gets_the_gpu_image_setting_and_the_nvidia_device_request(launched):
    training = the_container(launched, "training")
    # GPU runs start from TITLEGEN_GPU_IMAGE, which this GPU-less suite maps to the CPU image.
    assert training["Config"]["Image"] == CPU_IMAGE
    [request] = training["HostConfig"]["DeviceRequests"]
    assert (request["Driver"], request["Count"], request["Capabilities"]) == ("nvidia", -1, [["gpu"]])
    for name in ("data", "publish"):
        attrs = the_container(launched, name)
        assert attrs["Config"]["Image"] == CPU_IMAGE
        assert not attrs["HostConfig"]["DeviceRequests"], f"{name} run must not ask for a GPU"


def test_the_nvidia_device_request_reaches_the_runtime_for_the_training_container_only(launched):
    if not launched["started_engine"]:
        pytest.skip("the engine was already running: its NVIDIA hook is not this suite's stand-in to read")
    hooked = set(Path(launched["hook_log"]).read_text().split())
    containers = {name: next(iter(r["containers"])) for name, r in launched["runs"].items()}
    assert containers["training"] in hooked
    assert not hooked & {containers["data"], containers["publish"]}


def test_finished_run_containers_are_removed(launched):
    for name, run in launched["runs"].items():
        assert docker_stack.run_containers(run["run_id"]) == [], f"{name} run container still there"


def test_every_asset_of_the_three_runs_is_on_the_shared_volume(launched):
    """The folders and the manifests the IO manager wrote, read back from the volume by a fresh container."""
    listing = docker("run", "--rm", "-v", "titlegen_artifacts:/artifacts:ro", "--entrypoint", "find", CPU_IMAGE,
                     "/artifacts", "-mindepth", "2", "-maxdepth", "2").stdout.split()
    found = {Path(p).relative_to("/artifacts").parts for p in listing}
    manifests = {name.removesuffix(".json") for kind, name in found if kind == "manifests"}
    assert {"raw_dataset", "cleaned_splits", "lora_adapter", "merged_hf_model", "hf_repo"} <= manifests, manifests
    assert {"raw", "splits", "adapters", "merged", "hub"} <= {kind for kind, _ in found}, found
    materialized = launched["stack"].graphql(
        """query { assetNodes { assetKey { path } assetMaterializations(limit: 1) { runId metadataEntries {
           label ... on PathMetadataEntry { path } } } } }""")
    paths = {}
    for node in materialized["assetNodes"]:
        for event in node["assetMaterializations"]:
            paths[node["assetKey"]["path"][-1]] = [e.get("path") for e in event["metadataEntries"] if e.get("path")]
    assert {"raw_dataset", "cleaned_splits", "lora_adapter", "merged_hf_model", "hf_repo"} <= set(paths), paths
    for asset, asset_paths in paths.items():
        assert asset_paths and all(p.startswith("/artifacts/") for p in asset_paths), (asset, asset_paths)


def test_step_logs_of_run_containers_are_served_by_the_webserver(launched):
    run_id = launched["runs"]["data"]["run_id"]
    result = launched["stack"].graphql(
        """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events { __typename
           ... on LogsCapturedEvent { fileKey stepKeys } } } } }""", {"id": run_id})
    captured = [e for e in result["logsForRun"]["events"] if e["__typename"] == "LogsCapturedEvent"]
    assert captured, "the run container reported no captured step logs"
    file_key = captured[0]["fileKey"]
    logs = launched["stack"].graphql(
        """query($key: [String!]!) { capturedLogs(logKey: $key) { stderr stdout } }""",
        {"key": [run_id, "compute_logs", file_key]})["capturedLogs"]
    assert "raw_dataset" in (logs["stderr"] or "") + (logs["stdout"] or ""), logs


def test_the_suites_gpu_image_mapping_reaches_the_daemon_through_compose_v1(launched):
    resolved = yaml.safe_load(launched["stack"].compose("config").stdout)
    assert resolved["services"]["daemon"]["environment"]["TITLEGEN_GPU_IMAGE"] == CPU_IMAGE


def test_compose_file_passes_compose_v2_config():
    """Compose v2 is what users run; Debian has only v1, so this runs where the v2 CLI plugin is installed."""
    if docker("compose", "version", check=False).returncode != 0:
        pytest.skip("no Docker Compose v2 CLI plugin here (`docker compose version` fails)")
    env_example = str(docker_stack.DOCKER / ".env.example")
    for profiles in ([], ["--profile", "public", "--profile", "build"]):
        docker("compose", "-f", str(docker_stack.DOCKER / "compose.yaml"), "--env-file", env_example, *profiles,
               "config", "--quiet")
