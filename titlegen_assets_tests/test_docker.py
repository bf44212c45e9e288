"""What can be checked of the Docker stack without a Docker engine: files parse, references exist, variables are
documented, the instance config passes Dagster's own validation, and nothing listens unauthenticated off-host."""

import re
from pathlib import Path

import pytest
import yaml

DOCKER = Path(__file__).resolve().parents[1] / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())


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
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (root / source).exists(), f"{dockerfile}: {source}"


def test_every_variable_the_compose_file_uses_is_in_env_example():
    used = set(re.findall(r"\$\{(\w+)", (DOCKER / "compose.yaml").read_text()))
    documented = {line.split("=", 1)[0] for line in (DOCKER / ".env.example").read_text().splitlines()
                  if line and not line.startswith("#")}
    assert used and used <= documented, used - documented
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
    images = [s["image"] for s in COMPOSE["services"].values() if s["image"] not in built_here]
    images += [re.search(r"^FROM\s+(\S+)", (DOCKER / f).read_text(), re.M).group(1) for f in ("Dockerfile", "Dockerfile.gpu")]
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
    monkeypatch.setenv("TITLEGEN_GPU_IMAGE", "registry.example.com/titlegen:gpu-2026.11")
    built = ConfigurableClassData(launcher["module"], launcher["class"], yaml.dump(launcher["config"])).rehydrate(
        as_type=GpuAwareDockerRunLauncher)
    assert built.gpu_image == "registry.example.com/titlegen:gpu-2026.11"
    assert built.image != built.gpu_image
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
