"""The CUDA path (Unsloth backend, masking, merge, generation, eval gate) with a double of Unsloth 2026.10.7 (no GPU
here), both with a real Gemma 3n processor (what Unsloth returns for Gemma 3n) and with a plain tokenizer (what it
returns for a text-only checkpoint such as Gemma 3)."""

import json
from functools import partial
from pathlib import Path

import dagster as dg
import pytest

from titlegen_assets.prompts import INSTRUCTION
from titlegen_assets.training.settings import LoraSettings
from titlegen_assets_tests.doubles import unsloth_double
from titlegen_assets_tests.support import trl_cpu_training_blocker

#: Also run with the GPU pins (.venv-gpu); the double trains with plain TRL, which needs TRL >= 1.16 on a CPU.
pytestmark = pytest.mark.gpu_pins
needs_cpu_training = pytest.mark.skipif(trl_cpu_training_blocker() is not None, reason=str(trl_cpu_training_blocker()))

HUB_NAME = "unsloth/gemma-3n-E4B-it"
TINY = dict(base_model=HUB_NAME, backend="unsloth", max_steps=2, per_device_train_batch_size=2,
            gradient_accumulation_steps=1, max_seq_length=512, gradient_checkpointing=False, learning_rate=2e-3,
            checkpoint_steps=2, logging_steps=1)


@pytest.fixture(params=["processor", "tokenizer"])
def kind(request, monkeypatch, smoke_gemma3n_multimodal, smoke_base_model, tmp_path) -> str:
    """Unsloth (the double) installed, the Hub name standing for a multimodal or a text-only smoke checkpoint, and
    the backend choice told there is CUDA (the tensors stay on the CPU)."""
    from titlegen_assets.training import environment

    folder = smoke_gemma3n_multimodal if request.param == "processor" else smoke_base_model
    unsloth_double.install(monkeypatch, {HUB_NAME: folder}, hub_cache=tmp_path / "hub")
    monkeypatch.setattr(environment, "has_cuda", lambda: True)
    return request.param


def test_unsloth_gives_a_processor_for_gemma3n_and_a_tokenizer_for_a_text_only_checkpoint(kind):
    from transformers import Gemma3nProcessor, PreTrainedTokenizerBase

    _, processing_class = unsloth_double.FastModel.from_pretrained(HUB_NAME)
    assert isinstance(processing_class, Gemma3nProcessor if kind == "processor" else PreTrainedTokenizerBase)
    assert isinstance(processing_class, PreTrainedTokenizerBase) == (kind == "tokenizer")


@needs_cpu_training
def test_unsloth_training_has_bos_once_and_loss_only_after_the_model_turn_marker(kind, sample_splits, tmp_path):
    import datasets

    from titlegen_assets.training import sft, unsloth_backend
    from titlegen_assets.training.processing import text_tokenizer

    config = LoraSettings(**TINY)
    splits = datasets.load_from_disk(sample_splits)
    args_for = partial(sft.sft_args, config, tmp_path, "fp32", False)
    trainer, processing_class = unsloth_backend.build_trainer(config, HUB_NAME, splits["train"], None, args_for, [])
    tokenizer = text_tokenizer(processing_class)

    row = trainer.train_dataset[0]
    ids, labels = row["input_ids"], row["labels"]
    assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1
    assert tokenizer.decode(ids).startswith(f"<bos><start_of_turn>user\n{INSTRUCTION}\n\n")
    marker = tokenizer.encode("<start_of_turn>model\n", add_special_tokens=False)
    start = next(i for i in range(len(ids)) if ids[i : i + len(marker)] == marker) + len(marker)
    assert set(labels[:start]) == {-100}, "a prompt token carries loss"
    assert labels[start:] == ids[start:] and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids[start:]).startswith(splits["train"][0]["title"] + "<end_of_turn>")

    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert trainer.state.global_step == 2 and losses and all(loss == loss and loss > 0 for loss in losses)


def test_generation_adds_bos_once_and_pads_on_the_left(kind):
    from titlegen_assets.evaluation.generation import generate_titles
    from titlegen_assets.training.merge import load_for_generation
    from titlegen_assets.training.processing import text_tokenizer

    model, processing_class = load_for_generation(HUB_NAME, "unsloth")
    tokenizer = text_tokenizer(processing_class)
    prompts = []
    generate = model.generate
    model.generate = lambda **kwargs: prompts.append(kwargs["input_ids"].tolist()) or generate(**kwargs)
    titles = generate_titles(model, processing_class, ["短文。", "這是一篇比較長的新聞內容，講的是颱風接近東部海面。"], 4)

    assert len(titles) == 2 and all(isinstance(title, str) for title in titles)
    [batch] = prompts
    pad, bos = tokenizer.pad_token_id, tokenizer.bos_token_id
    marker = tokenizer.encode("<start_of_turn>model\n", add_special_tokens=False)
    assert batch[0][0] == pad and batch[1][0] == bos, "the shorter prompt is padded on the left"
    for row in batch:
        unpadded = row[next(i for i, token in enumerate(row) if token != pad):]
        assert unpadded[0] == bos and unpadded.count(bos) == 1
        assert unpadded[-len(marker):] == marker, "the prompt ends with the model turn's opener"


@needs_cpu_training
def test_merged_model_sample_and_eval_gate_run_on_the_unsloth_path(kind, resources):
    from titlegen_assets.defs.data_assets import cleaned_splits, cleaned_splits_checks, raw_dataset
    from titlegen_assets.defs.evaluation_checks import eval_gate
    from titlegen_assets.defs.training_assets import lora_adapter, merged_hf_model

    run_config = {"ops": {
        "raw_dataset": {"config": {"source": "sample"}},
        "cleaned_splits": {"config": {"content_max_chars": 300}},
        "lora_adapter": {"config": TINY},
        "merged_hf_model": {"config": {"gguf": "none"}},
        "eval_gate": {"config": {"rouge_l_min": 0.0, "bleu_1_min": 0.0, "title_only_min": 0.0,
                                 "length_compliance_min": 0.0, "max_new_tokens": 8, "max_samples": 4,
                                 "compare_base_model": False}},
    }}
    result = dg.materialize([raw_dataset, cleaned_splits, cleaned_splits_checks, lora_adapter, merged_hf_model,
                             eval_gate], run_config=run_config, resources=resources)
    assert result.success

    merged = result.asset_materializations_for_node("merged_hf_model")[0].metadata
    assert isinstance(merged["sample_generation"].value, str)
    folder = Path(result.output_for_node("merged_hf_model")["path"])
    saved = json.loads((folder / "config.json").read_text())
    assert saved["model_type"] == ("gemma3n" if kind == "processor" else "gemma3n_text")
    assert (folder / "processor_config.json").is_file() == (kind == "processor")
    assert {e.check_name for e in result.get_asset_check_evaluations() if e.asset_key.path == ["merged_hf_model"]} == {
        "rouge_l", "bleu_1", "title_only_rate", "length_compliance", "gguf_certified", "not_worse_than_champion"}
    calls = [name for name, _ in unsloth_double.CALLS]
    assert calls.count("save_pretrained_merged") == 1 and calls.count("FastModel.for_inference") == 2
