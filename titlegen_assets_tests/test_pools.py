"""One GPU run at a time, shown with a real dagster-daemon on the Docker stack's own concurrency settings
(docker/dagster.yaml's run coordinator and pools; storage on SQLite and runs in subprocesses instead of PostgreSQL
and containers): of two runs with a GPU-pool step the second waits in the queue until the first ends, while a run
without one starts beside it."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml

from titlegen_assets_tests.pool_location import RELEASE_ALL, RELEASE_DIR

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WAIT_S = 240  # a loaded 2-core machine takes seconds per Python process that imports dagster


def stack_instance_config() -> dict:
    """docker/dagster.yaml's queue and pools; the queue polled every second so the test does not wait 5 s a turn."""
    shipped = yaml.safe_load((REPO / "docker" / "dagster.yaml").read_text())
    coordinator = {**shipped["run_coordinator"], "config": {"dequeue_interval_seconds": 1}}
    return {"run_coordinator": coordinator, "concurrency": shipped["concurrency"], "telemetry": {"enabled": False}}


@pytest.fixture
def daemon(tmp_path):
    """DAGSTER_HOME with the stack's concurrency settings and a running dagster-daemon; yields (workdir, env). At
    the end every run still holding is released, so no run process outlives the test."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(stack_instance_config()))
    (tmp_path / "workspace.yaml").write_text(yaml.safe_dump({"load_from": [{"python_module": {
        "module_name": "titlegen_assets_tests.pool_location", "working_directory": str(REPO)}}]}))
    (tmp_path / "released").mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home), RELEASE_DIR: str(tmp_path / "released")}
    # The storage made before the daemon starts: the daemon and the first `dagster job launch` creating the same
    # SQLite schema at once failed one launch in two on a loaded host.
    subprocess.run([str(BIN / "dagster"), "instance", "migrate"], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=WAIT_S)
    log = open(tmp_path / "daemon.log", "w")
    process = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(tmp_path / "workspace.yaml")],
                               cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield tmp_path, env
    finally:
        (tmp_path / "released" / RELEASE_ALL).touch()
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def launch(workdir: Path, env: dict, job: str) -> str:
    """Submits a run as `dagster job launch` does from a shell: onto the queue."""
    run_id = str(uuid.uuid4())
    subprocess.run([str(BIN / "dagster"), "job", "launch", "-w", str(workdir / "workspace.yaml"), "-j", job,
                    "--run-id", run_id], cwd=workdir, env=env, check=True, capture_output=True, timeout=WAIT_S)
    return run_id


def wait_for(workdir: Path, condition, what: str):
    deadline = time.monotonic() + WAIT_S
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {WAIT_S} s; daemon log:\n"
                               + (workdir / "daemon.log").read_text()[-3000:])
        time.sleep(0.5)
    return found


def test_a_second_gpu_run_waits_in_the_queue_until_the_first_ends_and_a_cpu_run_does_not(daemon, monkeypatch):
    workdir, env = daemon
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    gpu_runs = [launch(workdir, env, "gpu_job"), launch(workdir, env, "gpu_job")]
    with dg.DagsterInstance.get() as instance:
        def status(run_id: str) -> dg.DagsterRunStatus:
            return instance.get_run_by_id(run_id).status

        first = wait_for(workdir, lambda: next(
            (r for r in gpu_runs if status(r) == dg.DagsterRunStatus.STARTED), None), "a GPU run started")
        second = next(r for r in gpu_runs if r != first)
        cpu_run = launch(workdir, env, "cpu_job")
        wait_for(workdir, lambda: status(cpu_run) == dg.DagsterRunStatus.SUCCESS,
                 "the CPU run ran beside the GPU run")
        time.sleep(5)  # five turns of the queue with the GPU slot held
        assert status(first) == dg.DagsterRunStatus.STARTED
        assert status(second) == dg.DagsterRunStatus.QUEUED, "a second GPU run started while the first held the GPU"

        (workdir / "released" / first).touch()
        wait_for(workdir, lambda: status(first) == dg.DagsterRunStatus.SUCCESS, "the first GPU run ended")
        wait_for(workdir, lambda: status(second) == dg.DagsterRunStatus.STARTED,
                 "the second GPU run started once the first ended")
        (workdir / "released" / second).touch()
        wait_for(workdir, lambda: status(second) == dg.DagsterRunStatus.SUCCESS, "the second GPU run ended")
