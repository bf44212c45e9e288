"""GGUF export verified for real: llama.cpp's converter, then llama.cpp's own server generating, token for token, what
transformers generates (greedy) from the training prompt. The ``llama_cpp`` fixture builds llama.cpp once
(docker/build_llama_cpp.sh) and caches it."""

from pathlib import Path

import pytest

from titlegen_assets.evaluation.llama_server import LlamaServer
from titlegen_assets.export import gguf_export
from titlegen_assets.prompts import prompt_messages

ARTICLE = "台北市捷運工程局今天舉行環狀線北段動工典禮，路線全長約14.9公里，共設12座車站。"


def transformers_greedy(model_dir: Path, articles: list[str], max_new_tokens: int):
    """(prompt without <bos>, prompt ids, generated ids) per article, greedy, in fp32 on the folder's weights; and
    the generation config (its stop tokens)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    results = []
    for article in articles:
        prompt = tokenizer.apply_chat_template(prompt_messages(article), tokenize=False, add_generation_prompt=True)
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            output = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
        generated = output[0, ids["input_ids"].shape[1]:].tolist()
        results.append((prompt.removeprefix(tokenizer.bos_token), ids["input_ids"][0].tolist(), generated))
    return results, model.generation_config


def assert_llama_cpp_generates_the_same_tokens(gguf: Path, model_dir: Path, articles: list[str], n: int) -> None:
    expected, generation_config = transformers_greedy(model_dir, articles, n)
    stops = generation_config.eos_token_id
    stops = set(stops if isinstance(stops, list) else [stops])
    # one thread: on a shared 2-core machine ggml's spinning thread barriers stall when a thread is descheduled
    with LlamaServer(gguf, threads=1) as server:
        for prompt, prompt_ids, generated in expected:
            assert server.tokenize(prompt) == prompt_ids  # the server reads the training prompt as transformers does
            answer = server.complete(prompt, n, cache_prompt=False, timeout_s=600)
            # transformers keeps the stop token it ended on; llama.cpp ends there without returning it
            if generated[-1] in stops:
                assert answer["stop_type"] == "eos" and answer["tokens"] == generated[:-1]
            else:
                assert answer["stop_type"] == "limit" and answer["tokens"] == generated


def test_smoke_model_f32_gguf_generates_what_transformers_generates(llama_cpp, smoke_base_model, tmp_path):
    gguf = gguf_export.export(Path(smoke_base_model), tmp_path / "smoke-F32.gguf", "F32")
    assert_llama_cpp_generates_the_same_tokens(gguf, Path(smoke_base_model), [ARTICLE], 12)


@pytest.mark.real_model
def test_real_gemma3_270m_bf16_gguf_generates_exactly_the_tokens_transformers_generates(
    llama_cpp, real_gemma3_270m, sample_splits, tmp_path
):
    import datasets
    from gguf import GGUFReader

    gemma3_270m, _ = real_gemma3_270m
    gguf = gguf_export.export(gemma3_270m, tmp_path / "gemma3-270m-BF16.gguf", "BF16")
    vocabulary = GGUFReader(gguf).fields["tokenizer.ggml.tokens"]
    assert len(vocabulary.data) == 262144  # the SentencePiece vocabulary rebuilt from the packaged GGUF came through
    articles = [row["content"] for row in datasets.load_from_disk(sample_splits)["test"].select(range(2))]
    assert_llama_cpp_generates_the_same_tokens(gguf, gemma3_270m, articles, 20)


def test_gguf_export_is_skipped_with_the_reason_when_llama_cpp_is_missing(tmp_path):
    assert "llama.cpp not found" in gguf_export.missing_tools(tmp_path / "nowhere")


FAKE_CONVERTER = """import sys
out = sys.argv[sys.argv.index("--outfile") + 1]
open(out, "wb").write(b"GGUF" + b"\\0" * 4096)  # half a BF16 file, as a converter stopped mid-way leaves it
sys.exit({exit})
"""
FAKE_QUANTIZER = """#!/bin/sh
head -c 4096 /dev/zero > "$2"  # llama-quantize <input> <output> <type>: a half-written output
exit {exit}
"""


def merged_folder(tmp_path: Path) -> Path:
    """A merged-model folder the fake converter can be pointed at (it reads nothing from it)."""
    model_dir = tmp_path / "merged"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    return model_dir


def fake_llama_cpp(root: Path, converter_exit: int, quantizer_exit: int) -> Path:
    """A llama.cpp tree whose converter and quantizer write part of their output, then exit with the code given."""
    (root / "build" / "bin").mkdir(parents=True)
    (root / "convert_hf_to_gguf.py").write_text(FAKE_CONVERTER.format(exit=converter_exit))
    quantizer = root / "build" / "bin" / "llama-quantize"
    quantizer.write_text(FAKE_QUANTIZER.format(exit=quantizer_exit))
    quantizer.chmod(0o755)
    return root


@pytest.mark.parametrize(("converter_exit", "quantizer_exit", "failed"),
                         [(1, 0, "convert_hf_to_gguf"), (0, 1, "llama-quantize"), (0, 0, None)])
def test_gguf_export_leaves_no_temporary_file_when_the_converter_or_the_quantizer_fails(
        tmp_path, monkeypatch, converter_exit, quantizer_exit, failed):
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # the converter's view of the model folder goes here
    root = fake_llama_cpp(tmp_path / "llama.cpp", converter_exit, quantizer_exit)
    model_dir = merged_folder(tmp_path)
    out_file = tmp_path / "gguf" / "model-Q4_K_M.gguf"
    out_file.parent.mkdir()
    if failed:
        with pytest.raises(RuntimeError, match=failed):
            gguf_export.export(model_dir, out_file, "Q4_K_M", root=root)
        assert list(out_file.parent.iterdir()) == []
    else:
        assert gguf_export.export(model_dir, out_file, "Q4_K_M", root=root) == out_file
        assert list(out_file.parent.iterdir()) == [out_file]
    assert list(scratch.iterdir()) == [] and [p.name for p in model_dir.iterdir()] == ["config.json"]


RECORDING_QUANTIZER = """#!{python}
import json, sys
args = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(json.dumps(args) + "\\n")
if {refuse!r}:  # llama.cpp 0.3.36's abort on a K-quant embedding 640 wide (Gemma 3 270M), then gdb's backtrace
    sys.stderr.write("gguf.cpp:1434: GGML_ASSERT(tensor->ne[0] % blck_size == 0 && \\"tensor row size not divisible "
                     "by block size of new type\\") failed\\n" + "#0 backtrace line\\n" * 200)
    sys.exit(134)
open(args[-2], "wb").write(b"GGUF")
"""


def recording_llama_cpp(tmp_path: Path, refuse: bool = False) -> tuple[Path, Path]:
    """A llama.cpp tree whose quantizer writes its output and records its arguments (one JSON list a call)."""
    import sys

    root, log = fake_llama_cpp(tmp_path / "llama.cpp", 0, 0), tmp_path / "quantize.log"
    (root / "build" / "bin" / "llama-quantize").write_text(
        RECORDING_QUANTIZER.format(python=sys.executable, log=str(log), refuse=refuse))
    return root, log


def test_a_mixed_recipe_quantizes_the_token_embedding_to_its_own_type_and_names_the_file_after_the_recipe(tmp_path):
    import json

    root, log = recording_llama_cpp(tmp_path)
    model_dir = merged_folder(tmp_path)
    made = gguf_export.export_all(model_dir, tmp_path / "gguf", ["Q8_0_EMB_Q4_0", "Q4_0"], root)
    assert {q: p.name for q, p in made.items()} == {"Q8_0_EMB_Q4_0": "model-Q8_0_EMB_Q4_0.gguf",
                                                    "Q4_0": "model-Q4_0.gguf"}
    mixed, plain = [json.loads(line) for line in log.read_text().splitlines()]
    assert mixed[:2] == ["--token-embedding-type", "q4_0"] and mixed[-1] == "Q8_0" and len(mixed) == 5
    assert len(plain) == 3 and plain[-1] == "Q4_0"
    assert sorted(p.name for p in (tmp_path / "gguf").iterdir()) == ["model-Q4_0.gguf", "model-Q8_0_EMB_Q4_0.gguf"]


def test_an_embedding_type_the_rows_cannot_take_fails_saying_which_types_fit(tmp_path):
    root, _ = recording_llama_cpp(tmp_path, refuse=True)
    model_dir = merged_folder(tmp_path)
    with pytest.raises(RuntimeError, match="give the token embedding one of IQ4_NL, Q4_0, Q4_1, Q5_0, Q8_0"):
        gguf_export.export_all(model_dir, tmp_path / "gguf", ["Q8_0_EMB_Q6_K"], root)
    assert list((tmp_path / "gguf").iterdir()) == []


@pytest.mark.parametrize(("value", "name"), [("q8_0_emb_q4_0", "Q8_0_EMB_Q4_0"), (" Q4_0 ", "Q4_0"),
                                             ("q5_k_m_emb_q8_0", "Q5_K_M_EMB_Q8_0"),
                                             ("q8_0_emb_iq4_nl", "Q8_0_EMB_IQ4_NL")])
def test_gguf_types_and_mixed_recipes_are_named_in_llama_cpp_spelling(value, name):
    from titlegen_assets.defs.training_assets import MergeConfig

    assert gguf_export.quantization_name(value) == name
    assert MergeConfig(gguf=value).quantizations() == [name]
    assert MergeConfig(gguf="auto", gguf_ladder=[value, "q8_0"]).quantizations() == [name, "Q8_0"]


@pytest.mark.parametrize("value", ["BF16_EMB_Q4_0", "Q8_0_EMB_Q3_K", "Q8_0_EMB_", "F16", "Q8_0_EMB_Q4_0_EMB_Q4_0"])
def test_a_recipe_llama_quantize_cannot_make_is_refused_in_the_config_naming_the_choices(value):
    from pydantic import ValidationError

    from titlegen_assets.defs.training_assets import MergeConfig

    with pytest.raises(ValueError, match="is not a GGUF type titlegen makes"):
        gguf_export.quantization_name(value)
    with pytest.raises(ValidationError, match="_EMB_<IQ4_NL"):
        MergeConfig(gguf=value)
