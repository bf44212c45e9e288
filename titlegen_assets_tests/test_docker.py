"""What can be checked of the Docker stack without a Docker engine: files parse, references exist, variables are
documented, the instance config passes Dagster's own validation, and nothing listens unauthenticated off-host."""

import re
from pathlib import Path

import pytest
import yaml

DOCKER = Path(__file__).resolve().parents[1] / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
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
    text = (DOCKER / "compose.yaml").read_text()
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


def test_the_stack_exposes_no_unauthenticated_port_off_the_host():
    for name, service in COMPOSE["services"].items():
        for port in service.get("ports", []):
            if name != "proxy":
                assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    proxy = COMPOSE["services"]["proxy"]
    assert proxy["profiles"] == ["public"]
    assert "auth_basic_user_file" in (DOCKER / "proxy" / "nginx.conf").read_text()


def test_ollama_gets_the_gpu_and_every_long_running_service_has_a_health_check():
    services = COMPOSE["services"]
    assert services["ollama"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    for name in set(services) - {"proxy", "titlegen_gpu_image"}:  # the opt-in proxy; an image build, no service
        assert "healthcheck" in services[name], name


def test_every_image_is_pinned_to_a_version():
    built_here = {s["image"] for s in COMPOSE["services"].values() if "build" in s}
    images = [with_defaults(s["image"]) for s in COMPOSE["services"].values() if s["image"] not in built_here]
    for dockerfile in ("Dockerfile", "Dockerfile.gpu"):
        text = (DOCKER / dockerfile).read_text()
        args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.M))
        images += [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
                   for image in re.findall(r"^FROM\s+(\S+)", text, re.M)]
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name and re.search(r"\d", tag) and tag != "latest", f"{image} is not pinned to a version"


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


def test_every_variable_the_launcher_forwards_is_set_for_the_daemon():
    instance = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
    daemon_env = COMPOSE["services"]["daemon"]["environment"]
    missing = [name for name in instance["run_launcher"]["config"]["env_vars"] if name not in daemon_env]
    assert not missing, missing


def test_dagster_yaml_builds_the_launcher_dagster_would_with_the_gpu_image_from_the_environment(monkeypatch):
    """Through Dagster's own instance config loading and class rehydration, as dagster-daemon does at start."""
    from dagster._core.instance.config import dagster_instance_config
    from dagster._serdes.config_class import ConfigurableClassData

    from titlegen_assets.deploy.docker_launcher import GpuAwareDockerRunLauncher

    config, _ = dagster_instance_config(str(DOCKER))
    launcher = config["run_launcher"]
    for name in launcher["config"]["env_vars"]:
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("TITLEGEN_CPU_IMAGE", "registry.example.com/titlegen:cpu-2026.11")
    monkeypatch.setenv("TITLEGEN_GPU_IMAGE", "registry.example.com/titlegen:gpu-2026.11")
    built = ConfigurableClassData(launcher["module"], launcher["class"], yaml.dump(launcher["config"])).rehydrate(
        as_type=GpuAwareDockerRunLauncher)
    assert built.gpu_image == "registry.example.com/titlegen:gpu-2026.11"
    assert built.image == "registry.example.com/titlegen:cpu-2026.11"
    assert built.gpu_container_kwargs["device_requests"][0]["driver"] == "nvidia"
    assert "device_requests" not in built.container_kwargs, "CPU runs must not ask for a GPU"


def test_helm_values_mount_the_code_locations_artifact_root_into_run_and_step_pods():
    """Run pods (K8sRunLauncher) and, through it, step pods (k8s_job_executor) mount the PVC where TITLEGEN_HOME
    points in the code location: outputs of one pod are loaded by the next."""
    values = yaml.safe_load((DOCKER / "k8s" / "values.yaml").read_text())
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "titlegen_assets.definitions"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["TITLEGEN_EXECUTOR"] == "k8s"
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    for pod in (deployment, launcher):
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
        mounted = {m["mountPath"]: claims[m["name"]] for m in pod["volumeMounts"]}
        assert mounted.get(env["TITLEGEN_HOME"]) == "titlegen-artifacts", pod


# --- issue 21: secrets, confinement, the public proxy, the Helm values ---------------------------------------------

LONG_RUNNING = sorted(set(COMPOSE["services"]) - {"titlegen_gpu_image"})


def test_hf_token_reaches_only_the_services_that_use_it():
    environments = {name: service.get("environment", {}) for name, service in COMPOSE["services"].items()}
    assert "HF_TOKEN" not in environments["webserver"]
    assert {name for name, env in environments.items() if "HF_TOKEN" in env} == {"titlegen_code", "daemon"}


@pytest.mark.parametrize("service", LONG_RUNNING)
def test_every_service_restarts_drops_capabilities_and_has_limits(service):
    config = COMPOSE["services"][service]
    assert config["restart"] == "unless-stopped"
    assert config["security_opt"] == ["no-new-privileges:true"]
    assert config["cap_drop"] == ["ALL"] and "cap_add" not in config
    assert with_defaults(str(config["mem_limit"]))
    assert isinstance(config["pids_limit"], int) and config["pids_limit"] > 0, "Compose v1 passes strings on"
    if service != "ollama":  # the official Ollama image has no other user (README, "Security")
        assert str(config["user"]).split(":")[0] not in ("", "0", "root")


def test_the_titlegen_services_run_as_the_user_the_images_create():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    uid = re.search(r"useradd --uid (\d+)", dockerfile).group(1)
    assert re.search(rf"^USER {uid}:{uid}$", dockerfile, re.M)
    assert re.search(rf"useradd --uid {uid} ", (DOCKER / "Dockerfile.gpu").read_text())
    for name in ("titlegen_code", "webserver", "daemon"):
        assert COMPOSE["services"][name]["user"] == f"{uid}:{uid}", name
    launcher = yaml.safe_load((DOCKER / "dagster.yaml").read_text())["run_launcher"]["config"]
    assert launcher["container_kwargs"]["user"] == f"{uid}:{uid}"


def test_run_containers_are_confined_like_the_services():
    kwargs = yaml.safe_load((DOCKER / "dagster.yaml").read_text())["run_launcher"]["config"]["container_kwargs"]
    assert kwargs["security_opt"] == ["no-new-privileges:true"] and kwargs["cap_drop"] == ["ALL"]
    assert kwargs["mem_limit"] and kwargs["pids_limit"] > 0


def test_the_proxy_terminates_tls_rate_limits_failed_logins_and_hides_its_version():
    conf = (DOCKER / "proxy" / "nginx.conf").read_text()
    assert re.search(r"listen 8443 ssl;", conf) and "ssl_certificate_key" in conf
    assert re.search(r"^\s*listen\s+(?!8443 ssl)", conf, re.M) is None, "a listener without TLS"
    assert "server_tokens off;" in conf and "limit_req zone=failed_logins" in conf
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
    run_config = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    for pod in (deployment["podSecurityContext"], run_config["podSpecConfig"]["securityContext"]):
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    for container in (deployment["securityContext"], run_config["containerConfig"]["securityContext"]):
        assert container["allowPrivilegeEscalation"] is False and container["capabilities"]["drop"] == ["ALL"]
    assert values["postgresql"]["enabled"] is False and "postgresqlPassword" not in values["postgresql"]
    assert values["generatePostgresqlPasswordSecret"] is False and values["global"]["postgresqlSecretName"]
