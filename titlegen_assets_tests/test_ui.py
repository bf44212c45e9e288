"""The UI as a person starts it: `dagster dev` on 127.0.0.1, asked through its GraphQL API, stopped by its pid."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

#: The seven assets and the observable source retraining watches.
ASSETS = {"watched_source", "raw_dataset", "cleaned_splits", "lora_adapter", "merged_hf_model", "hf_repo", "ollama_model",
          "latency_report"}
QUERY = """{ assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } } }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dagster_dev(tmp_path):
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "TITLEGEN_HOME": str(tmp_path / "artifacts")}
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-m", "titlegen_assets.definitions", "-h", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, "dagster dev exited before answering"
            time.sleep(1)
        else:
            pytest.fail("dagster dev did not answer within 120 s")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # dagster dev ignores signals sent only to its own pid
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_dagster_dev_serves_the_watched_source_the_seven_assets_and_their_checks(dagster_dev):
    deadline = time.monotonic() + 60
    while True:  # the code location loads a moment after the webserver answers
        nodes = requests.post(f"{dagster_dev}/graphql", json={"query": QUERY}, timeout=30).json()["data"]["assetNodes"]
        if nodes or time.monotonic() > deadline:
            break
        time.sleep(1)
    assets = {"/".join(node["assetKey"]["path"]) for node in nodes}
    assert assets == ASSETS
    checks = {check["name"] for node in nodes for check in node["assetChecksOrError"].get("checks", [])}
    assert {"rouge_l", "bleu_1", "title_only_rate", "length_compliance", "splits_not_empty",
            "no_leakage_between_splits", "latency_spec"} <= checks
