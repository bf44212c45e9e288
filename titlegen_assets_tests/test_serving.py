"""Serving: the Ollama TEMPLATE equals the training prompt, and the serving assets against a double of Ollama."""

import json
from pathlib import Path

import pytest

from titlegen_assets import latency
from titlegen_assets.definitions import defs
from titlegen_assets.prompts import INSTRUCTION, article_text, ollama_template, prompt_messages
from titlegen_assets.resources import OllamaServer, OllamaUnavailable
from titlegen_assets_tests.doubles.hub_double import HubDouble
from titlegen_assets_tests.doubles.ollama_server import OllamaDouble
from titlegen_assets_tests.support import demo_config, materialize, write_gguf

ARTICLE = "  記者林雅婷／台北報導\n台北市捷運工程局今天舉行環狀線北段動工典禮，路線全長約14.9公里。  "


def fill(template: str, system: str, prompt: str) -> str:
    """What Ollama renders for one request with this TEMPLATE (only .System and .Prompt are used in ours)."""
    filled = template.replace("{{ .System }}", system).replace("{{ .Prompt }}", prompt)
    assert "{{" not in filled, "the TEMPLATE uses more than .System and .Prompt"
    return filled


def test_ollama_template_gives_the_model_exactly_the_training_prompt(reference_dir):
    from transformers import AutoTokenizer

    from titlegen_assets.training.smoke import tokenizer_dir

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir())
    tokenizer.chat_template = (reference_dir / "gemma3n_chat_template.jinja").read_text()
    training = tokenizer.apply_chat_template(prompt_messages(ARTICLE), tokenize=False, add_generation_prompt=True)
    served = fill(ollama_template(), INSTRUCTION, article_text(ARTICLE))
    assert training == tokenizer.bos_token + served  # the runner adds <bos> itself


def test_the_library_gemma3n_template_would_have_served_a_different_prompt(reference_dir):
    library = (reference_dir / "ollama_library_gemma3n_template.gotmpl").read_text()
    assert 'or (eq .Role "user") (eq .Role "system")' in library  # a system message becomes its own user turn
    assert "{{ .System }}\n\n{{ .Prompt }}" in ollama_template()  # ours folds it in, as the HF template does


def test_latency_summary_percentiles_and_spec_verdict():
    samples = [{"wall_ms": float(ms), "ttft_ms": ms / 2, "total_duration": ms * 1e6, "load_duration": 0,
                "prompt_eval_duration": 0, "eval_duration": 1e9, "eval_count": 10} for ms in range(1, 101)]
    summary = latency.summarize(samples, p50_max_ms=500, p95_max_ms=1000)
    assert summary["wall_ms"]["p50"] == pytest.approx(50.5) and summary["wall_ms"]["p95"] == pytest.approx(95.05)
    assert summary["tokens_per_second"] == 10.0 and summary["passed"]
    assert not latency.summarize(samples, p50_max_ms=40, p95_max_ms=1000)["passed"]


def test_whole_graph_serves_through_the_official_client_and_reports_latency(artifact_root, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with OllamaDouble() as server:
        everything = [key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()]
        result = materialize(everything, demo_config(), hub=HubDouble(), ollama=OllamaServer(host=server.host))
        assert result.success
        created = server.models["titlegen-gemma3n-zh-tw:latest"]
        assert created["template"] == ollama_template() and created["system"] == INSTRUCTION
        # the default import is the merged model's GGUF made by llama.cpp (BF16 here: the demo keeps 16-bit)
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
    assert modelfile.splitlines()[0].endswith("/model-BF16.gguf") and meta["import_from"].value == "gguf"
    published = result.output_for_node("hf_repo")["path"]  # hf_repo published the very file Ollama got
    assert any(p.suffix == ".gguf" and p.read_bytes() == Path(modelfile.splitlines()[0][5:]).read_bytes()
               for p in Path(published).iterdir())
    report = result.output_for_node("latency_report")
    saved = json.loads(Path(report["path"]).read_text())
    assert saved["summary"]["requests"] == 20 and len(saved["samples"]) == 20
    assert all(s["total_duration"] > 0 and s["eval_count"] > 0 for s in saved["samples"])
    spec = next(e for e in result.get_asset_check_evaluations() if e.check_name == "latency_spec")
    assert spec.passed and spec.metadata["p95_ms"].value <= 1000


def test_unreachable_ollama_names_the_host_and_how_to_start_it():
    with pytest.raises(OllamaUnavailable, match=r"OLLAMA_HOST=http://127\.0\.0\.1:9.*ollama serve"):
        OllamaServer(host="127.0.0.1:9").version()


def test_an_ollama_too_old_for_gemma3n_is_refused_with_the_version_seen():
    from titlegen_assets import serving

    with OllamaDouble(version="0.9.0") as server:
        version = OllamaServer(host=server.host).version()
        with pytest.raises(RuntimeError, match=r"Ollama 0\.9\.0 at OLLAMA_HOST=.*needs 0\.9\.3 or newer.*upgrade"):
            serving.require_version(version, server.host)


def test_a_missing_model_says_to_materialize_ollama_model_first():
    from titlegen_assets import serving

    with OllamaDouble() as server:
        client = OllamaServer(host=server.host).client()
        with pytest.raises(Exception) as raised:
            serving.ask(client, "absent:latest", "文章", "1m")
        explained = serving.explain(raised.value, server.host, "0.12.6", "absent:latest")
    assert "materialize ollama_model first" in str(explained) and "Ollama 0.12.6" in str(explained)


def test_an_import_failure_from_an_old_release_points_at_the_upgrade(tmp_path):
    from titlegen_assets import serving

    (tmp_path / "config.json").write_text("{}")
    plan = serving.import_plan("safetensors", None, tmp_path, tmp_path / "gguf")
    with OllamaDouble(fail_create_with="json: cannot unmarshal array into Go struct field .intermediate_size") as server:
        client = OllamaServer(host=server.host).client()
        with pytest.raises(Exception) as raised:
            serving.create_model(client, "m:latest", plan, 0.1, 48, lambda _: None)
    assert "upgrade Ollama" in str(serving.explain(raised.value, server.host, "0.9.5", "m:latest"))


@pytest.mark.parametrize(("message", "fix"), [
    ("model requires more system memory (9.8 GiB) than is available (4.1 GiB)", "smaller quantization"),
    ("model 'x' not found", "materialize ollama_model first"),
])
def test_ollama_errors_carry_host_version_and_fix(message, fix):
    import ollama

    from titlegen_assets import serving

    explained = str(serving.explain(ollama.ResponseError(message, 500), "http://gpu-box:11434", "0.12.6", "x:latest"))
    assert "OLLAMA_HOST=http://gpu-box:11434" in explained and "Ollama 0.12.6" in explained and fix in explained


def test_a_gguf_already_quantized_by_llama_cpp_is_imported_without_asking_ollama_to_quantize_again(tmp_path):
    from gguf import LlamaFileType

    from titlegen_assets import serving

    merged, gguf_dir = tmp_path / "merged", tmp_path / "gguf"
    merged.mkdir()
    gguf_dir.mkdir()
    write_gguf(gguf_dir / "model-Q4_K_M.gguf", file_type=LlamaFileType.MOSTLY_Q4_K_M)  # as gguf_export leaves it
    plan = serving.import_plan("gguf", "q4_K_M", merged, gguf_dir)
    assert plan.source == gguf_dir / "model-Q4_K_M.gguf" and plan.quantize is None
    with OllamaDouble() as server:
        client = OllamaServer(host=server.host).client()
        serving.create_model(client, "t:latest", plan, 0.1, 48, lambda _: None)
        assert server.models["t:latest"]["file_type"] == "Q4_K_M"
        # what Ollama answers when asked to quantize it again (server/create.go: only F16 and F32 models)
        with pytest.raises(Exception, match="only supported for F16 and F32"):
            serving.create_model(client, "u:latest", serving.ImportPlan(plan.source, plan.files, "q4_K_M"), 0.1, 48,
                                 lambda _: None)


def test_safetensors_import_uploads_the_merged_folder_and_lets_ollama_quantize(tmp_path):
    from titlegen_assets import serving

    for name in ("config.json", "model.safetensors", "tokenizer.json", "README.md"):
        (tmp_path / name).write_text("{}")
    plan = serving.import_plan("safetensors", "q4_K_M", tmp_path, tmp_path / "gguf")
    assert sorted(plan.files) == ["config.json", "model.safetensors", "tokenizer.json"] and plan.quantize == "q4_K_M"
    with OllamaDouble() as server:
        serving.create_model(OllamaServer(host=server.host).client(), "s:latest", plan, 0.1, 48, lambda _: None)
    assert server.models["s:latest"]["file_type"] == "Q4_K_M" and not (tmp_path / "gguf").exists()


def test_serving_from_gguf_without_llama_cpp_or_an_exported_file_says_what_is_missing(tmp_path, monkeypatch):
    from titlegen_assets import gguf_export, serving

    monkeypatch.setenv("LLAMA_CPP_DIR", str(tmp_path / "no-llama.cpp"))
    with pytest.raises(gguf_export.GGUFUnavailable, match=r"no model-Q4_K_M\.gguf under .*llama\.cpp not found"):
        serving.import_plan("gguf", "q4_K_M", tmp_path, tmp_path / "gguf")


@pytest.mark.parametrize(("given", "kept"), [("q4_K_M", "q4_K_M"), ("q4_k_m", "q4_K_M"), ("Q8_0", "q8_0"), (None, None)])
def test_quantize_is_spelled_the_way_ollama_names_it(given, kept):
    from titlegen_assets.config import OllamaModelConfig

    assert OllamaModelConfig(quantize=given).quantize == kept


@pytest.mark.parametrize("given", ["q4_0", "q5_K_M", "int4", ""])
def test_a_quantize_ollama_does_not_accept_is_refused_by_config_validation_naming_the_accepted_ones(given):
    from pydantic import ValidationError

    from titlegen_assets.config import OllamaModelConfig

    with pytest.raises(ValidationError, match=r"q4_K_M, q4_K_S, q8_0 \(case does not matter, e\.g\. q4_k_m is read as"):
        OllamaModelConfig(quantize=given)


def test_runner_options_that_are_set_go_into_the_modelfile_and_unset_ones_keep_ollamas_defaults():
    from titlegen_assets import modelfile
    from titlegen_assets.config import OllamaModelConfig

    laptop = OllamaModelConfig(num_thread=2, num_ctx=512)
    assert modelfile.parameters(0.1, 48, laptop.runtime_options()) == {
        "stop": ["<end_of_turn>"], "temperature": 0.1, "num_predict": 48, "num_thread": 2, "num_ctx": 512}
    text = modelfile.render(Path("model.gguf"), 0.1, 48, laptop.runtime_options())
    assert "PARAMETER num_thread 2\n" in text and "PARAMETER num_ctx 512\n" in text and "num_batch" not in text
    assert "num_thread" not in modelfile.render(Path("model.gguf"), 0.1, 48, OllamaModelConfig().runtime_options())
