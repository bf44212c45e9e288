"""Brings up the real Docker stack for the `docker` test suite, and takes it down again.

A Docker engine (Debian's docker.io) is installed and started when none answers; base images the Dockerfiles name
are stood in for by local builds (``docker_standins/``), since no registry can be reached; ``titlegen:cpu`` is built
from ``docker/Dockerfile`` with torch from the machine's local wheel folder; then ``docker/compose.yaml`` runs with
Compose v1 (the one Debian ships). Everything started here is stopped by id when the suite ends.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
STANDINS = Path(__file__).resolve().parent / "docker_standins"
ENGINE_PACKAGES = ["docker.io", "containerd", "runc", "debootstrap", "docker-compose"]
SERVICES = ["postgres", "titlegen_code", "webserver", "daemon"]
CPU_IMAGE = "titlegen:cpu"
PROJECT = "titlegen-ci"
TORCH_INDEX_PORT = 38765


def log(message: str) -> None:
    print(f"[docker suite {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(*args: str, check: bool = True, timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    """A command whose failure shows its output (a build or compose error is useless without it)."""
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} ... exited {result.returncode}:\n{result.stdout[-3000:]}\n"
                           f"{result.stderr[-3000:]}")
    return result


def docker(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run("docker", *args, **kwargs)


def engine_answers() -> bool:
    return shutil.which("docker") is not None and docker("version", "--format", "{{.Server.Version}}", check=False,
                                                         timeout=30).returncode == 0


@contextmanager
def docker_engine(hook_log: Path):
    """The running engine, or one installed with apt-get and started here (with the NVIDIA hook stand-in on its
    PATH, so NVIDIA device requests start). Yields whether this suite started it; stops only what it started."""
    if engine_answers():
        yield False
        return
    if shutil.which("dockerd") is None:
        log(f"installing {' '.join(ENGINE_PACKAGES)} with apt-get")
        run("apt-get", "update", timeout=600)
        run("apt-get", "install", "-y", "--no-install-recommends", *ENGINE_PACKAGES, timeout=900,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    env = {**os.environ, "PATH": f"{STANDINS}:{os.environ['PATH']}", "TITLEGEN_NVIDIA_HOOK_LOG": str(hook_log)}
    engine_log = open(hook_log.with_name("dockerd.log"), "w")
    dockerd = subprocess.Popen(["dockerd"], env=env, stdout=engine_log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not engine_answers():
            if dockerd.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not come up; see {engine_log.name}")
            time.sleep(0.5)
        log(f"started dockerd (pid {dockerd.pid})")
        yield True
    finally:
        dockerd.terminate()  # its containerd ends with it
        try:
            dockerd.wait(timeout=60)
        except subprocess.TimeoutExpired:
            dockerd.kill()
        engine_log.close()


def from_image(dockerfile: Path) -> str:
    return re.search(r"^FROM\s+(\S+)", dockerfile.read_text(), re.MULTILINE).group(1)


def make_base_images() -> None:
    """Stand-ins for the images the CPU Dockerfile and compose's PostgreSQL name, tagged with those names."""
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    log("building base-image stand-ins (debootstrap the first time: a few minutes)")
    run("bash", str(STANDINS / "make_base_images.sh"), from_image(DOCKER / "Dockerfile"),
        compose["services"]["postgres"]["image"], timeout=1200)


def require_nvidia_device_requests() -> None:
    """An engine this suite did not start must accept NVIDIA device requests (the NVIDIA Container Toolkit), or the
    training run could not start: say so before building anything."""
    probe = docker("run", "--rm", "--gpus", "all", "--entrypoint", "true", from_image(DOCKER / "Dockerfile"),
                   check=False, timeout=120)
    if probe.returncode != 0:
        raise RuntimeError("the running Docker engine refuses NVIDIA device requests "
                           f"({probe.stderr.strip()[-300:]}): install the NVIDIA Container Toolkit, or stop the "
                           "engine so that this suite starts its own with the hook stand-in")


def bridge_gateway() -> str:
    """The host's address on the default bridge, where build containers reach a server on the host."""
    inspected = json.loads(docker("network", "inspect", "bridge").stdout)
    return inspected[0]["IPAM"]["Config"][0]["Gateway"]


def serve_on_stable_port(host: str, handler) -> http.server.ThreadingHTTPServer:
    """The same port every time where it is free: the index URL is a build argument, and a new value would
    invalidate the image's cached dependency layer."""
    try:
        return http.server.ThreadingHTTPServer((host, TORCH_INDEX_PORT), handler)
    except OSError:
        return http.server.ThreadingHTTPServer((host, 0), handler)


@contextmanager
def local_torch_index(wheel_dirs: list[str]):
    """This machine's CPU torch wheel served to build containers as a simple index (the Dockerfile's
    TORCH_INDEX_URL); yields the build arguments, or none (PyTorch's own index) when no such wheel is here."""
    wheels = [w for d in wheel_dirs for w in sorted(Path(d).glob("torch-2.13.0+cpu-cp311-*.whl"))]
    if not wheels:
        yield {}
        return
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "simple" / "torch").mkdir(parents=True)
        (Path(root) / "simple" / "torch" / wheels[0].name).symlink_to(wheels[0])
        host = bridge_gateway()
        handler = partial(http.server.SimpleHTTPRequestHandler, directory=root)
        handler.log_message = lambda *a: None
        server = serve_on_stable_port(host, handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield {"TORCH_INDEX_URL": f"http://{host}:{server.server_port}/simple", "PIP_TRUSTED_HOST": host}
        finally:
            server.shutdown()
            server.server_close()


def host_pip_index() -> str | None:
    """The index this machine's pip uses (PIP_INDEX_URL or pip's config), for the build to use the same one."""
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"]
    configured = run(sys.executable, "-m", "pip", "config", "get", "global.index-url", check=False).stdout.strip()
    return configured or None


def pip_wheel_dirs() -> list[str]:
    """Local wheel folders pip is told about here (find-links), where the CPU torch wheel may lie."""
    found = os.environ.get("PIP_FIND_LINKS", "").split()
    found += run(sys.executable, "-m", "pip", "config", "get", "global.find-links", check=False).stdout.split()
    return [d for d in dict.fromkeys(found) if Path(d).is_dir()]


def build_cpu_image() -> None:
    with local_torch_index(pip_wheel_dirs()) as build_args:
        if index := host_pip_index():
            build_args["PIP_INDEX_URL"] = index
        flags = [item for name, value in build_args.items() for item in ("--build-arg", f"{name}={value}")]
        log(f"building {CPU_IMAGE} from docker/Dockerfile ({', '.join(build_args) or 'default indexes'})")
        docker("build", "-q", "-f", str(DOCKER / "Dockerfile"), "-t", CPU_IMAGE, *flags, str(REPO), timeout=1500)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Stack:
    """Compose v1 on docker/compose.yaml with a throwaway env file; the names and ports the tests talk to."""

    env_file: Path
    ui_port: int
    postgres: dict = field(default_factory=dict)

    def compose(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return run("docker-compose", "-p", PROJECT, "-f", str(DOCKER / "compose.yaml"), "--env-file",
                   str(self.env_file), *args, **kwargs)

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).stdout.strip()

    def health(self, service: str) -> str:
        return docker("inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}"
                      "{{end}}", self.container(service)).stdout.strip()

    def wait_healthy(self, timeout_s: float = 420) -> None:
        deadline = time.monotonic() + timeout_s
        while (states := {s: self.health(s) for s in SERVICES}) and set(states.values()) != {"healthy"}:
            if "unhealthy" in states.values() or "exited" in states.values() or time.monotonic() > deadline:
                logs = {s: self.compose("logs", "--tail", "30", s, check=False).stdout for s in SERVICES}
                raise RuntimeError(f"services not healthy: {states}\n" + "\n".join(logs.values()))
            time.sleep(3)
        log(f"healthy: {', '.join(SERVICES)}")

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        """A query against the webserver's GraphQL endpoint, as the UI sends it."""
        import httpx

        response = httpx.post(f"http://127.0.0.1:{self.ui_port}/graphql", json={"query": query,
                              "variables": variables or {}}, timeout=60)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def psql(self, query: str) -> list[list[str]]:
        out = docker("exec", self.container("postgres"), "psql", "-U", self.postgres["POSTGRES_USER"], "-d",
                     self.postgres["POSTGRES_DB"], "-tA", "-F", "\t", "-c", query).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def down(self) -> None:
        """Stops and removes by id what compose started, then its networks and volumes."""
        ids = self.compose("ps", "-q", check=False).stdout.split()
        if ids:
            docker("rm", "-f", "-v", *ids, check=False)
        self.compose("down", "-v", "--remove-orphans", check=False)


@contextmanager
def compose_stack(workdir: Path):
    settings = dict(line.split("=", 1) for line in (DOCKER / ".env.example").read_text().splitlines()
                    if line and not line.startswith("#"))
    settings.update(POSTGRES_PASSWORD=secrets.token_hex(12), DAGSTER_UI_PORT=str(free_port()), HF_TOKEN="",
                    TITLEGEN_GPU_IMAGE=CPU_IMAGE)  # no GPU image here: GPU runs start from the CPU image
    env_file = workdir / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    stack = Stack(env_file=env_file, ui_port=int(settings["DAGSTER_UI_PORT"]),
                  postgres={k: settings[k] for k in ("POSTGRES_USER", "POSTGRES_DB")})
    try:
        log("compose up: " + ", ".join(SERVICES))
        stack.compose("up", "-d", "--no-build", *SERVICES, timeout=600)
        stack.wait_healthy()
        yield stack
    finally:
        stack.down()


def run_containers(run_id: str) -> list[str]:
    return docker("ps", "-aq", "--no-trunc", "--filter", f"label=dagster/run_id={run_id}").stdout.split()


def inspect(container_id: str) -> dict | None:
    result = docker("inspect", container_id, check=False)
    return json.loads(result.stdout)[0] if result.returncode == 0 else None


def failure_messages(stack: Stack, run_id: str) -> list[str]:
    """Why a run failed, as its page in the UI says: step and run failure messages with their error."""
    events = stack.graphql("""query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
        __typename ... on MessageEvent { message } ... on ExecutionStepFailureEvent { error { message } }
        ... on RunFailureEvent { error { message } } } } } }""", {"id": run_id})["logsForRun"]["events"]
    failed = [e for e in events if e["__typename"] in ("ExecutionStepFailureEvent", "RunFailureEvent",
                                                       "EngineEvent") and ("error" in e or "fail" in e["message"].lower())]
    return [f"{e['message']} {(e.get('error') or {}).get('message', '')}".strip() for e in failed]


def follow_run(client, run_id: str, timeout_s: float) -> dict:
    """Waits for the run to finish; inspects its run container while it exists (the engine removes it at exit)."""
    from dagster import DagsterRunStatus

    seen: dict = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for container_id in run_containers(run_id):
            if container_id not in seen and (attrs := inspect(container_id)):
                seen[container_id] = attrs
        status = client.get_run_status(run_id)
        if status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
            return {"status": status, "containers": seen}
        time.sleep(0.5)
    raise TimeoutError(f"run {run_id} did not finish in {timeout_s:.0f} s")
