"""The real pretrained Gemma 3 270M through the product's own training, merge and generation.

The pretrained base never learned its turn tokens: fine-tuned with LoRA alone it writes a headline and runs on in
stray tokens. With the turn tokens' embedding rows trained (``train_tokens``) a short run on a handful of articles
is enough for every title to end at ``<end_of_turn>``, which the saved generation config stops at.
"""

import shutil
from pathlib import Path

import datasets
import pytest

from titlegen_assets.data.cleaning import CleaningRules, clean_rows
from titlegen_assets.data.sources import load_file, sample_path
from titlegen_assets.evaluation import metrics
from titlegen_assets.prompts import END_OF_TURN, prompt_messages
from titlegen_assets.training.settings import LoraSettings

ROWS = 6
MAX_NEW_TOKENS = 40


@pytest.fixture(scope="module")
def handful(tmp_path_factory) -> tuple[str, list[dict]]:
    """A few sample articles with short content as a train split, and one more as the validation split."""
    kept = clean_rows(load_file(sample_path(), "content", "title").rows, CleaningRules(content_max_chars=120)).kept
    rows = [{"content": r["content"], "title": r["title"]} for r in kept[: ROWS + 1]]
    path = tmp_path_factory.mktemp("handful") / "splits"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:ROWS]),
                          "validation": datasets.Dataset.from_list(rows[ROWS:])}).save_to_disk(str(path))
    return str(path), rows[:ROWS]


@pytest.mark.real_model
def test_a_briefly_fine_tuned_gemma3_270m_ends_every_title_at_end_of_turn(real_gemma3_270m, handful, tmp_path):
    import torch

    from titlegen_assets.training.lora import train_lora
    from titlegen_assets.training.merge import load_for_generation, merge_adapter

    base, _ = real_gemma3_270m
    splits, rows = handful
    config = LoraSettings(
        base_model=str(base), backend="trl", train_tokens=["<start_of_turn>", END_OF_TURN], lora_r=8, lora_alpha=16,
        max_steps=24, per_device_train_batch_size=3, gradient_accumulation_steps=1, learning_rate=1e-3,
        warmup_steps=0.0, max_seq_length=256, checkpoint_steps=24, logging_steps=4, gradient_checkpointing=False,
    )
    result = train_lora(config, splits, str(base), tmp_path / "adapter", tmp_path / "work", lambda _: None)
    assert result.train_loss is not None and result.train_loss == result.train_loss  # finite, not NaN
    merged = tmp_path / "merged"
    merged.mkdir()
    merge_adapter(tmp_path / "adapter", str(base), "trl", merged)

    model, tokenizer = load_for_generation(str(merged))
    end_of_turn = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    for row in rows:
        prompt = tokenizer.apply_chat_template(prompt_messages(row["content"]), add_generation_prompt=True,
                                               return_tensors="pt", return_dict=True)
        with torch.inference_mode():  # stops come from the merged folder's saved generation config only
            output = model.generate(**prompt, max_new_tokens=MAX_NEW_TOKENS, do_sample=False)
        generated = output[0, prompt["input_ids"].shape[1]:].tolist()
        title = tokenizer.decode(generated[:-1], skip_special_tokens=True).strip()
        assert generated[-1] == end_of_turn, f"ran past the title: {tokenizer.decode(generated)!r}"
        assert metrics.is_title_only(title) and 8 <= len(title) <= 30, title


def embedding_type(path: str) -> str:
    """The GGUF type of a file's token embedding, as llama.cpp wrote it."""
    from gguf import GGUFReader

    return next(t.tensor_type.name for t in GGUFReader(path).tensors if t.name == "token_embd.weight")


@pytest.mark.real_model
def test_the_demo_certifies_the_smallest_gguf_that_still_scores_and_stops_and_serves_exactly_that_file(
    artifact_root, llama_cpp, real_gemma3_270m, monkeypatch
):
    """The README demo's own fine-tune through the whole gate and its own ladder, which starts at a mixed recipe (Q8_0
    with its token embedding in IQ4_NL, made by llama-quantize --token-embedding-type): each GGUF of the ladder scored
    through llama-server; the first that passes is certified and served, every smaller one refused with its
    reason."""
    import dagster as dg

    from titlegen_assets.versioning.fingerprint import file_sha256
    from titlegen_assets_tests.doubles.hub_double import HubDouble
    from titlegen_assets_tests.doubles.ollama_server import OllamaDouble
    from titlegen_assets_tests.support import materialize, ollama_at, shipped_config

    _, cache_root = real_gemma3_270m
    shutil.copytree(cache_root / "base_models", artifact_root / "base_models", dirs_exist_ok=True)  # de-quantized once
    monkeypatch.delenv("HF_TOKEN", raising=False)
    selection = ["raw_dataset", "cleaned_splits", "lora_adapter", "merged_hf_model", "hf_repo", "ollama_model"]
    config = shipped_config("demo.yaml")
    with OllamaDouble() as server:
        result = materialize(selection, config, dg.DagsterInstance.ephemeral(), hub=HubDouble(),
                             ollama=ollama_at(monkeypatch, server))
    gate = next(e for e in result.get_asset_check_evaluations() if e.check_name == "gguf_certified")
    assert result.success, gate.description
    ladder = list(result.output_for_node("merged_hf_model")["gguf"]["files"])
    assert ladder == ["Q8_0_EMB_IQ4_NL", "Q8_0"]
    assert embedding_type(result.output_for_node("merged_hf_model")["gguf"]["files"][ladder[0]]["path"]) == "IQ4_NL"
    certified = gate.metadata["certified"].value
    [chosen] = list(certified)  # auto stops at the first type that passes
    refused = ladder[: ladder.index(chosen)]
    assert all(f"{quantization}: " in gate.description for quantization in refused), gate.description
    served = result.output_for_node("ollama_model")
    assert served["gguf"] == {chosen: certified[chosen]} and f"sha256:{certified[chosen]}" in server.blobs
    published = Path(result.output_for_node("hf_repo")["path"])
    assert [file_sha256(p) for p in published.glob("*.gguf")] == [certified[chosen]]
    print(f"demo ladder: refused {refused}, certified {chosen}: {gate.description}")  # RESULTS.md quotes it
