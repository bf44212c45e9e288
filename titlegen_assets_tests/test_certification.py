"""What ships is what the gate passed: each GGUF is scored through llama-server in the form it ships, a file that
fails (or was changed since) never ships, and where llama.cpp is missing no GGUF ships at all."""

from pathlib import Path

import dagster as dg

from titlegen_assets_tests.doubles.hub_double import HubDouble
from titlegen_assets_tests.doubles.ollama_server import OllamaDouble
from titlegen_assets_tests.support import demo_config, materialize, ollama_at, step_error

THROUGH_MERGE = ["raw_dataset", "cleaned_splits", "lora_adapter", "merged_hf_model"]


def gate(result, name: str) -> dg.AssetCheckEvaluation:
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == name)


def test_a_gguf_whose_answers_never_stop_is_refused_and_nothing_is_published_or_served(artifact_root, llama_cpp, monkeypatch):
    instance = dg.DagsterInstance.ephemeral()
    # the smoke model's random weights never say <end_of_turn>: held to the spec's stop rate, its GGUF fails
    result = materialize(THROUGH_MERGE, demo_config(stop_rate_min=0.98), instance)
    certified = gate(result, "gguf_certified")
    assert not certified.passed and certified.metadata["certified"].value == {}
    assert "refused BF16" in certified.description and "answers stopped at <end_of_turn>" in certified.description
    assert gate(result, "rouge_l").passed, "the 16-bit model passed: only its GGUF is refused"
    with OllamaDouble() as server:
        for asset, resources in (("hf_repo", {"hub": HubDouble()}),
                                 ("ollama_model", {"ollama": ollama_at(monkeypatch, server)})):
            error = step_error(materialize([asset], demo_config(), instance, **resources), asset)
            assert "gguf_certified failed" in error and "answers stopped" in error
        assert server.blobs == {} and server.models == {}


def test_a_gguf_changed_after_the_gate_is_never_shipped(artifact_root, llama_cpp, monkeypatch):
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(THROUGH_MERGE, demo_config(), instance)
    assert result.success
    gguf = Path(result.output_for_node("merged_hf_model")["gguf"]["files"]["BF16"]["path"])
    with gguf.open("ab") as handle:
        handle.write(b"\0")  # the file on disk is no longer the one the gate scored
    with OllamaDouble() as server:
        for asset, resources in (("hf_repo", {"hub": HubDouble()}),
                                 ("ollama_model", {"ollama": ollama_at(monkeypatch, server)})):
            error = step_error(materialize([asset], demo_config(), instance, **resources), asset)
            assert "is not the file the eval gate certified" in error
        assert server.blobs == {}


def test_without_llama_cpp_no_gguf_is_made_certified_or_shipped_and_the_run_says_so(artifact_root, monkeypatch,
                                                                                   tmp_path):
    monkeypatch.setenv("LLAMA_CPP_DIR", str(tmp_path / "no-llama.cpp"))
    instance = dg.DagsterInstance.ephemeral()
    result = materialize([*THROUGH_MERGE, "hf_repo"], demo_config(), instance, hub=HubDouble())
    assert result.success
    certified = gate(result, "gguf_certified")
    assert certified.passed and "no GGUF to certify, none will ship: llama.cpp not found" in certified.description
    published = Path(result.output_for_node("hf_repo")["path"])
    assert not list(published.glob("*.gguf")) and (published / "model.safetensors").is_file()
    with OllamaDouble() as server:
        refused = materialize(["ollama_model"], demo_config(), instance, ollama=ollama_at(monkeypatch, server))
        assert "has no certified GGUF to serve" in step_error(refused, "ollama_model")
        assert server.blobs == {}
