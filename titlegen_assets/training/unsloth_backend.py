"""Unsloth QLoRA on an NVIDIA GPU, in the shape of Unsloth's Gemma 3n notebook: load in 4 bit, LoRA on the
language layers, render with the chat template, mask everything but the model's turn, train, merge to 16 bit.

``unsloth`` is imported only here, and only on the CUDA path: it refuses to import without a GPU.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from titlegen_assets.prompts import MODEL_TURN, USER_TURN

#: What Unsloth patches at import and warns about when they come first (``unsloth/_gpu_init.py``, 2026.10.7:
#: ``critical_modules = ["trl", "transformers", "peft"]``).
PATCHED_BY_UNSLOTH = ("trl", "transformers", "peft")


def import_unsloth_first(log: Callable[[str], None]) -> None:
    """Import ``unsloth`` before TRL, transformers and PEFT, so the classes this process uses are the patched ones.
    A GPU step calls this before anything else it imports; if one of them is already loaded, the log says which."""
    if "unsloth" not in sys.modules:
        early = [name for name in PATCHED_BY_UNSLOTH if name in sys.modules]
        if early:
            log(f"{', '.join(early)} imported before unsloth in this process: Unsloth's patches miss what was bound "
                "before; run the GPU steps in their own process (the default multiprocess executor)")
    import unsloth  # noqa: F401


def build_trainer(config, base_model: str, train, validation, args_for, callbacks, log: Callable[[str], None] = print):
    import_unsloth_first(log)
    from trl import SFTTrainer
    from unsloth import FastModel
    from unsloth.chat_templates import train_on_responses_only

    from titlegen_assets.prompts import training_example
    from titlegen_assets.training.environment import precision_of, torch_dtype
    from titlegen_assets.training.processing import text_tokenizer

    args = args_for(dataset_text_field="text")
    model, tokenizer = FastModel.from_pretrained(
        model_name=base_model,
        max_seq_length=config.max_seq_length,
        dtype=torch_dtype(precision_of(args)),  # Unsloth may still change it (no bf16 on the GPU): read back after
        load_in_4bit=config.load_in_4bit,
        full_finetuning=False,
    )
    model = FastModel.get_peft_model(
        model,
        finetune_vision_layers=False,
        finetune_language_layers=True,
        finetune_attention_modules=True,
        finetune_mlp_modules=True,
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        bias="none",
        random_state=config.seed,
    )

    text = text_tokenizer(tokenizer)  # a processor (Gemma 3n) has no bos_token or padding side of its own
    text.padding_side = "right"  # Unsloth's loader leaves it "left", for generation; training pads on the right
    bos = text.bos_token

    def to_text(row):
        example = training_example(row["content"], row["title"])
        text = tokenizer.apply_chat_template(example["prompt"] + example["completion"], tokenize=False)
        return {"text": text.removeprefix(bos)}  # SFTTrainer tokenizes with special tokens: <bos> comes back once

    trainer = SFTTrainer(
        model=model,
        processing_class=tokenizer,
        args=args,
        train_dataset=train.map(to_text, remove_columns=train.column_names),
        eval_dataset=validation.map(to_text, remove_columns=validation.column_names) if validation is not None else None,
        callbacks=callbacks,
    )
    trainer = train_on_responses_only(trainer, instruction_part=USER_TURN, response_part=MODEL_TURN)
    return trainer, tokenizer


def save_merged(model, tokenizer, target) -> None:
    """Unsloth's own merge of the LoRA weights into a 16-bit Hugging Face folder."""
    model.save_pretrained_merged(str(target), tokenizer, save_method="merged_16bit")
