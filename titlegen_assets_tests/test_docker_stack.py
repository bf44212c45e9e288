"""The production Docker stack, run for real: images built from docker/, compose's PostgreSQL, both code locations
(CPU and GPU), webserver, daemon and the opt-in TLS proxy, and runs launched through the daemon as a user would
(GraphQL against the webserver), each in its own run container started by dagster-docker's DockerRunLauncher in the
image and container context of its code location, sharing their outputs on the artifacts volume; every container
confined as compose.yaml and dagster.yaml say (checked with docker inspect).

Run with ``python -m pytest -m docker -s`` (see benchmarks/RESULTS.md for times). Left out here: the GPU image
(nvidia/cuda base) and Ollama's image cannot be pulled or built without a registry; the GPU location is served from
the CPU image tagged as the suite's GPU image (TITLEGEN_GPU_IMAGE), so its training run starts from that name with
the NVIDIA device request; Ollama is the REST API double (compose.ollama-double.yaml). The suite removes every image,
container, volume and network it made; set TITLEGEN_TEST_KEEP_IMAGES=1 to keep its images (all named
titlegen-test/...) for a faster next run. It runs on the engine that answers; it installs and starts one only when
TITLEGEN_DOCKER_SUITE=install asks (.ci/run), and is skipped otherwise.
"""

import os
import shutil
import tarfile
import time
from pathlib import Path

import pytest
import yaml
from dagster_docker.docker_run_launcher import DOCKER_CONTAINER_ID_TAG

from titlegen_assets_tests import docker_stack
from titlegen_assets_tests.docker_stack import CPU_IMAGE, GPU_IMAGE, docker

pytestmark = pytest.mark.docker

# the smoke model's config: the real 270M demo is minutes of CPU training and not in the CPU image
DEMO_OPS = yaml.safe_load((docker_stack.REPO / "titlegen_assets" / "configs" / "smoke.yaml").read_text())["ops"]
SHORT_TRAINING = {"max_steps": 2, "checkpoint_steps": 2, "logging_steps": 1}
RUN_TIMEOUT_S = 600
#: the run tag where dagster-docker's launcher records the image it started the run container from
DOCKER_IMAGE_TAG = "dagster/image"
COMPOSE = yaml.safe_load((docker_stack.DOCKER / "compose.yaml").read_text())
#: where each run of the suite is submitted: docker/workspace.yaml's locations, each a Definitions (one repository)
CPU_JOB, GPU_JOB = ({"repository_location_name": name, "repository_name": "__repository__"}
                    for name in ("titlegen_cpu", "titlegen_gpu"))


def smoke_config(*ops: str, **overrides: dict) -> dict:
    """The smoke run config for these ops only (a run refuses config for ops it does not execute)."""
    return {"ops": {op: {"config": {**DEMO_OPS.get(op, {}).get("config", {}), **overrides.get(op, {})}} for op in ops}}


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """The engine every test here runs on: the one that answers, or one this suite installs and starts when asked
    (see docker_stack.docker_engine); whether the suite started it, and the NVIDIA hook stand-in's log."""
    hook_log = tmp_path_factory.mktemp("docker_engine") / "nvidia-hook.log"
    hook_log.touch()
    with docker_stack.docker_engine(hook_log) as started:
        yield {"started": started, "hook_log": hook_log}


def test_the_suite_refuses_to_start_over_a_fixed_name_volume_it_did_not_create_and_leaves_it(engine):
    """A volume named like the stack's (here the HF cache, which compose would reuse and ``compose down -v`` used to
    remove) stops the suite with a message naming it, and is still there afterwards. Runs before the stack is up."""
    volume = "titlegen_hf_cache"
    if volume in docker("volume", "ls", "-q").stdout.split():
        pytest.skip(f"{volume} is on this engine already, not this test's to create or remove")
    docker("volume", "create", "--label", "titlegen-test=bystander", volume)
    try:
        with pytest.raises(RuntimeError, match=f"already holds {volume}.*never removes what it did not create"):
            docker_stack.refuse_existing_names(COMPOSE)
        assert volume in docker("volume", "ls", "-q").stdout.split()
    finally:
        docker("volume", "rm", volume)


def test_clean_up_leaves_the_cached_layers_an_earlier_build_left_though_the_suites_build_reused_them(engine, tmp_path):
    """An interrupted build leaves its layers as untagged images, and the suite's next build reuses them from the
    cache: removing what the suite built must not take them along (``docker rmi`` prunes untagged parents; CI once
    saw eight such images go). Runs before the stack is up, with a base image of its own and no network."""
    start = docker_stack.DockerInventory.now()
    base, earlier, ours = (f"titlegen-test/inventory-{name}:1" for name in ("base", "earlier", "ours"))
    context = tmp_path / "context"
    context.mkdir()
    (tmp_path / "file").write_text("a file, so the image is not empty\n")
    with tarfile.open(tmp_path / "rootfs.tar", "w") as rootfs:
        rootfs.add(tmp_path / "file", arcname="file")
    docker("import", str(tmp_path / "rootfs.tar"), base)
    try:
        def build(tag: str, *labels: str) -> None:
            (context / "Dockerfile").write_text(f"FROM {base}\n" + "".join(f"LABEL {label}\n" for label in labels))
            docker_stack.build_image(context / "Dockerfile", tag, context, {}, timeout=300)

        build(earlier, "step=one", "step=two")
        docker("rmi", "--no-prune", earlier)  # what an interrupted build leaves: its layers, untagged
        before = docker_stack.DockerInventory.now()
        build(ours, "step=one", "step=three")
        reused = set(docker("history", "-q", "--no-trunc", ours).stdout.split()) & before.images
        assert reused - {docker("image", "inspect", "--format", "{{.Id}}", base).stdout.strip()}, \
            "the build did not reuse the earlier layer, so this test would not show what it is for"
        left = docker_stack.DockerInventory.now().clean(before)
        gone = docker_stack.DockerInventory.now().gone_since(before)
        assert left.is_empty(), left
        assert gone.is_empty(), f"clean-up removed what was there before it: {gone}"
    finally:
        left_by_test = docker_stack.DockerInventory.now().clean(start)
    assert left_by_test.is_empty(), f"the test left behind what it made: {left_by_test}"


@pytest.fixture(scope="module")
def launched(tmp_path_factory, engine, llama_cpp):
    """Images and stack up on the module's engine; data_job, training_job and hf_repo alone launched one after the
    other, then publish_and_serve_job (kept apart in "serve"). At the end everything the suite made is removed, and
    what could not be is an error."""
    from dagster_graphql import DagsterGraphQLClient

    workdir = tmp_path_factory.mktemp("docker_stack")
    started_engine, hook_log = engine["started"], engine["hook_log"]
    keep = os.environ.get(docker_stack.KEEP_IMAGES_ENV) == "1"
    before = docker_stack.DockerInventory.now()
    try:
        docker_stack.refuse_existing_names(COMPOSE)
    except RuntimeError as refused:
        pytest.fail(str(refused))
    try:
        docker_stack.make_base_images()
        if not started_engine:
            docker_stack.require_nvidia_device_requests()
        docker_stack.build_cpu_image(llama_cpp)
        with docker_stack.compose_stack(workdir) as stack:
            client = DagsterGraphQLClient(stack.ui_address, port_number=docker_stack.UI_PORT)
            runs = {}
            for name, submit in [
                ("data", dict(job_name="data_job", **CPU_JOB,
                              run_config=smoke_config("raw_dataset", "cleaned_splits"))),
                ("training", dict(job_name="training_job", **GPU_JOB, run_config=smoke_config(
                    "lora_adapter", "merged_hf_model", "eval_gate", lora_adapter=SHORT_TRAINING))),
                ("publish", dict(job_name="__ASSET_JOB", **CPU_JOB, asset_selection=["hf_repo"],
                                 run_config=smoke_config("hf_repo"))),
                ("serve", dict(job_name="publish_and_serve_job", **CPU_JOB, run_config=smoke_config(
                    "hf_repo", "ollama_model", "latency_report"))),
            ]:
                run_id = client.submit_job_execution(**submit)
                docker_stack.log(f"{name} run {run_id} submitted")
                runs[name] = {"run_id": run_id, **docker_stack.follow_run(client, run_id, RUN_TIMEOUT_S)}
                if runs[name]["status"].value != "SUCCESS":
                    runs[name]["failures"] = docker_stack.failure_messages(stack, run_id)
                docker_stack.log(f"{name} run finished: {runs[name]['status'].value}")
            services = {s: docker_stack.inspect(stack.container(s))
                        for s in (*docker_stack.SERVICES, *docker_stack.PROXY_SERVICES, "ollama")}
            yield {"runs": {k: v for k, v in runs.items() if k != "serve"}, "serve": runs["serve"],
                   "stack": stack, "client": client, "hook_log": hook_log, "started_engine": started_engine,
                   "services": services}
    finally:
        ours = {docker_stack.DEBIAN_IMAGE, CPU_IMAGE, GPU_IMAGE}
        kept = set(docker_stack.STANDIN_IMAGES.values()) | ours if keep else set()
        left = docker_stack.DockerInventory.now().clean(before, keep_tags=kept)
        docker_stack.log("removed what the suite made" + (f", kept {sorted(kept)}" if kept else ""))
        gone = docker_stack.DockerInventory.now().gone_since(before)
    assert left.is_empty(), f"the suite left behind what it made and could not remove: {left}"
    assert gone.is_empty(), f"the suite removed what was there before it: {gone}"


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


def test_each_run_ran_in_its_own_container_started_by_dagster_dockers_launcher_for_its_location(launched):
    ids = [next(iter(r["containers"])) for r in launched["runs"].values() if r["containers"]]
    assert len(set(ids)) == 3, "three runs, three run containers"
    for name, run in launched["runs"].items():
        attrs = the_container(launched, name)
        assert attrs["Config"]["Labels"]["dagster/run_id"] == run["run_id"]
        assert "titlegen_artifacts:/artifacts" in attrs["HostConfig"]["Binds"]
        assert attrs["HostConfig"]["AutoRemove"] is True
        shown = launched["stack"].graphql("""query($id: ID!) { runOrError(runId: $id) { ... on Run {
            tags { key value } repositoryOrigin { repositoryLocationName } } } }""",
            {"id": run["run_id"]})["runOrError"]
        recorded = {t["key"]: t["value"] for t in shown["tags"]}  # what the launcher wrote on the run, as the UI shows
        assert recorded[DOCKER_CONTAINER_ID_TAG] == attrs["Id"], name
        assert recorded[DOCKER_IMAGE_TAG] == attrs["Config"]["Image"], name
        expected = "titlegen_gpu" if name == "training" else "titlegen_cpu"
        assert shown["repositoryOrigin"]["repositoryLocationName"] == expected, name


def test_only_the_training_run_gets_the_gpu_locations_image_and_the_nvidia_device_request(launched):
    training = the_container(launched, "training")
    assert training["Config"]["Image"] == GPU_IMAGE  # the GPU code server's DAGSTER_CURRENT_IMAGE
    [request] = training["HostConfig"]["DeviceRequests"]
    # TITLEGEN_GPUS, unset here: one GPU, not every GPU of the host (count -1)
    assert (request["Driver"], request["Count"], request["Capabilities"]) == ("nvidia", 1, [["gpu"]])
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
    # data_job observes watched_source first: take the capture of raw_dataset's own step
    file_key = next(e["fileKey"] for e in captured if "raw_dataset" in (e["stepKeys"] or []))
    logs = launched["stack"].graphql(
        """query($key: [String!]!) { capturedLogs(logKey: $key) { stderr stdout } }""",
        {"key": [run_id, "compute_logs", file_key]})["capturedLogs"]
    assert "raw_dataset" in (logs["stderr"] or "") + (logs["stdout"] or ""), logs


def test_each_code_server_gets_its_image_and_the_gpu_one_its_container_context_through_compose_v1(launched):
    import json

    services = yaml.safe_load(launched["stack"].compose("config").stdout)["services"]
    environment = {service: services[service]["environment"] for service in ("titlegen_code", "titlegen_gpu_code")}
    assert environment["titlegen_code"]["DAGSTER_CURRENT_IMAGE"] == CPU_IMAGE
    assert environment["titlegen_gpu_code"]["DAGSTER_CURRENT_IMAGE"] == GPU_IMAGE
    assert "DAGSTER_CONTAINER_CONTEXT" not in environment["titlegen_code"]
    context = json.loads(environment["titlegen_gpu_code"]["DAGSTER_CONTAINER_CONTEXT"])
    assert context["docker"]["container_kwargs"]["device_requests"][0]["driver"] == "nvidia"


def test_compose_file_passes_compose_v2_config():
    """Compose v2 is what users run; Debian has only v1, so this runs where the v2 CLI plugin is installed."""
    if docker("compose", "version", check=False).returncode != 0:
        pytest.skip("no Docker Compose v2 CLI plugin here (`docker compose version` fails)")
    env_example = str(docker_stack.DOCKER / ".env.example")
    for profiles in ([], ["--profile", "public", "--profile", "build"]):
        docker("compose", "-f", str(docker_stack.DOCKER / "compose.yaml"), "--env-file", env_example, *profiles,
               "config", "--quiet")


# --- secrets, confinement and the public proxy (issue 21) ---------------------------------------------------------

def env_names(attrs: dict) -> set[str]:
    return {item.split("=", 1)[0] for item in attrs["Config"]["Env"]}


def test_only_the_services_that_use_hf_token_receive_it(launched):
    """Only the daemon holds the Hub token (it forwards it to run containers, which observe, read and publish): the
    webserver faces users, and neither code location reads the Hub, so the variable is not in their environment."""
    services = launched["services"]
    assert "HF_TOKEN" not in env_names(services["webserver"]), "the webserver's environment holds HF_TOKEN"
    assert "HF_TOKEN" not in env_names(services["titlegen_code"]), "the CPU location does not read the Hub"
    assert "HF_TOKEN" in env_names(services["daemon"])
    for service in ("postgres", *docker_stack.PROXY_SERVICES):
        assert "HF_TOKEN" not in env_names(services[service]), service
    assert "HF_TOKEN" not in env_names(services["titlegen_gpu_code"]), "the GPU location never reads the Hub"


def assert_confined(name: str, attrs: dict) -> None:
    host = attrs["HostConfig"]
    user = attrs["Config"]["User"]
    assert user and user.split(":")[0] not in ("root", "0"), f"{name} runs as {user or 'root (no user set)'}"
    assert "no-new-privileges:true" in (host["SecurityOpt"] or []), f"{name}: {host['SecurityOpt']}"
    assert host["CapDrop"] and [c.upper().removeprefix("CAP_") for c in host["CapDrop"]] == ["ALL"], host["CapDrop"]
    assert not host["CapAdd"], f"{name} adds capabilities {host['CapAdd']}"
    assert host["Memory"] > 0, f"{name} has no memory limit"
    assert (host["PidsLimit"] or 0) > 0, f"{name} has no pid limit"
    assert host["NanoCpus"] > 0 or host["CpuQuota"] > 0, f"{name} has no CPU limit"


@pytest.mark.parametrize("service", [*docker_stack.SERVICES, *docker_stack.PROXY_SERVICES])
def test_every_service_runs_confined_and_comes_back_after_a_reboot(launched, service):
    attrs = launched["services"][service]
    assert_confined(service, attrs)
    assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    status = docker("exec", launched["stack"].container(service), "cat", "/proc/1/status").stdout
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert "0" not in uids, f"{service}'s main process runs as root (real, effective, saved, fs uids: {uids})"


def test_the_services_memory_limits_come_from_the_env_file(launched):
    for service in ("titlegen_code", "titlegen_gpu_code", "webserver", "daemon"):
        host = launched["services"][service]["HostConfig"]
        assert host["Memory"] == int(docker_stack.DAGSTER_MEM_LIMIT.removesuffix("g")) * 1024**3, service


def test_every_run_container_runs_confined(launched):
    """dagster.yaml's container_kwargs reach docker-py's containers.create for CPU and GPU runs alike; the GPU
    location's container context adds its memory limit."""
    for name in launched["runs"]:
        attrs = the_container(launched, name)
        assert_confined(f"{name} run", attrs)
        assert attrs["Config"]["User"] == "10001:10001"
    assert the_container(launched, "training")["HostConfig"]["Memory"] == 48 * 1024**3   # the GPU container context
    assert the_container(launched, "data")["HostConfig"]["Memory"] == 8 * 1024**3
    cpus = {name: (the_container(launched, name)["HostConfig"]["CpuQuota"] /
                   the_container(launched, name)["HostConfig"]["CpuPeriod"]) for name in launched["runs"]}
    assert cpus == {"data": 4, "training": 8, "publish": 4}, cpus


def test_the_services_cpu_limits_come_from_the_env_file(launched):
    services = launched["services"]
    assert services["ollama"]["HostConfig"]["NanoCpus"] == int(launched["stack"].settings["OLLAMA_CPUS"]) * 10**9
    assert services["webserver"]["HostConfig"]["NanoCpus"] == 2 * 10**9   # SERVICE_CPUS, unset: compose's default


def test_nothing_but_the_proxy_is_published_beyond_loopback_and_the_proxy_binds_where_configured(launched):
    for service, attrs in launched["services"].items():
        for port, bindings in (attrs["HostConfig"]["PortBindings"] or {}).items():
            for binding in bindings:
                # the proxy binds TITLEGEN_PUBLIC_ADDRESS, whose default (the suite keeps it) is loopback too
                assert binding["HostIp"] == "127.0.0.1", (service, port, binding)
    [binding] = launched["services"]["proxy"]["HostConfig"]["PortBindings"]["8443/tcp"]
    assert binding["HostPort"] == str(launched["stack"].proxy_port)


def host_ports(attrs: dict) -> dict:
    """The container's ports that are bound on the host, as configured and as the engine made them."""
    bound = {port: b for port, b in (attrs["HostConfig"]["PortBindings"] or {}).items() if b}
    bound.update({port: b for port, b in (attrs["NetworkSettings"]["Ports"] or {}).items() if b})
    return bound


def listening_ports() -> set[int]:
    """TCP ports something listens on in the host's network namespace (``ss -ltn``)."""
    lines = docker_stack.run("ss", "-Hltn").stdout.splitlines()
    return {int(line.split()[3].rsplit(":", 1)[1]) for line in lines}


def test_the_ui_and_ollama_are_not_reachable_from_the_host_but_through_the_proxy(launched):
    """No login guards the UI or Ollama's API: neither is published on the host (any local account could use a port
    on 127.0.0.1), so nothing listens on the UI port the env file names or on Ollama's; the suite itself reaches the
    UI at the webserver's address on the stack's network, and users through the proxy."""
    services = launched["services"]
    for name in ("webserver", "ollama"):
        assert not host_ports(services[name]), f"{name} is published on the host: {host_ports(services[name])}"
    listening = listening_ports()
    assert int(launched["stack"].settings["DAGSTER_UI_PORT"]) not in listening
    assert 11434 not in listening
    assert launched["stack"].proxy_port in listening, "ss sees no listener for the proxy's published port"


def test_single_user_mode_publishes_the_ui_and_ollama_on_loopback_only():
    """compose.local.yaml over compose.yaml, merged by Compose v1 itself: the UI and Ollama on 127.0.0.1, nothing else
    added."""
    if shutil.which("docker-compose") is None:
        pytest.skip("no Docker Compose v1 here (docker-compose)")
    env = {**os.environ, "POSTGRES_PASSWORD": "x", "DOCKER_GID": "0", "DAGSTER_UI_PORT": "3999"}
    merged = yaml.safe_load(docker_stack.run(
        "docker-compose", "-f", str(docker_stack.DOCKER / "compose.yaml"), "-f",
        str(docker_stack.DOCKER / "compose.local.yaml"), "--env-file", str(docker_stack.DOCKER / ".env.example"),
        "config", env=env).stdout)["services"]
    published = {name: s["ports"] for name, s in merged.items() if s.get("ports") and name != "proxy"}
    assert published == {"webserver": ["127.0.0.1:3999:3000/tcp"], "ollama": ["127.0.0.1:11434:11434/tcp"]}


def proxy_client(launched, **kwargs):
    import httpx

    return httpx.Client(base_url=f"https://localhost:{launched['stack'].proxy_port}",
                        verify=str(launched["stack"].tls_cert), timeout=30, **kwargs)


def wait_for_proxy(launched) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while True:
        try:  # with the right credentials: a failed login here would count against the rate limit tested below
            with proxy_client(launched, auth=launched["stack"].proxy_credentials) as client:
                client.get("/server_info")
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


SECURITY_HEADERS = {
    "strict-transport-security": "max-age=31536000",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
}


def test_the_proxy_refuses_requests_without_the_right_credentials(launched):
    wait_for_proxy(launched)
    user, password = launched["stack"].proxy_credentials
    with proxy_client(launched) as client:
        anonymous = client.get("/")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Basic")
        assert client.get("/graphql", auth=(user, password + "x")).status_code == 401
    for header, value in SECURITY_HEADERS.items():
        assert anonymous.headers.get(header) == value, (header, dict(anonymous.headers))
    assert anonymous.headers["server"] == "nginx", "the proxy names its version"
    assert "nginx/" not in anonymous.text


def test_the_proxy_serves_the_ui_over_tls_with_the_right_credentials_and_security_headers(launched):
    wait_for_proxy(launched)
    with proxy_client(launched, auth=launched["stack"].proxy_credentials) as client:
        page = client.get("/")
        info = client.get("/server_info")
    assert page.status_code == 200 and "Dagster" in page.text, page.text[:300]
    assert info.status_code == 200 and "dagster_webserver_version" in info.json(), info.text[:300]
    for header, value in SECURITY_HEADERS.items():
        assert page.headers.get(header) == value, (header, dict(page.headers))


def test_the_proxy_redirects_plain_http_to_the_configured_host_not_the_one_the_client_names(launched):
    import httpx

    wait_for_proxy(launched)
    port = launched["stack"].proxy_port
    response = httpx.get(f"http://127.0.0.1:{port}/runs?view=all", headers={"Host": "evil.example"},
                         auth=launched["stack"].proxy_credentials, timeout=30, follow_redirects=False)
    assert response.status_code == 301, (response.status_code, response.text[:200])
    assert response.headers["location"] == f"https://localhost:{port}/runs?view=all"


def tls12_handshake(port: int, cipher: str) -> bool:
    done = docker_stack.run("openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                            "-tls1_2", "-cipher", cipher, input="", check=False, timeout=30)
    return done.returncode == 0 and f"Cipher is {cipher}" in done.stdout


def test_the_proxy_offers_tls12_forward_secret_suites_only(launched):
    wait_for_proxy(launched)
    port = launched["stack"].proxy_port
    assert tls12_handshake(port, "ECDHE-RSA-AES128-GCM-SHA256")
    for static_rsa in ("AES128-GCM-SHA256", "AES256-SHA256", "AES128-SHA"):
        assert not tls12_handshake(port, static_rsa), f"{static_rsa}: no forward secrecy, must be refused"


def test_a_client_over_the_failed_login_limit_gets_nothing_until_its_window_passes(launched):
    """The right password included: a guesser cannot tell a right guess from a refused one while locked out."""
    wait_for_proxy(launched)
    user, password = launched["stack"].proxy_credentials
    limit = docker_stack.PROXY_LOGIN_LIMIT
    with proxy_client(launched) as client:
        codes = [client.get("/server_info", auth=(user, f"wrong-{i}")).status_code
                 for i in range(int(limit["TITLEGEN_LOGIN_MAX_FAILURES"]))]
        assert set(codes) <= {401, 429}, codes
        refused = client.get("/server_info", auth=(user, password))
        assert refused.status_code == 429, (codes, refused.status_code)
        assert "dagster_webserver_version" not in refused.text
        time.sleep(float(limit["TITLEGEN_LOGIN_WINDOW_S"]) + 1)
        assert client.get("/server_info", auth=(user, password)).status_code == 200


def own_origin(launched) -> str:
    return f"https://localhost:{launched['stack'].proxy_port}"


TERMINATE = """mutation TerminateRun($runId: String!) { terminateRun(runId: $runId) { __typename } }"""


def test_the_proxy_refuses_cross_site_graphql_and_mutations_in_urls_and_the_ui_still_works(launched):
    wait_for_proxy(launched)
    forged = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    with proxy_client(launched, auth=launched["stack"].proxy_credentials) as client:
        posted = client.post("/graphql", json={"query": TERMINATE, "variables": {"runId": "no-such-run"}},
                             headers=forged)
        assert posted.status_code == 403, posted.text[:300]
        as_form = client.post("/graphql", params={"query": TERMINATE, "variables": '{"runId": "no-such-run"}'},
                              content=b"", headers={**forged, "Content-Type": "text/plain"})
        assert as_form.status_code == 403, as_form.text[:300]
        in_url = client.get("/graphql", params={"query": TERMINATE, "variables": '{"runId": "no-such-run"}'})
        assert in_url.status_code == 403, in_url.text[:300]
        # the UI: its page, and its own GraphQL requests
        page = client.get("/", headers={"Sec-Fetch-Site": "none"})
        assert page.status_code == 200 and "Dagster" in page.text
        query = client.post("/graphql", json={"query": "{ version }"},
                            headers={"Origin": own_origin(launched), "Sec-Fetch-Site": "same-origin"})
        assert query.status_code == 200 and query.json()["data"]["version"], query.text[:300]


LAUNCH = """mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) { __typename
    ... on LaunchRunSuccess { run { runId } } ... on UnauthorizedError { message } ... on PythonError { message } } }"""


def launch_through_proxy(launched, credentials) -> dict:
    """The UI's own launch request (Launchpad → Launch run) for data_job, sent through the proxy."""
    params = {"selector": {"repositoryLocationName": CPU_JOB["repository_location_name"],
                           "repositoryName": CPU_JOB["repository_name"], "pipelineName": "data_job"},
              "runConfigData": smoke_config("raw_dataset", "cleaned_splits"), "mode": "default"}
    with proxy_client(launched, auth=credentials) as client:
        response = client.post("/graphql", json={"operationName": "LaunchPipelineExecution", "query": LAUNCH,
                                                 "variables": {"executionParams": params}},
                               headers={"Origin": own_origin(launched), "Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 200, response.text[:300]
    return response.json()["data"]["launchPipelineExecution"]


def test_a_viewer_cannot_launch_and_the_audit_log_names_the_operator_who_did(launched):
    wait_for_proxy(launched)
    stack = launched["stack"]
    viewer, operator = stack.viewer_credentials[0], stack.proxy_credentials[0]
    with proxy_client(launched, auth=stack.viewer_credentials) as client:
        seen = client.post("/graphql", json={"query": "{ version }"})
        assert seen.status_code == 200 and seen.json()["data"]["version"], "a viewer sees the UI"
        written = client.post("/report_asset_materialization/raw_dataset")   # the read-only webserver's refusal
        assert written.status_code != 200 and "Not authorized" in written.text, written.text[:300]
    refused = launch_through_proxy(launched, stack.viewer_credentials)
    assert refused["__typename"] == "UnauthorizedError", refused
    launched_run = launch_through_proxy(launched, stack.proxy_credentials)
    assert launched_run["__typename"] == "LaunchRunSuccess", launched_run
    run_id = launched_run["run"]["runId"]
    with proxy_client(launched, auth=stack.proxy_credentials) as client:   # not left to run beside the suite
        client.post("/graphql", json={"operationName": "TerminateRun", "query": TERMINATE,
                                      "variables": {"runId": run_id}})
    log = stack.compose("logs", "--no-color", "proxy").stdout.splitlines()
    launches = [line for line in log if '"POST /graphql' in line and "operation=LaunchPipelineExecution" in line]
    assert any(f"user={operator} role=operator" in line and " 200 " in line for line in launches), launches
    assert any(f"user={viewer} role=viewer" in line for line in launches), launches
    served = [line for line in log if '" 200 ' in line]
    assert served and all("user=titlegen-" in line for line in served), [x for x in served if "user=" not in x]


# --- the database password, maintenance in the stack (issue 29) ---------------------------------------------------

def test_postgres_refuses_the_example_password_and_compose_an_empty_one(launched):
    """The example's password (read from .env.example) stops the postgres service's own entrypoint, as compose made
    it, before the database starts; an empty one stops compose before anything starts."""
    example = next(line.split("=", 1)[1] for line in (docker_stack.DOCKER / ".env.example").read_text().splitlines()
                   if line.startswith("POSTGRES_PASSWORD="))
    config = launched["services"]["postgres"]["Config"]
    name = f"{docker_stack.PROJECT}-password-check"
    try:
        refused = docker("run", "--rm", "--name", name, "--network", "none", "--user", config["User"], "-e",
                         f"POSTGRES_PASSWORD={example}", "--entrypoint", config["Entrypoint"][0], config["Image"],
                         *config["Entrypoint"][1:], *config["Cmd"], check=False, timeout=120)
    finally:
        docker("rm", "-f", name, check=False)
    assert refused.returncode != 0 and f"example value {example}" in refused.stderr, refused
    empty = launched["stack"].compose("config", check=False, env={**os.environ, "POSTGRES_PASSWORD": ""})
    assert empty.returncode != 0 and "set POSTGRES_PASSWORD in docker/.env" in empty.stderr, empty


def test_titlegen_gc_runs_in_the_stack_against_the_artifacts_volume(launched):
    """The README's maintenance command: in the daemon, with the instance's DAGSTER_HOME, gc sees the artifacts the
    runs wrote and keeps the model publish_and_serve_job put in service."""
    assert launched["serve"]["status"].value == "SUCCESS", "gc's check needs a model in service"
    listed = docker("exec", launched["stack"].container("daemon"), "titlegen", "gc", "--dry-run").stdout
    kept = [line for line in listed.splitlines() if line.startswith("kept merged/")]
    assert kept and "in service" in kept[0], listed
    assert "under /artifacts" in listed, listed


# --- serving in the stack (issue 19) -------------------------------------------------------------------------------

def test_publish_and_serve_job_serves_the_certified_gguf_through_the_ollama_api(launched):
    """hf_repo, ollama_model and latency_report in one run container after data_job and training_job, with
    OLLAMA_HOST at the REST API double on the stack's network. The merged step made the GGUF and the gate certified
    it in the training run (llama.cpp is in the image, LLAMA_CPP_DIR)."""
    serve = launched["serve"]
    assert serve["status"].value == "SUCCESS", (f"publish_and_serve_job run {serve['run_id']} ended "
                                                f"{serve['status'].value}:\n" + "\n".join(serve.get("failures", [])))
    [attrs] = serve["containers"].values()
    assert attrs["Config"]["Image"] == CPU_IMAGE
    listed = docker("exec", launched["stack"].container("ollama_double"), "python", "-c",
                    "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:11434/api/tags').read()"
                    ".decode())").stdout
    assert '"models": [{' in listed, f"the Ollama double holds no model: {listed}"
    tags = launched["stack"].graphql(
        """query { assetNodes { assetKey { path } assetMaterializations(limit: 1) { runId } } }""")
    served = {n["assetKey"]["path"][-1]: n["assetMaterializations"] for n in tags["assetNodes"]}
    assert served["ollama_model"] and served["ollama_model"][0]["runId"] == serve["run_id"]
    assert served["latency_report"] and served["latency_report"][0]["runId"] == serve["run_id"]
