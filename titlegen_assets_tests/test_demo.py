"""demo.main's endings: the whole graph when Ollama answers, through hf_repo (and a clear last line) when it does
not, and the run's own exit code when it fails. The dagster CLI it starts is recorded, not run (the full demo on the
real 270M is timed in benchmarks/demo_time.py)."""

import pytest

from titlegen_assets import demo
from titlegen_assets_tests.doubles.ollama_server import OllamaDouble


@pytest.fixture
def launched(monkeypatch, tmp_path):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    commands, exit_code = [], {"value": 0}
    monkeypatch.setattr(demo.subprocess, "call", lambda command: commands.append(command) or exit_code["value"])
    return commands, exit_code


def selection(command: list[str]) -> str:
    return command[command.index("--select") + 1]


def test_without_ollama_the_demo_stops_after_hf_repo_and_says_how_to_start_ollama(launched, monkeypatch, capsys):
    commands, _ = launched
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")
    assert demo.main() == 0
    assert selection(commands[0]) == "*hf_repo" and commands[0][-1] == str(demo.demo_config())
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "ollama_model and latency_report were not run" in last and "ollama serve" in last


def test_with_ollama_answering_the_demo_materializes_all_seven_assets(launched, monkeypatch, capsys):
    commands, _ = launched
    with OllamaDouble() as server:
        monkeypatch.setenv("OLLAMA_HOST", server.host)
        assert demo.main() == 0
    assert selection(commands[0]) == "*"
    assert capsys.readouterr().out.strip().splitlines()[-1] == "titlegen demo: done; all seven assets materialized"


def test_a_failed_run_returns_its_exit_code_and_says_so(launched, monkeypatch, capsys):
    _, exit_code = launched
    exit_code["value"] = 3
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")
    assert demo.main() == 3
    assert "the run failed" in capsys.readouterr().err
