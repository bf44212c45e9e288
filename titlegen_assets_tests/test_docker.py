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


def test_ollama_gets_the_gpu_and_services_have_health_checks():
    services = COMPOSE["services"]
    assert services["ollama"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    for name in ("postgres", "titlegen_code", "webserver", "ollama"):
        assert "healthcheck" in services[name], name
    assert COMPOSE["networks"]["titlegen"]["name"] == "titlegen"
    assert COMPOSE["volumes"]["artifacts"]["name"] == "titlegen_artifacts"


def test_dagster_yaml_passes_dagster_instance_config_validation_and_builds_the_launcher(monkeypatch):
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config

    from titlegen_assets.docker_launcher import GpuAwareDockerRunLauncher

    config, _ = dagster_instance_config(str(DOCKER))
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("titlegen_assets.docker_launcher", "GpuAwareDockerRunLauncher")
    validated = validate_config(GpuAwareDockerRunLauncher.config_type(), launcher["config"])
    assert validated.success, validated.errors
    for name in launcher["config"]["env_vars"]:
        monkeypatch.setenv(name, "x")
    built = GpuAwareDockerRunLauncher(**launcher["config"])
    assert built.gpu_image == "titlegen:gpu" and built.gpu_container_kwargs["device_requests"][0]["driver"] == "nvidia"
    assert config["concurrency"]["runs"]["tag_concurrency_limits"][0] == {"key": "titlegen/gpu", "value": "true", "limit": 1}
    assert config["concurrency"]["pools"]["default_limit"] == 1


def test_helm_values_use_the_code_location_and_gpu_steps_request_nvidia_gpus():
    from titlegen_assets.gpu import GPU_OP_TAGS

    values = yaml.safe_load((DOCKER / "k8s" / "values.yaml").read_text())
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "titlegen_assets.definitions"]
    assert {"name": "TITLEGEN_EXECUTOR", "value": "k8s"} in deployment["env"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert GPU_OP_TAGS["dagster-k8s/config"]["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
