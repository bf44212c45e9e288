"""Brings up the real Docker stack for the `docker` test suite, and takes it down again.

The running Docker engine is used; only when asked (``TITLEGEN_DOCKER_SUITE=install``, which ``.ci/run`` sets) is
Debian's docker.io installed and an engine started when none answers, and otherwise the suite is skipped. Base
images the Dockerfiles name are stood in for by local builds (``docker_standins/``), since no registry can be
reached; the CPU image is built from ``docker/Dockerfile`` with torch from the machine's local wheel folder and
llama.cpp from the machine's build, and tagged a second time as the suite's GPU image; then ``docker/compose.yaml``
runs with Compose v1 (the one Debian ships). Every image this suite makes has a name of its own under
``titlegen-test/``, mapped in through the compose environment, so a user's images are never shadowed.
Everything started here is stopped by id when the suite ends, and every image, container, volume and network it
made is removed (:class:`DockerInventory`); nothing that was there before is touched, and the suite refuses to start
over a volume or network with one of the stack's fixed names (:func:`refuse_existing_names`).
"""

from __future__ import annotations

import http.server
import json
import os
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

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
STANDINS = Path(__file__).resolve().parent / "docker_standins"
ENGINE_PACKAGES = ["docker.io", "containerd", "runc", "debootstrap", "docker-compose"]
SERVICES = ["postgres", "titlegen_code", "titlegen_gpu_code", "webserver", "daemon"]
#: compose's profile "public", in start order: what nginx names must be up before it starts
PROXY_SERVICES = ["proxy_auth", "webserver_viewer", "proxy"]
# The suite's own names: never the names of the images production pulls or builds.
DEBIAN_IMAGE = "titlegen-test/debian:bookworm-minbase"
STANDIN_IMAGES = {  # docker_standins/<name>.Dockerfile -> the stand-in's tag
    "python": "titlegen-test/python:3.11-slim-bookworm",
    "postgres": "titlegen-test/postgres:16",
    "nginx": "titlegen-test/nginx:1.27",
}
CPU_IMAGE = "titlegen-test/titlegen:cpu"
#: The GPU code location's image: the CPU image under a name of its own, since the GPU image (nvidia/cuda base)
#: cannot be pulled or built here. The name alone shows which location's image a run container started from.
GPU_IMAGE = "titlegen-test/titlegen:gpu"
#: compose.yaml's image variables, pointed at the suite's images (Ollama's service is only created, to inspect what
#: it publishes, never started: any local image will do)
IMAGE_ENV = {"TITLEGEN_PYTHON_IMAGE": STANDIN_IMAGES["python"], "TITLEGEN_POSTGRES_IMAGE": STANDIN_IMAGES["postgres"],
             "TITLEGEN_NGINX_IMAGE": STANDIN_IMAGES["nginx"], "TITLEGEN_CPU_IMAGE": CPU_IMAGE,
             "TITLEGEN_GPU_IMAGE": GPU_IMAGE, "TITLEGEN_OLLAMA_IMAGE": STANDIN_IMAGES["python"]}
PROJECT = "titlegen-ci"
TORCH_INDEX_PORT = 38765
KEEP_IMAGES_ENV = "TITLEGEN_TEST_KEEP_IMAGES"
#: set to "install" (``.ci/run`` does) to let the suite apt-get install and start an engine when none answers
SUITE_ENV = "TITLEGEN_DOCKER_SUITE"


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
    """The running engine, or, only when ``TITLEGEN_DOCKER_SUITE=install`` asks for it, one installed with apt-get
    and started here (with the NVIDIA hook stand-in on its PATH, so NVIDIA device requests start); otherwise the
    suite is skipped, the host left as it is. Yields whether this suite started it; stops only what it started."""
    if engine_answers():
        yield False
        return
    if os.environ.get(SUITE_ENV) != "install":
        import pytest

        pytest.skip(f"no Docker engine answers: the Docker suite is skipped. Start one, or set {SUITE_ENV}=install "
                    "to let the suite install Debian's docker.io with apt-get and start it (as root; .ci/run does)")
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


def make_base_images() -> list[str]:
    """Stand-ins for the base images of the CPU Dockerfile, compose's PostgreSQL and the proxy's nginx, under the
    suite's own names; returns the tags it built (a failing debootstrap or build prints its whole log)."""
    log("building base-image stand-ins (debootstrap the first time: a few minutes)")
    done = run("bash", str(STANDINS / "make_base_images.sh"), DEBIAN_IMAGE,
               *(f"{name}={tag}" for name, tag in STANDIN_IMAGES.items()), timeout=1800)
    return [line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith("built ")]


def require_nvidia_device_requests() -> None:
    """An engine this suite did not start must accept NVIDIA device requests (the NVIDIA Container Toolkit), or the
    training run could not start: say so before building anything."""
    probe = docker("run", "--rm", "--gpus", "all", "--entrypoint", "true", STANDIN_IMAGES["python"],
                   check=False, timeout=120)
    if probe.returncode != 0:
        raise RuntimeError("the running Docker engine refuses NVIDIA device requests "
                           f"({probe.stderr.strip()[-300:]}): install the NVIDIA Container Toolkit, or stop the "
                           "engine so that this suite starts its own with the hook stand-in")


def bridge_gateway() -> str:
    """The host's address on the default bridge, where build containers reach a server on the host.

    An engine started on an empty /var/lib/docker reports the default bridge's IPAM config without a "Gateway"
    (only "Subnet"; the gateway is recorded from its second start on): then the address is read from the bridge
    interface itself. This KeyError was the fresh machine's first-run failure."""
    import ipaddress

    inspected = json.loads(docker("network", "inspect", "bridge").stdout)[0]
    config = inspected["IPAM"]["Config"][0]
    if config.get("Gateway"):
        return config["Gateway"]
    interface = inspected.get("Options", {}).get("com.docker.network.bridge.name", "docker0")
    shown = run("ip", "-o", "-4", "addr", "show", "dev", interface, check=False).stdout.split()
    if "inet" in shown:
        return shown[shown.index("inet") + 1].split("/")[0]
    return str(next(ipaddress.ip_network(config["Subnet"]).hosts()))


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
        class QuietHandler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):  # one line per wheel request would bury the suite's own progress
                pass

        handler = partial(QuietHandler, directory=root)
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


#: what docker/Dockerfile's llama_cpp stage keeps of a built tree (docker/llama_cpp_prebuilt/README.md)
LLAMA_CPP_FILES = ["convert_hf_to_gguf.py", "conversion", "gguf-py", "models/templates", "LICENSE",
                   "build/bin/llama-quantize", "build/bin/llama-server", "build/bin/llama-simple"]


@contextmanager
def staged_llama_cpp(root: Path | None):
    """This machine's llama.cpp build (the tests' own ``llama_cpp`` fixture) staged in the build context, so the
    image copies it rather than compiling for 5 minutes; emptied again afterwards. Without one (None), the image
    compiles its own. Its binaries are static and built GGML_NATIVE=OFF on Debian bookworm, as the image is."""
    stage = DOCKER / "llama_cpp_prebuilt"
    try:
        if root is not None:
            for name in LLAMA_CPP_FILES:
                target = stage / name
                target.parent.mkdir(parents=True, exist_ok=True)
                (shutil.copytree if (root / name).is_dir() else shutil.copy2)(root / name, target)
        yield root
    finally:
        for child in stage.iterdir():
            if child.name != "README.md":
                shutil.rmtree(child) if child.is_dir() else child.unlink()


def build_image(dockerfile: Path, tag: str, context: Path, build_args: dict, timeout: float) -> None:
    """docker build whose failure raises with the build's own output (the failing step's log), not a summary."""
    flags = [item for name, value in build_args.items() for item in ("--build-arg", f"{name}={value}")]
    with tempfile.NamedTemporaryFile("w+", suffix=".log", prefix="docker-build-") as output:
        result = subprocess.run(["docker", "build", "--rm", "--force-rm", "-f", str(dockerfile), "-t", tag, *flags,
                                 str(context)], stdout=output, stderr=subprocess.STDOUT, timeout=timeout)
        if result.returncode != 0:
            output.seek(0)
            lines = output.read().splitlines()
            raise RuntimeError(f"docker build of {tag} from {dockerfile.name} exited {result.returncode}; the last "
                               f"{min(len(lines), 200)} lines of its log:\n" + "\n".join(lines[-200:]))


def build_cpu_image(llama_root: Path | None) -> None:
    with local_torch_index(pip_wheel_dirs()) as build_args, staged_llama_cpp(llama_root):
        if index := host_pip_index():
            build_args["PIP_INDEX_URL"] = index
        build_args["PYTHON_IMAGE"] = STANDIN_IMAGES["python"]
        log(f"building {CPU_IMAGE} from docker/Dockerfile ({', '.join(build_args)}; llama.cpp "
            f"{'from ' + str(llama_root) if llama_root else 'compiled in the image'})")
        build_image(DOCKER / "Dockerfile", CPU_IMAGE, REPO, build_args, timeout=2400)
    docker("tag", CPU_IMAGE, GPU_IMAGE)


@dataclass
class DockerInventory:
    """What the engine held before the suite: images (ids and tags), containers, volumes and networks. ``clean``
    removes only what is new since then, so a user's objects are never touched, and reports what it could not."""

    images: set = field(default_factory=set)
    tags: set = field(default_factory=set)
    containers: set = field(default_factory=set)
    volumes: set = field(default_factory=set)
    networks: set = field(default_factory=set)

    @staticmethod
    def now() -> DockerInventory:
        def listed(*args: str) -> set:
            return set(docker(*args).stdout.split())

        return DockerInventory(
            images=listed("images", "-aq", "--no-trunc"),
            tags=listed("images", "--format", "{{.Repository}}:{{.Tag}}") - {"<none>:<none>"},
            containers=listed("ps", "-aq", "--no-trunc"),
            volumes=listed("volume", "ls", "-q"),
            networks=listed("network", "ls", "-q", "--no-trunc"),
        )

    def gone_since(self, before: DockerInventory) -> DockerInventory:
        """What ``before`` held that is no longer here (the suite must leave it all)."""
        return before.new_since(self)

    def new_since(self, before: DockerInventory) -> DockerInventory:
        return DockerInventory(*(getattr(self, k) - getattr(before, k) for k in
                                 ("images", "tags", "containers", "volumes", "networks")))

    def is_empty(self) -> bool:
        return not any((self.images, self.tags, self.containers, self.volumes, self.networks))

    def clean(self, before: DockerInventory, keep_tags: set = frozenset()) -> DockerInventory:
        """Removes what is new since ``before`` (the tags in ``keep_tags`` and their layers excepted); returns what
        is still new afterwards."""
        new = DockerInventory.now().new_since(before)
        if new.containers:
            docker("rm", "-f", "-v", *new.containers, check=False)
        for volume in DockerInventory.now().new_since(before).volumes:
            docker("volume", "rm", "-f", volume, check=False)
        for network in new.networks:
            docker("network", "rm", network, check=False)
        # --no-prune throughout: ``docker rmi`` also deletes a removed image's untagged parents, and such a parent may
        # have been here before (the layers an interrupted build left, which this suite's build reused from the cache)
        for tag in new.tags - set(keep_tags):
            docker("rmi", "--no-prune", "-f", tag, check=False)
        kept = set()  # the kept images and the layers they are built on (the legacy builder's intermediate images)
        for tag in keep_tags:
            kept.add(docker("image", "inspect", "--format", "{{.Id}}", tag, check=False).stdout.strip())
            kept.update(docker("history", "-q", "--no-trunc", tag, check=False).stdout.split())
        remaining = DockerInventory.now().new_since(before).images - kept
        while remaining:
            for image in children_first(remaining):
                docker("rmi", "--no-prune", image, check=False)
            still = DockerInventory.now().new_since(before).images - kept
            if still == remaining:  # nothing more can go: reported below
                break
            remaining = still
        left = DockerInventory.now().new_since(before)
        left.tags -= set(keep_tags)
        left.images -= kept
        return left


def children_first(images: set) -> list:
    """``images``, each before its parent (``docker rmi`` refuses an image that has children)."""
    lines = docker("image", "inspect", "--format", "{{.Id}} {{.Parent}}", *images, check=False).stdout.splitlines()
    parent = dict((line.split(" ") + [""])[:2] for line in lines)

    def ancestors(image: str) -> int:
        count = 0
        while (image := parent.get(image)) in parent:
            count += 1
        return count

    return sorted(images, key=ancestors, reverse=True)


def fixed_names(compose: dict, project: str) -> tuple[set[str], set[str]]:
    """The volume and network names the stack takes on the engine: a ``name:`` of its own, or the project's prefix."""
    def named(section: str) -> set[str]:
        return {(spec or {}).get("name") or f"{project}_{key}" for key, spec in compose.get(section, {}).items()}

    return named("volumes"), named("networks")


def refuse_existing_names(compose: dict, project: str = PROJECT) -> None:
    """Raises when a volume or network the stack would create is already on the engine (a real stack's, or a
    crashed suite's): compose would reuse it, the suite's runs would write into it and join its network, and it is
    not the suite's to remove."""
    volumes, networks = fixed_names(compose, project)
    taken = sorted(volumes & set(docker("volume", "ls", "-q").stdout.split())) + sorted(
        networks & set(docker("network", "ls", "--format", "{{.Name}}").stdout.split()))
    if taken:
        raise RuntimeError(f"the Docker engine already holds {', '.join(taken)}, which the suite's stack would take "
                           "over (a real titlegen stack's, or a crashed suite's): the suite does not run beside it "
                           "and never removes what it did not create. Stop that stack, or remove them yourself if "
                           "they are disposable (docker volume rm / docker network rm), then run again")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


OLLAMA_DOUBLE_COMPOSE = Path(__file__).resolve().parent / "compose.ollama-double.yaml"
#: the port the webserver listens on inside its container (compose.yaml's command)
UI_PORT = 3000
#: what the suite configures through the env file, to prove the settings reach the containers
DAGSTER_MEM_LIMIT = "3g"


@dataclass
class Stack:
    """Compose v1 on docker/compose.yaml (and the suite's Ollama double) with a throwaway env file; the names,
    ports and credentials the tests talk to."""

    env_file: Path
    settings: dict
    proxy_credentials: tuple[str, str]   # an operator's
    viewer_credentials: tuple[str, str]
    tls_cert: Path

    @property
    def ui_address(self) -> str:
        """The webserver's address on the stack's network: the UI is not published on the host (it has no login);
        the host reaches a container's address on its bridge directly."""
        return docker("inspect", "--format", '{{(index .NetworkSettings.Networks "titlegen").IPAddress}}',
                      self.container("webserver")).stdout.strip()

    @property
    def proxy_port(self) -> int:
        return int(self.settings["TITLEGEN_PUBLIC_PORT"])

    def compose(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return run("docker-compose", "-p", PROJECT, "-f", str(DOCKER / "compose.yaml"), "-f",
                   str(OLLAMA_DOUBLE_COMPOSE), "--env-file", str(self.env_file), *args, **kwargs)

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).stdout.strip()

    def health(self, service: str) -> str:
        return docker("inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}"
                      "{{end}}", self.container(service)).stdout.strip()

    def wait_healthy(self, services: list[str], timeout_s: float = 420) -> None:
        deadline = time.monotonic() + timeout_s
        while (states := {s: self.health(s) for s in services}) and set(states.values()) != {"healthy"}:
            if "unhealthy" in states.values() or "exited" in states.values() or time.monotonic() > deadline:
                logs = {s: self.compose("logs", "--tail", "30", s, check=False).stdout for s in services}
                raise RuntimeError(f"services not healthy: {states}\n" + "\n".join(logs.values()))
            time.sleep(3)
        log(f"healthy: {', '.join(services)}")

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        """A query against the webserver's GraphQL endpoint, as the UI sends it."""
        import httpx

        response = httpx.post(f"http://{self.ui_address}:{UI_PORT}/graphql", json={"query": query,
                              "variables": variables or {}}, timeout=60)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def psql(self, query: str) -> list[list[str]]:
        out = docker("exec", self.container("postgres"), "psql", "-U", self.settings["POSTGRES_USER"], "-d",
                     self.settings["POSTGRES_DB"], "-tA", "-F", "\t", "-c", query).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def down(self) -> None:
        """Stops and removes by id what compose started. Its networks and volumes are left to the suite's
        inventory, which removes only what is new (``compose down -v`` would remove a fixed-name volume whoever made
        it)."""
        ids = self.compose("--profile", "public", "ps", "-q", check=False).stdout.split()
        if ids:
            docker("rm", "-f", "-v", *ids, check=False)


#: the proxy's failed-login limit in the suite: short, so the lockout test can wait its window out
PROXY_LOGIN_LIMIT = {"TITLEGEN_LOGIN_MAX_FAILURES": "5", "TITLEGEN_LOGIN_WINDOW_S": "15"}


def proxy_files(workdir: Path) -> tuple[dict, dict[str, tuple[str, str]], Path]:
    """What the README tells the operator to make for the proxy: a self-signed certificate and key (the key
    readable by the proxy's uid 101 only), a password file (bcrypt, made with the service's own ``hash``) with an
    operator and a viewer, and the operators file; returns the env settings, the credentials by role and the
    certificate to trust."""
    tls = workdir / "tls"
    tls.mkdir()
    cert, key = tls / "cert.pem", tls / "key.pem"
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert))
    os.chown(key, 101, 101)
    key.chmod(0o400)
    credentials = {role: (f"titlegen-{role}", secrets.token_urlsafe(16)) for role in ("operator", "viewer")}
    htpasswd, operators = workdir / "htpasswd", workdir / "operators"
    htpasswd.write_text("".join(run(sys.executable, "-m", "titlegen_assets.deploy.proxy_auth", "hash", user,
                                    input=password + "\n", cwd=REPO).stdout for user, password in credentials.values()))
    operators.write_text(credentials["operator"][0] + "\n")
    for made in (htpasswd, operators):
        made.chmod(0o644)   # read by the service's uid 10001
    return ({"TITLEGEN_TLS_CERT": str(cert), "TITLEGEN_TLS_KEY": str(key), "TITLEGEN_HTPASSWD": str(htpasswd),
             "TITLEGEN_OPERATORS": str(operators), "TITLEGEN_PUBLIC_HOST": "localhost",
             "TITLEGEN_PUBLIC_PORT": str(free_port()), **PROXY_LOGIN_LIMIT}, credentials, cert)


@contextmanager
def compose_stack(workdir: Path):
    """PostgreSQL, both code locations, webserver and daemon healthy, then the Ollama double and the public proxy
    with its authentication service and the viewers' read-only webserver."""
    settings = dict(line.split("=", 1) for line in (DOCKER / ".env.example").read_text().splitlines()
                    if line and not line.startswith("#"))
    proxy_settings, credentials, cert = proxy_files(workdir)
    settings.update(POSTGRES_PASSWORD=secrets.token_hex(12), DAGSTER_UI_PORT=str(free_port()), HF_TOKEN="",
                    DOCKER_GID=str(os.stat("/var/run/docker.sock").st_gid), OLLAMA_HOST="http://ollama_double:11434",
                    DAGSTER_MEM_LIMIT=DAGSTER_MEM_LIMIT, OLLAMA_CPUS="1",
                    **IMAGE_ENV, **proxy_settings)
    env_file = workdir / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    stack = Stack(env_file=env_file, settings=settings, proxy_credentials=credentials["operator"],
                  viewer_credentials=credentials["viewer"], tls_cert=cert)
    try:
        log("compose up: " + ", ".join(SERVICES))
        stack.compose("up", "-d", "--no-build", *SERVICES, timeout=600)
        stack.wait_healthy(SERVICES)
        log("compose up: ollama_double, " + ", ".join(PROXY_SERVICES) + " (profile public)")
        stack.compose("--profile", "public", "up", "-d", "--no-build", "--no-deps", "ollama_double",
                      *PROXY_SERVICES[:-1], timeout=300)
        stack.wait_healthy(["ollama_double", *PROXY_SERVICES[:-1]], timeout_s=300)
        stack.compose("--profile", "public", "up", "-d", "--no-build", "--no-deps", "proxy", timeout=300)
        log("compose create: ollama (not started: its image cannot be had; created to inspect what it publishes)")
        stack.compose("up", "--no-start", "--no-deps", "ollama", timeout=120)
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
