"""Serving: the Ollama TEMPLATE equals the training prompt, and the serving assets against a double of Ollama."""

import json
import re
from pathlib import Path

import pytest

from titlegen_assets.definitions import defs
from titlegen_assets.defs.resources import OllamaServer, OllamaUnavailable
from titlegen_assets.prompts import INSTRUCTION, ollama_template
from titlegen_assets.serving import latency
from titlegen_assets.versioning.fingerprint import file_sha256
from titlegen_assets_tests.doubles.hub_double import HubDouble
from titlegen_assets_tests.doubles.ollama_server import OllamaDouble
from titlegen_assets_tests.support import demo_config, materialize, ollama_at, write_gguf


def test_latency_summary_percentiles_and_spec_verdict():
    samples = [{"wall_ms": float(ms), "ttft_ms": ms / 2, "total_duration": ms * 1e6, "load_duration": 0,
                "prompt_eval_duration": 0, "prompt_eval_count": 50, "eval_duration": 1e9, "eval_count": 10} for ms in range(1, 101)]
    summary = latency.summarize(samples, p50_max_ms=500, p95_max_ms=1000)
    assert summary["wall_ms"]["p50"] == pytest.approx(50.5) and summary["wall_ms"]["p95"] == pytest.approx(95.05)
    assert summary["tokens_per_second"] == 10.0 and summary["passed"]
    assert not latency.summarize(samples, p50_max_ms=40, p95_max_ms=1000)["passed"]


def test_latency_sends_each_article_once_and_keeps_warm_ups_out_of_the_measured_ones():
    articles = ["a", "b", "a", "c", "d"]  # a test split may hold an article twice
    assert latency.distinct_articles(articles, requests=10, warmup=1) == (["a"], ["b", "c", "d"])
    assert latency.distinct_articles(articles, requests=2, warmup=2) == (["a", "b"], ["c", "d"])
    assert latency.distinct_articles(["a"], requests=5, warmup=3) == ([], ["a"])  # one article: measured, not warm


def test_whole_graph_serves_through_the_official_client_and_reports_latency(artifact_root, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with OllamaDouble() as server:
        # the seven assets; watched_source's observation of the Hub is test_automation's
        everything = [key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()
                      if key.to_user_string() != "watched_source"]
        result = materialize(everything, demo_config(), hub=HubDouble(), ollama=ollama_at(monkeypatch, server))
        assert result.success
        created = server.models["titlegen-smoke-gemma3n-tiny-zh-tw:latest"]  # the name derived from the base model
        assert created["template"] == ollama_template() and created["system"] == INSTRUCTION
        # the GGUF the merged step made with llama.cpp and the gate certified (BF16: the smoke model has toy sizes)
        assert created["parameters"]["stop"] == ["<end_of_turn>"] and list(created["files"]) == ["model-BF16.gguf"]
        assert created.get("quantize") is None and created["file_type"] == "BF16"
        assert ("POST", "/api/create") in server.requests
        first_article = server.rendered[0]
        assert first_article.startswith(f"<start_of_turn>user\n{INSTRUCTION}\n\n") and first_article.endswith(
            "<end_of_turn>\n<start_of_turn>model\n")

    meta = result.asset_materializations_for_node("ollama_model")[0].metadata
    assert meta["server_version"].value == "0.12.6" and meta["sample_response"].value
    modelfile = Path(meta["modelfile_path"].value).read_text()
    assert 'PARAMETER stop "<end_of_turn>"' in modelfile and modelfile.startswith("FROM ")
    assert modelfile.splitlines()[0].endswith("/model-BF16.gguf") and meta["quantization"].value == "BF16"
    gate = next(e for e in result.get_asset_check_evaluations() if e.check_name == "gguf_certified")
    certified = gate.metadata["certified"].value
    assert gate.passed and list(certified) == ["BF16"] and meta["gguf_sha256"].value == certified["BF16"]
    assert f"sha256:{certified['BF16']}" in server.blobs, "Ollama got exactly the certified bytes"
    published = result.output_for_node("hf_repo")  # hf_repo published the very file Ollama got
    assert list(published["gguf"].values()) == [certified["BF16"]]
    assert [file_sha256(p) for p in Path(published["path"]).glob("*.gguf")] == [certified["BF16"]]
    report = result.output_for_node("latency_report")
    saved = json.loads(Path(report["path"]).read_text())
    summary = saved["summary"]  # the smoke config asks 20 requests + 1 warm-up of a test split with fewer articles
    assert summary["requests"] == summary["articles_available"] - 1 == len(saved["samples"]) < 20
    latency_prompts = server.rendered[-(summary["warmup"] + summary["requests"]):]
    assert len(set(latency_prompts)) == len(latency_prompts), "an article was sent twice: a prompt-cache answer"
    assert summary["prompt_tokens"]["p50"] > 0 and summary["server_prompt_eval_ms"]["p50"] > 0
    assert all(s["total_duration"] > 0 and s["eval_count"] > 0 for s in saved["samples"])
    spec = next(e for e in result.get_asset_check_evaluations() if e.check_name == "latency_spec")
    meta = spec.metadata  # the double answers from llama-server: its speed is the machine's, not a test's verdict
    assert spec.passed == (meta["p50_ms"].value <= meta["p50_max_ms"].value and
                           meta["p95_ms"].value <= meta["p95_max_ms"].value)


def test_unreachable_ollama_names_the_host_and_how_to_start_it(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")
    with pytest.raises(OllamaUnavailable, match=r"OLLAMA_HOST=http://127\.0\.0\.1:9.*ollama serve"):
        OllamaServer().version()


@pytest.mark.parametrize(("architecture", "version", "needed"), [("gemma3n", "0.9.0", "0.9.3"), ("gemma3_text", "0.5.13", "0.6.0")])
def test_an_ollama_too_old_for_the_architecture_is_refused_with_the_version_seen(architecture, version, needed, monkeypatch):
    from titlegen_assets.serving import ollama_client

    with OllamaDouble(version=version) as server:
        seen = ollama_at(monkeypatch, server).version()
        with pytest.raises(RuntimeError, match=rf"Ollama {seen} at OLLAMA_HOST=.*{architecture} model \(needs "
                                               rf"{re.escape(needed)} or newer\).*upgrade"):
            ollama_client.require_version(seen, server.host, architecture)
        ollama_client.require_version("0.12.6", server.host, architecture)  # a current release is accepted


def test_a_missing_model_says_to_materialize_ollama_model_first(monkeypatch):
    from titlegen_assets.serving import ollama_client

    with OllamaDouble() as server:
        client = ollama_at(monkeypatch, server).client()
        with pytest.raises(Exception) as raised:
            ollama_client.ask(client, "absent:latest", "文章", "1m")
        explained = ollama_client.explain(raised.value, server.host, "0.12.6", "absent:latest")
    assert "materialize ollama_model first" in str(explained) and "Ollama 0.12.6" in str(explained)


@pytest.mark.parametrize(("message", "fix"), [
    ("model requires more system memory (9.8 GiB) than is available (4.1 GiB)", "smaller quantization"),
    ("model 'x' not found", "materialize ollama_model first"),
])
def test_ollama_errors_carry_host_version_and_fix(message, fix):
    import ollama

    from titlegen_assets.serving import ollama_client

    explained = str(ollama_client.explain(ollama.ResponseError(message, 500), "http://gpu-box:11434", "0.12.6", "x:latest"))
    assert "OLLAMA_HOST=http://gpu-box:11434" in explained and "Ollama 0.12.6" in explained and fix in explained


def test_ollama_stores_a_gguf_under_its_sha256_and_a_file_that_is_not_the_certified_one_is_refused(tmp_path, monkeypatch):
    from gguf import LlamaFileType

    from titlegen_assets.serving import ollama_client

    gguf = tmp_path / "model-Q4_K_M.gguf"
    write_gguf(gguf, file_type=LlamaFileType.MOSTLY_Q4_K_M)  # as gguf_export leaves it
    with OllamaDouble() as server:
        client = ollama_at(monkeypatch, server).client()
        digest = ollama_client.create_model(client, "t:latest", gguf, file_sha256(gguf), 48, lambda _: None)
        assert digest == f"sha256:{file_sha256(gguf)}" and server.models["t:latest"]["file_type"] == "Q4_K_M"
        with pytest.raises(RuntimeError, match="not the certified sha256"):
            ollama_client.create_model(client, "u:latest", gguf, "0" * 64, 48, lambda _: None)
        assert "u:latest" not in server.models


def test_runner_options_that_are_set_go_into_the_modelfile_and_unset_ones_keep_ollamas_defaults():
    from titlegen_assets.defs.serving_assets import OllamaModelConfig
    from titlegen_assets.serving import modelfile

    laptop = OllamaModelConfig(num_thread=2, num_ctx=512)
    assert modelfile.parameters(48, laptop.runtime_options()) == {
        "stop": ["<end_of_turn>"], "temperature": 0.0, "top_k": 1, "repeat_penalty": 1.0, "num_predict": 48, "num_thread": 2, "num_ctx": 512}
    text = modelfile.render(Path("model.gguf"), 48, laptop.runtime_options())
    assert "PARAMETER num_thread 2\n" in text and "PARAMETER num_ctx 512\n" in text and "num_batch" not in text
    assert "num_thread" not in modelfile.render(Path("model.gguf"), 48, OllamaModelConfig().runtime_options())
