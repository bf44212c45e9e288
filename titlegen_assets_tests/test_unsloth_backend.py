"""The Unsloth backend's calls, checked against a recording double of the unsloth package (no GPU here)."""

from functools import partial

from titlegen_assets.config import TrainingConfig
from titlegen_assets.prompts import INSTRUCTION
from titlegen_assets_tests.doubles import unsloth_double


def test_unsloth_backend_follows_the_gemma3n_notebook_with_real_argument_names(
    monkeypatch, smoke_base_model, sample_splits, tmp_path, reference_dir
):
    import datasets

    from titlegen_assets.training import sft, unsloth_backend

    unsloth_double.install(monkeypatch, smoke_base_model)
    config = TrainingConfig(max_steps=2, per_device_train_batch_size=2, gradient_accumulation_steps=1,
                            max_seq_length=512, gradient_checkpointing=False)
    splits = datasets.load_from_disk(sample_splits)
    args_for = partial(sft.sft_args, config, tmp_path, "fp32", True)
    trainer, tokenizer = unsloth_backend.build_trainer(
        config, config.base_model, splits["train"], splits["validation"], args_for, []
    )

    calls = dict(unsloth_double.CALLS)
    loaded = calls["FastModel.from_pretrained"]
    assert (loaded["model_name"], loaded["load_in_4bit"], loaded["max_seq_length"]) == ("unsloth/gemma-3n-E4B-it", True, 512)
    peft = calls["FastModel.get_peft_model"]
    assert (peft["finetune_vision_layers"], peft["finetune_language_layers"]) == (False, True)
    assert (peft["r"], peft["lora_alpha"], peft["lora_dropout"], peft["random_state"]) == (16, 32, 0.05, 3407)
    masking = calls["train_on_responses_only"]
    template = (reference_dir / "gemma3n_chat_template.jinja").read_text()
    assert masking["instruction_part"] == "<start_of_turn>user\n" and masking["response_part"] == "<start_of_turn>model\n"
    assert "'<start_of_turn>' + role + '\\n'" in template and 'set role = "model"' in template

    text = tokenizer.decode(trainer.train_dataset[0]["input_ids"])
    title = splits["train"][0]["title"]
    assert text.startswith(f"<bos><start_of_turn>user\n{INSTRUCTION}\n\n") and not text.startswith("<bos><bos>")
    assert f"<start_of_turn>model\n{title}<end_of_turn>" in text
