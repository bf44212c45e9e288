"""demo.main's path to a served model: llama.cpp built first when it is missing (a failed build stops the demo with
what to install), then the whole graph when Ollama answers, or through hf_repo and, last, the command that serves the
GGUF the run certified. The dagster CLI it starts is recorded, or stood in for by an in-process run of the smoke
graph on the same instance (the full demo on the real 270M is test_real_model's and benchmarks/demo_time.py's)."""

import hashlib
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import httpx
import pytest

from titlegen_assets import demo
from titlegen_assets.export import llama_cpp_build
from titlegen_assets_tests.doubles.ollama_server import OllamaDouble
from titlegen_assets_tests.support import demo_config, materialize

THROUGH_HF_REPO = ["raw_dataset", "cleaned_splits", "lora_adapter", "merged_hf_model", "hf_repo"]


def built_tree(root: Path) -> Path:
    """What docker/build_llama_cpp.sh leaves at its destination, as far as the demo looks: the converter and the
    tools (empty files: nothing runs them in these tests)."""
    (root / "build" / "bin").mkdir(parents=True)
    (root / "convert_hf_to_gguf.py").touch()
    for tool in ("llama-simple", "llama-quantize", "llama-server"):
        (root / "build" / "bin" / tool).touch(mode=0o755)
    return root


@pytest.fixture
def launched(monkeypatch, tmp_path):
    """The commands the demo starts, recorded; each returns exit_code["value"]. llama.cpp is already built."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LLAMA_CPP_DIR", str(built_tree(tmp_path / "llama.cpp")))
    commands, exit_code = [], {"value": 0}
    monkeypatch.setattr(demo.subprocess, "call", lambda command, **_: commands.append(command) or exit_code["value"])
    return commands, exit_code


def selection(command: list[str]) -> str:
    return command[command.index("--select") + 1]


def test_with_ollama_answering_the_demo_materializes_all_seven_assets(launched, monkeypatch, capsys):
    commands, _ = launched
    with OllamaDouble() as server:
        monkeypatch.setenv("OLLAMA_HOST", server.host)
        assert demo.main() == 0
    assert len(commands) == 1 and selection(commands[0]) == "*" and commands[0][-1] == str(demo.demo_config())
    assert capsys.readouterr().out.strip().splitlines()[-1] == "titlegen demo: done; all seven assets materialized"


def test_a_failed_run_returns_its_exit_code_and_says_so(launched, monkeypatch, capsys):
    _, exit_code = launched
    exit_code["value"] = 3
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")
    assert demo.main() == 3
    assert "the run failed" in capsys.readouterr().err


def test_with_llama_cpp_missing_the_demo_builds_it_once_before_the_run(launched, monkeypatch, tmp_path):
    commands, _ = launched
    root = tmp_path / "cache" / "llama.cpp"
    monkeypatch.setenv("LLAMA_CPP_DIR", str(root))
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")

    def call(command, **options):  # the build script's effect (its real run: test_llama_cpp_build, CI's fixture)
        commands.append(command)
        if command[:2] == ["bash", str(llama_cpp_build.BUILD_SCRIPT)]:
            assert options["env"]["PYTHON"] == sys.executable  # the demo's own pip downloads the source
            built_tree(root)
        return 0

    monkeypatch.setattr(demo.subprocess, "call", call)
    monkeypatch.setattr(demo, "serve_lines", lambda instance: [])  # no run happened: nothing to read back
    assert demo.main() == 0
    assert commands[0] == ["bash", str(llama_cpp_build.BUILD_SCRIPT), str(root)]
    assert selection(commands[1]) == "*hf_repo" and len(commands) == 2
    commands.clear()
    assert demo.main() == 0 and len(commands) == 1, "a second demo reuses the build"


def test_a_failed_llama_cpp_build_stops_the_demo_before_any_run_and_says_what_to_install(monkeypatch, tmp_path,
                                                                                         capfd):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    root = tmp_path / "cache" / "llama.cpp"
    monkeypatch.setenv("LLAMA_CPP_DIR", str(root))
    tools = tmp_path / "bin"  # a machine with bash but no cmake, make or compiler: the real script runs
    tools.mkdir()
    (tools / "bash").symlink_to("/bin/bash")
    monkeypatch.setenv("PATH", str(tools))
    started, real_call = [], subprocess.call

    def call(command, **options):  # the build script runs; a dagster run would only be recorded
        started.append(command)
        return real_call(command, **options) if command[0] == "bash" else 0

    monkeypatch.setattr(demo.subprocess, "call", call)
    assert demo.main() == 1
    assert started == [["bash", str(llama_cpp_build.BUILD_SCRIPT), str(root)]], "no dagster run was started"
    error = capfd.readouterr().err
    assert "'cmake' is not installed" in error and "sudo apt-get install build-essential cmake" in error
    assert f"llama.cpp could not be built into {root}" in error and f"{root}.build.log" in error
    assert not root.exists()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_without_ollama_the_last_lines_serve_the_gguf_this_run_certified(artifact_root, llama_cpp, monkeypatch,
                                                                         tmp_path, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    runs = []

    def dagster_cli(command, **_):  # the same graph through hf_repo on the demo's instance, with the smoke model
        assert selection(command) == "*hf_repo"
        with dg.DagsterInstance.get() as instance:
            runs.append(materialize(THROUGH_HF_REPO, demo_config(), instance))
        return 0 if runs[-1].success else 1

    monkeypatch.setattr(demo.subprocess, "call", dagster_cli)
    assert demo.main() == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "ollama_model and latency_report were not run" in lines[-4]
    assert "`ollama serve`" in lines[-1] and "python -m titlegen_assets.demo again" in lines[-1]
    command = shlex.split(lines[-2])
    assert command[0] == str(llama_cpp / "build" / "bin" / "llama-server")
    certified = next(e for e in runs[0].get_asset_check_evaluations() if e.check_name == "gguf_certified")
    gguf = Path(command[command.index("-m") + 1])
    assert hashlib.sha256(gguf.read_bytes()).hexdigest() == certified.metadata["certified"].value["BF16"]
    assert serves(command), "the printed command serves that file"


def serves(command: list[str]) -> bool:
    """Whether ``command`` (a llama-server command line) starts a server that answers /health, on a free port."""
    command = list(command)
    port = free_port()
    command[command.index("--port") + 1] = str(port)
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while server.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        return False
    finally:
        server.terminate()
        server.wait(timeout=10)
