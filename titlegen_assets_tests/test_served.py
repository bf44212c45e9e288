"""Served as certified, and checked where it is served: Ollama answers with the gate's decoding, a blocking check
scores the created model through Ollama's own API on the model's test split, and latency is measured only on the
model whose gate and served check passed and whose blob on the server is the certified file.

The Ollama double answers from llama-server on the created model's GGUF (doubles/ollama_server.py); a real Ollama
runs Gemma 3 on its own engine, which this same check scores wherever one runs."""

import json
from pathlib import Path

import dagster as dg

from titlegen_assets.definitions import defs
from titlegen_assets_tests.doubles.ollama_server import OllamaDouble
from titlegen_assets_tests.support import demo_config, materialize, ollama_at, step_error, write_gguf

THROUGH_MERGE = ["raw_dataset", "cleaned_splits", "lora_adapter", "merged_hf_model"]
NAME = "titlegen-smoke-gemma3n-tiny-zh-tw:latest"


def check(result, name: str) -> dg.AssetCheckEvaluation:
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == name)


def test_ollama_answers_exactly_as_the_gate_certified_and_latency_refuses_a_model_replaced_on_the_server(
        artifact_root, llama_cpp, tmp_path, monkeypatch):
    instance = dg.DagsterInstance.ephemeral()
    with OllamaDouble() as server:
        ollama = ollama_at(monkeypatch, server)
        result = materialize([*THROUGH_MERGE, "ollama_model"], demo_config(), instance, ollama=ollama)
        assert result.success
        created = server.models[NAME]["parameters"]
        assert created["temperature"] == 0.0 and created["top_k"] == 1 and created["repeat_penalty"] == 1.0, \
            "greedy, without Ollama's default repetition penalty"
        assert created["num_predict"] == 24, \
            "capped at the gate's max_new_tokens (24 in the smoke config)"
        served = check(result, "served_as_certified")
        assert served.passed
        gate = json.loads(Path(check(result, "rouge_l").metadata["predictions"].value).read_text())
        answers = json.loads(Path(served.metadata["answers"].value).read_text())
        assert answers["contents"] == gate["contents"], "the same test articles"
        assert [a["title"] for a in answers["answers"]] == gate["ggufs"]["BF16"]["titles"], \
            "Ollama's answers are the certified file's answers, word for word"

        latency = materialize(["latency_report"], demo_config(), instance, ollama=ollama)
        assert latency.success
        other = write_gguf(tmp_path / "other.gguf")  # someone replaces the model under the same name
        client = ollama.client()
        client.create(model=NAME, files={"other.gguf": client.create_blob(other)}, template="{{ .Prompt }}")
        refused = materialize(["latency_report"], demo_config(), instance, ollama=ollama)
        error = step_error(refused, "latency_report")
        assert "is not the certified model" in error and "re-materialize ollama_model" in error


def test_a_model_that_answers_differently_where_it_is_served_is_refused_there(artifact_root, llama_cpp, monkeypatch):
    """An engine that answers otherwise than llama.cpp did (here: an empty title each time) fails the served
    check on the gate's own thresholds, and latency_report then refuses it."""
    instance = dg.DagsterInstance.ephemeral()
    config = demo_config(rouge_l_min=0.001)
    with OllamaDouble(answer_filter=lambda text: "") as server:
        ollama = ollama_at(monkeypatch, server)
        result = materialize([*THROUGH_MERGE, "ollama_model"], config, instance, ollama=ollama)
        assert check(result, "rouge_l").passed, "the premise: the certified file scores above the threshold"
        served = check(result, "served_as_certified")
        assert not served.passed and "rougeL 0.000 < 0.001" in served.description
        refused = materialize(["latency_report"], config, instance, ollama=ollama)
        assert "served_as_certified failed" in step_error(refused, "latency_report")


def by_hand(merged_version_of: str):
    """Stands for a model put on Ollama outside the pipeline (``ollama create`` by hand), recorded as ollama_model:
    latency_report must still refuse it unless the gate passed on the merged model it names."""

    @dg.asset(name="ollama_model", group_name="serve")
    def ollama_model(merged_hf_model: dict) -> dict:
        return {"name": "by-hand:latest", "host": "http://127.0.0.1:9", "digest": "0" * 64, "version": "by-hand",
                "merged_version": merged_hf_model[merged_version_of], "keep_alive": "1m",
                "gguf": {"BF16": "0" * 64}, "inputs": merged_hf_model["inputs"]}

    return ollama_model


def latency_on_a_model_served_by_hand(instance):
    import os
    from unittest import mock

    assets = [asset for asset in defs.assets if asset.key != dg.AssetKey("ollama_model")] + [by_hand("version")]
    with mock.patch.dict(os.environ, {"OLLAMA_HOST": "http://127.0.0.1:9"}):  # nothing answers there
        return dg.materialize(assets, selection=["ollama_model", "latency_report"], instance=instance,
                              resources=defs.resources, raise_on_error=False)


def test_latency_report_refuses_a_model_whose_gate_failed(artifact_root):
    instance = dg.DagsterInstance.ephemeral()
    materialize(THROUGH_MERGE, demo_config(rouge_l_min=0.99), instance)
    error = step_error(latency_on_a_model_served_by_hand(instance), "latency_report")
    assert "latency_report: refusing merged_hf_model" in error and "rouge_l failed" in error


def test_latency_report_refuses_a_model_whose_gate_never_ran(artifact_root):
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(THROUGH_MERGE[:2], demo_config(), instance).success  # the data checks run
    assert materialize(THROUGH_MERGE[2:], demo_config(), instance, checks=False).success  # the gate does not
    error = step_error(latency_on_a_model_served_by_hand(instance), "latency_report")
    assert "rouge_l never ran on merged_hf_model" in error and "dagster asset materialize --select" in error
