"""GGUF export verified for real: llama.cpp's converter, then llama.cpp itself generating the same tokens as
transformers. The ``llama_cpp`` fixture builds llama.cpp once (docker/build_llama_cpp.sh) and caches it."""

import subprocess

import pytest

from titlegen_assets import gguf_export
from titlegen_assets.prompts import prompt_messages

ARTICLE = "台北市捷運工程局今天舉行環狀線北段動工典禮，路線全長約14.9公里，共設12座車站。"


def test_gguf_from_the_converter_generates_what_transformers_generates(llama_cpp, smoke_base_model, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = gguf_export.export(smoke_base_model, tmp_path / "smoke-F32.gguf", "F32")
    assert gguf.stat().st_size > 1_000_000

    tokenizer = AutoTokenizer.from_pretrained(smoke_base_model)
    prompt = tokenizer.apply_chat_template(prompt_messages(ARTICLE), tokenize=False, add_generation_prompt=True)
    prompt = prompt.removeprefix(tokenizer.bos_token)  # both sides add <bos> themselves
    model = AutoModelForCausalLM.from_pretrained(smoke_base_model, dtype=torch.float32).eval()
    inputs = tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    expected = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)

    result = subprocess.run([str(llama_cpp / "build" / "bin" / "llama-simple"), "-m", str(gguf), "-n", "12", prompt],
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    # llama-simple prints the prompt, then each generated piece as raw bytes (byte-fallback pieces may split a character)
    generated = result.stdout.decode("utf-8", errors="replace").split("<start_of_turn>model\n", 1)[1]
    assert expected and generated.strip() == expected.strip()


def test_gguf_export_is_skipped_with_the_reason_when_llama_cpp_is_missing(tmp_path):
    assert "llama.cpp not found" in gguf_export.missing_tools(tmp_path / "nowhere")
