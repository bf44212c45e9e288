"""What can be checked of the Docker stack without a Docker engine: files parse, references exist, variables are
documented, the instance config passes Dagster's own validation, and nothing unauthenticated is published on the host
but in the single-user mode."""

import re
from pathlib import Path

import dagster as dg
import pytest
import yaml

DOCKER = Path(__file__).resolve().parents[1] / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
LOCAL_MODE = yaml.safe_load((DOCKER / "compose.local.yaml").read_text())
VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?(?:[:?][^}]*)?\}")


def with_defaults(text: str) -> str:
    """A compose value with each ${NAME:-default} replaced by its default (what a plain .env leaves in place)."""
    return VARIABLE.sub(lambda m: m.group(2) or "", text)


def test_every_build_context_and_dockerfile_exists():
    builds = [s["build"] for s in COMPOSE["services"].values() if "build" in s]
    assert len(builds) == 2
    for build in builds:
        context = (DOCKER / build["context"]).resolve()
        assert (context / build["dockerfile"]).is_file()


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_every_file_a_dockerfile_copies_exists(dockerfile):
    root = DOCKER.parent
    for line in (DOCKER / dockerfile).read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert (root / source).exists(), f"{dockerfile}: {source}"


def test_every_variable_the_compose_file_uses_is_in_env_example():
    """Variables without a default are set in .env.example; those with one are at least named there (commented)."""
    text = (DOCKER / "compose.yaml").read_text() + (DOCKER / "compose.local.yaml").read_text()
    required = {m.group(1) for m in VARIABLE.finditer(text) if m.group(2) is None}
    defaulted = {m.group(1) for m in VARIABLE.finditer(text) if m.group(2) is not None}
    lines = (DOCKER / ".env.example").read_text().splitlines()
    documented = {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}
    mentioned = {line.lstrip("# ").split("=", 1)[0] for line in lines if "=" in line}
    assert required and required <= documented, required - documented
    assert defaulted <= mentioned, defaulted - mentioned
    assert {"HF_TOKEN", "HF_ORG", "HF_REPO", "OLLAMA_HOST", "POSTGRES_USER", "POSTGRES_PASSWORD"} <= documented


def test_files_mounted_into_services_exist_or_are_documented_secrets():
    for service in COMPOSE["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DOCKER / source).exists() or source == "./proxy/htpasswd", source


def test_only_the_proxy_is_published_on_the_host_and_the_single_user_mode_only_on_loopback():
    """The UI and Ollama have no login: compose.yaml publishes neither (any local account could use a loopback
    port); compose.local.yaml, for a machine nobody else uses, publishes exactly those two on 127.0.0.1."""
    published = {name for name, service in COMPOSE["services"].items() if service.get("ports")}
    assert published == {"proxy"}, f"published on the host without a login: {published - {'proxy'}}"
    local = {name: service["ports"] for name, service in LOCAL_MODE["services"].items()}
    assert set(local) == {"webserver", "ollama"} and set(LOCAL_MODE) == {"services"}
    for name, ports in local.items():
        assert all(port.startswith("127.0.0.1:") for port in ports), f"{name} publishes {ports} beyond loopback"
    proxy = COMPOSE["services"]["proxy"]
    assert proxy["profiles"] == ["public"]
    assert "auth_request /_titlegen_auth;" in (DOCKER / "proxy" / "nginx.conf").read_text()


def test_ollama_gets_the_gpu_and_every_long_running_service_has_a_health_check():
    services = COMPOSE["services"]
    assert services["ollama"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    for name in set(services) - {"proxy", "titlegen_gpu_image"}:  # the opt-in proxy; an image build, no service
        assert "healthcheck" in services[name], name


def test_every_image_that_is_pulled_is_pinned_to_a_version_and_a_digest():
    """compose's image defaults, its build argument defaults and the Dockerfiles' base images (the test suite maps
    them to local stand-ins): a version to read, and the digest that makes a re-pushed tag harmless."""
    built_here = {s["image"] for s in COMPOSE["services"].values() if "build" in s}
    images = [with_defaults(s["image"]) for s in COMPOSE["services"].values() if s["image"] not in built_here]
    images += [with_defaults(arg) for s in COMPOSE["services"].values() if "build" in s
               for arg in s["build"].get("args", {}).values()]
    for dockerfile in ("Dockerfile", "Dockerfile.gpu"):
        text = (DOCKER / dockerfile).read_text()
        args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.M))
        images += [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
                   for image in re.findall(r"^FROM\s+(\S+)", text, re.M)]
    assert len(images) >= 6, images   # postgres, ollama, nginx; python in compose and Dockerfile (twice); cuda
    for image in images:
        reference, _, digest = image.partition("@")
        name, _, tag = reference.rpartition(":")
        assert name and re.search(r"\d", tag) and tag != "latest", f"{image} is not pinned to a version"
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"{image} is not pinned to a digest"


def test_run_containers_join_the_stacks_network_and_volumes_and_the_webserver_reads_their_step_logs():
    """The launcher's settings name compose's objects by their fixed names: a rename on one side breaks runs."""
    instance = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
    launcher = instance["run_launcher"]["config"]
    assert launcher["network"] in {n.get("name") for n in COMPOSE["networks"].values()}
    named_volumes = {v["name"]: key for key, v in COMPOSE["volumes"].items() if v and "name" in v}
    run_mounts = dict(m.split(":")[:2] for m in launcher["container_kwargs"]["volumes"])
    assert set(run_mounts) <= set(named_volumes), set(run_mounts) - set(named_volumes)
    code_mounts = dict(m.split(":")[:2] for m in COMPOSE["services"]["titlegen_code"]["volumes"])
    assert run_mounts[next(v for v, k in named_volumes.items() if k == "artifacts")] == code_mounts["artifacts"]
    logs_dir = instance["compute_logs"]["config"]["base_dir"]
    webserver_mounts = {target: source for source, target in
                        (m.split(":")[:2] for m in COMPOSE["services"]["webserver"]["volumes"])}
    logs_volume = COMPOSE["volumes"][webserver_mounts[logs_dir]]["name"]
    assert run_mounts[logs_volume] == logs_dir


def test_titlegen_gc_in_the_daemon_sees_the_artifact_volume_the_runs_write():
    """The README runs ``titlegen gc`` in the daemon (it has the instance's DAGSTER_HOME): the artifact root there
    must be the volume run containers write, not the image's empty folder."""
    launcher = yaml.safe_load((DOCKER / "dagster.yaml").read_text())["run_launcher"]["config"]
    run_mounts = dict(m.split(":")[:2] for m in launcher["container_kwargs"]["volumes"])
    daemon_mounts = {target: COMPOSE["volumes"][source]["name"] for source, target in
                     (m.split(":")[:2] for m in COMPOSE["services"]["daemon"]["volumes"])
                     if source in COMPOSE["volumes"]}
    root = COMPOSE["services"]["daemon"]["environment"]["TITLEGEN_HOME"]
    assert run_mounts.get(daemon_mounts.get(root)) == root, (daemon_mounts, root)


def test_without_an_engine_the_docker_suite_skips_in_one_line_unless_asked_to_install_one(monkeypatch):
    """Left to itself the suite never changes the host: no apt-get, no dockerd, one line saying how to ask. The
    variable it names is the one .ci/run sets."""
    from titlegen_assets_tests import docker_stack

    commands = []
    monkeypatch.setattr(docker_stack, "engine_answers", lambda: False)
    monkeypatch.setattr(docker_stack, "run", lambda *args, **kwargs: commands.append(args))
    monkeypatch.setattr(docker_stack.subprocess, "Popen", lambda *args, **kwargs: commands.append(args))
    monkeypatch.delenv(docker_stack.SUITE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        with docker_stack.docker_engine(Path("/nonexistent/hook.log")):
            pass
    assert commands == [], f"the suite ran {commands} without being asked"
    message = str(skipped.value)
    assert "\n" not in message and f"{docker_stack.SUITE_ENV}=install" in message, message
    ci = (DOCKER.parent / ".ci" / "run").read_text()
    assert re.search(rf"^export {docker_stack.SUITE_ENV}=install$", ci, re.M), "CI must ask for an engine"


def test_every_variable_the_launcher_forwards_is_set_for_the_daemon():
    instance = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
    daemon_env = COMPOSE["services"]["daemon"]["environment"]
    missing = [name for name in instance["run_launcher"]["config"]["env_vars"] if name not in daemon_env]
    assert not missing, missing


def shipped_instance_config(*sections: str) -> dict:
    """These sections of docker/dagster.yaml, as Dagster reads them."""
    config = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
    return {name: config[name] for name in sections}


def test_dagster_yaml_builds_dagster_dockers_own_run_launcher_with_no_image_and_no_gpu():
    """Through Dagster's own instance loading, as dagster-daemon does at start: the plain DockerRunLauncher, whose
    runs take the image of their code location and the GPU only from the GPU location's container context."""
    import dagster as dg
    from dagster_docker import DockerRunLauncher

    with dg.instance_for_test(overrides=shipped_instance_config("run_launcher")) as instance:
        launcher = instance.run_launcher
        assert type(launcher) is DockerRunLauncher
        assert launcher.image is None, "the image comes from each code location's DAGSTER_CURRENT_IMAGE"
        assert launcher.networks == ["titlegen"]
        assert "device_requests" not in launcher.container_kwargs, "CPU runs must not ask for a GPU"


CODE_SERVERS = {"titlegen_cpu": "titlegen_code", "titlegen_gpu": "titlegen_gpu_code"}


def run_container_kwargs(location_service: str) -> dict:
    """What dagster-docker gives a run of this location: the launcher's container_kwargs with the location's
    container context (compose's DAGSTER_CONTAINER_CONTEXT) merged over them, the merge DockerRunLauncher makes."""
    import json

    from dagster_docker.container_context import DockerContainerContext

    launcher = shipped_instance_config("run_launcher")["run_launcher"]["config"]
    context = COMPOSE["services"][location_service]["environment"].get("DAGSTER_CONTAINER_CONTEXT")
    merged = DockerContainerContext(container_kwargs=launcher["container_kwargs"]).merge(
        DockerContainerContext.create_from_config(json.loads(with_defaults(context)) if context else None))
    return dict(merged.container_kwargs)


def test_the_workspace_loads_one_code_server_per_location_serving_its_half_of_the_split():
    import dagster as dg

    from titlegen_assets.deploy import locations

    workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text())
    servers = {entry["grpc_server"]["location_name"]: entry["grpc_server"] for entry in workspace["load_from"]}
    assert {name: server["host"] for name, server in servers.items()} == CODE_SERVERS
    for name, service in CODE_SERVERS.items():
        command = COMPOSE["services"][service]["command"]
        assert command[:3] == ["dagster", "code-server", "start"], service
        assert command[command.index("-p") + 1] == str(servers[name]["port"])
        module, attribute = command[command.index("-m") + 1], command[command.index("-a") + 1]
        assert module == locations.__name__ and attribute == f"{name.split('_')[1]}_location"
        assert isinstance(getattr(locations, attribute), dg.Definitions)


def test_each_code_server_names_its_own_image_as_the_image_of_its_runs():
    for service in CODE_SERVERS.values():
        config = COMPOSE["services"][service]
        assert config["environment"]["DAGSTER_CURRENT_IMAGE"] == config["image"], service
    assert with_defaults(COMPOSE["services"]["titlegen_gpu_code"]["image"]) == "titlegen:gpu"
    assert with_defaults(COMPOSE["services"]["titlegen_code"]["image"]) == "titlegen:cpu"
    built = {s["build"]["dockerfile"]: s["image"] for s in COMPOSE["services"].values() if "build" in s}
    assert built == {"docker/Dockerfile": COMPOSE["services"]["titlegen_code"]["image"],
                     "docker/Dockerfile.gpu": COMPOSE["services"]["titlegen_gpu_code"]["image"]}


def test_gpu_runs_get_the_deployments_gpu_count_and_more_memory_and_cpus_and_keep_the_confinement():
    """TITLEGEN_GPUS GPUs (1 unless set), not every GPU of the host (count -1); CPU runs no GPU. Both a CPU limit
    as a CFS quota, which the engine accepts on any host (nano_cpus above the host's CPU count is refused)."""
    gpu, cpu = run_container_kwargs("titlegen_gpu_code"), run_container_kwargs("titlegen_code")
    assert gpu["device_requests"] == [{"driver": "nvidia", "count": 1, "capabilities": [["gpu"]]}]
    assert "${TITLEGEN_GPUS:-1}" in COMPOSE["services"]["titlegen_gpu_code"]["environment"]["DAGSTER_CONTAINER_CONTEXT"]
    assert gpu["mem_limit"] == "48g" and cpu["mem_limit"] == "8g"
    assert "device_requests" not in cpu
    assert (gpu["cpu_quota"] / gpu["cpu_period"], cpu["cpu_quota"] / cpu["cpu_period"]) == (8, 4)
    assert "nano_cpus" not in gpu and "nano_cpus" not in cpu
    for kwargs in (gpu, cpu):  # container_kwargs merge key by key: the GPU context must not drop the confinement
        assert kwargs["user"] == "10001:10001" and kwargs["cap_drop"] == ["ALL"]
        assert kwargs["security_opt"] == ["no-new-privileges:true"] and kwargs["pids_limit"] > 0
        assert kwargs["auto_remove"] is True and "titlegen_artifacts:/artifacts" in kwargs["volumes"]


def test_one_gpu_run_at_a_time_by_the_gpu_pool_and_no_dead_tag_limit():
    """The pool every GPU step carries is limited to one, per run: a second GPU run waits in the queue before its
    container is made (test_pools.py shows it with a daemon). No run tag limit: nothing sets such a tag."""
    from titlegen_assets.deploy.gpu import GPU_POOL

    concurrency = shipped_instance_config("concurrency")["concurrency"]
    assert concurrency["pools"] == {"default_limit": 1, "granularity": "run"}
    assert "tag_concurrency_limits" not in concurrency["runs"]
    assert GPU_POOL == "gpu"


def charts_instance_concurrency(values: dict) -> dict:
    """The run coordinator and ``concurrency`` sections of the dagster.yaml the official chart (1.13) renders from
    these values: its ``_concurrency.tpl`` writes ``concurrency.pools``/``runs`` in snake case, and its queued run
    coordinator template writes ``queuedRunCoordinator``'s settings (here only ``maxConcurrentRuns``) as config."""
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    pools, runs = values["concurrency"].get("pools", {}), values["concurrency"].get("runs", {})
    coordinator_config = {"max_concurrent_runs": queued["maxConcurrentRuns"]} if "maxConcurrentRuns" in queued else {}
    return {
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator",
                            "config": coordinator_config},
        "concurrency": {"pools": {"default_limit": pools["defaultLimit"], "granularity": pools["granularity"]},
                        **({"runs": {"max_concurrent_runs": runs["maxConcurrentRuns"]}} if runs else {})},
    }


def test_helm_values_limit_the_gpu_pool_to_one_step_and_make_an_instance_dagster_loads():
    """The chart's concurrency settings, and the instance they render to loads: Dagster refuses a run limit in
    run_coordinator beside a ``concurrency`` block, so the limit of 4 runs sits in ``concurrency.runs``."""
    values = yaml.safe_load((DOCKER / "k8s" / "values.yaml").read_text())
    assert values["concurrency"]["pools"] == {"defaultLimit": 1, "granularity": "op"}
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert "tagConcurrencyLimits" not in queued, "no run tag limit: nothing sets such a tag"
    with dg.instance_for_test(overrides=charts_instance_concurrency(values)) as instance:
        config = instance.get_concurrency_config()
        assert config.pool_config.default_pool_limit == 1 and config.run_queue_config.max_concurrent_runs == 4


def test_helm_values_mount_the_code_locations_artifact_root_into_run_and_step_pods():
    """Run pods (K8sRunLauncher) and, through it, step pods (k8s_job_executor) mount the PVC where TITLEGEN_HOME
    points in the code location: outputs of one pod are loaded by the next."""
    values = yaml.safe_load((DOCKER / "k8s" / "values.yaml").read_text())
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "titlegen_assets.definitions"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["TITLEGEN_EXECUTOR"] == "k8s"
    launcher = values["runLauncher"]["config"]["customRunLauncher"]  # the K8sRunLauncher (test_k8s_values.py)
    assert launcher["class"] == "K8sRunLauncher"
    for volumes, mounts in ((deployment["volumes"], deployment["volumeMounts"]),
                            (launcher["config"]["volumes"], launcher["config"]["volume_mounts"])):
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in volumes}
        mounted = {m["mountPath"]: claims[m["name"]] for m in mounts}
        assert mounted.get(env["TITLEGEN_HOME"]) == "titlegen-artifacts", volumes


# --- issue 21: secrets, confinement, the public proxy, the Helm values ---------------------------------------------

LONG_RUNNING = sorted(set(COMPOSE["services"]) - {"titlegen_gpu_image"})


def test_hf_token_reaches_only_the_services_that_use_it():
    environments = {name: service.get("environment", {}) for name, service in COMPOSE["services"].items()}
    assert "HF_TOKEN" not in environments["webserver"]
    assert {name for name, env in environments.items() if "HF_TOKEN" in env} == {"daemon"}


@pytest.mark.parametrize("service", LONG_RUNNING)
def test_every_service_restarts_drops_capabilities_and_has_limits(service):
    config = COMPOSE["services"][service]
    assert config["restart"] == "unless-stopped"
    assert config["security_opt"] == ["no-new-privileges:true"]
    assert config["cap_drop"] == ["ALL"] and "cap_add" not in config
    assert with_defaults(str(config["mem_limit"]))
    assert float(with_defaults(str(config["cpus"]))) > 0, f"{service} has no CPU limit"
    assert isinstance(config["pids_limit"], int) and config["pids_limit"] > 0, "Compose v1 passes strings on"
    if service != "ollama":  # the official Ollama image has no other user (README, "Security")
        assert str(config["user"]).split(":")[0] not in ("", "0", "root")


def test_the_titlegen_services_run_as_the_user_the_images_create():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    uid = re.search(r"useradd --uid (\d+)", dockerfile).group(1)
    assert re.search(rf"^USER {uid}:{uid}$", dockerfile, re.M)
    assert re.search(rf"useradd --uid {uid} ", (DOCKER / "Dockerfile.gpu").read_text())
    for name in ("titlegen_code", "titlegen_gpu_code", "webserver", "daemon"):
        assert COMPOSE["services"][name]["user"] == f"{uid}:{uid}", name
    launcher = yaml.safe_load((DOCKER / "dagster.yaml").read_text())["run_launcher"]["config"]
    assert launcher["container_kwargs"]["user"] == f"{uid}:{uid}"


def test_run_containers_are_confined_like_the_services():
    kwargs = yaml.safe_load((DOCKER / "dagster.yaml").read_text())["run_launcher"]["config"]["container_kwargs"]
    assert kwargs["security_opt"] == ["no-new-privileges:true"] and kwargs["cap_drop"] == ["ALL"]
    assert kwargs["mem_limit"] and kwargs["pids_limit"] > 0


def test_the_proxy_terminates_tls_authenticates_through_its_service_and_hides_its_version():
    conf = (DOCKER / "proxy" / "nginx.conf").read_text()
    assert re.search(r"listen 8443 ssl;", conf) and "ssl_certificate_key" in conf
    assert re.search(r"^\s*listen\s+(?!8443 ssl)", conf, re.M) is None, "a listener without TLS"
    assert "server_tokens off;" in conf and "proxy_pass http://proxy_auth:9000/auth;" in conf
    for header in ("Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
        assert f"add_header {header}" in conf
    proxy = COMPOSE["services"]["proxy"]
    [port] = proxy["ports"]
    assert port.startswith("${TITLEGEN_PUBLIC_ADDRESS:-127.0.0.1}:")
    env_example = (DOCKER / ".env.example").read_text()
    assert re.search(r"^TITLEGEN_PUBLIC_ADDRESS=127\.0\.0\.1$", env_example, re.M)


def test_helm_values_pin_the_image_run_non_root_and_take_the_database_password_from_a_secret():
    values = yaml.safe_load((DOCKER / "k8s" / "values.yaml").read_text())
    deployment = values["dagster-user-deployments"]["deployments"][0]
    tag = str(deployment["image"]["tag"])
    assert tag != "latest" and re.search(r"\d", tag), tag
    assert deployment["image"]["pullPolicy"] in ("IfNotPresent", "Always")
    run_config = values["runLauncher"]["config"]["customRunLauncher"]["config"]["run_k8s_config"]
    for pod in (deployment["podSecurityContext"], run_config["pod_spec_config"]["securityContext"]):
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    for container in (deployment["securityContext"], run_config["container_config"]["securityContext"]):
        assert container["allowPrivilegeEscalation"] is False and container["capabilities"]["drop"] == ["ALL"]
    assert values["postgresql"]["enabled"] is False and "postgresqlPassword" not in values["postgresql"]
    assert values["generatePostgresqlPasswordSecret"] is False and values["global"]["postgresqlSecretName"]
