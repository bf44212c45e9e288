"""Merge a LoRA adapter into its base model and save a 16-bit Hugging Face folder (safetensors)."""

from __future__ import annotations

from pathlib import Path

from titlegen_assets.training.tokenizer_files import copy_sentencepiece


def merge_adapter(adapter_dir: Path, base_model: str, backend: str, target: Path) -> None:
    """Unsloth's ``save_pretrained_merged`` on its path; PEFT ``merge_and_unload`` + ``save_pretrained`` elsewhere.
    Either way the folder gets the adapter's SentencePiece ``tokenizer.model`` (the run's own), for GGUF export."""
    if backend == "unsloth":
        from unsloth import FastModel

        from titlegen_assets.training.unsloth_backend import save_merged

        model, tokenizer = FastModel.from_pretrained(model_name=str(adapter_dir), load_in_4bit=False)
        save_merged(model, tokenizer, target)
        copy_sentencepiece(adapter_dir, target)
        return
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    from titlegen_assets.prompts import with_chat_template, with_generation_stops

    base = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.bfloat16)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(target), safe_serialization=True)
    tokenizer = with_chat_template(AutoTokenizer.from_pretrained(str(adapter_dir)))
    tokenizer.save_pretrained(str(target))
    with_generation_stops(GenerationConfig.from_pretrained(base_model), tokenizer).save_pretrained(str(target))
    copy_sentencepiece(adapter_dir, target)


def load_for_generation(folder: str, backend: str = "trl"):
    """(model, tokenizer) from a saved folder, in eval mode with left padding for batches.

    On the Unsloth backend, Unsloth's own loader and its fast inference mode; its second value is a processor for
    a multimodal checkpoint (Gemma 3n), which ``generate_titles`` takes as it is. Elsewhere plain transformers.
    """
    if backend == "unsloth":
        from unsloth import FastModel

        model, processing_class = FastModel.from_pretrained(model_name=folder, load_in_4bit=False)
        return FastModel.for_inference(model), processing_class
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    return model.to("cuda" if torch.cuda.is_available() else "cpu").eval(), tokenizer
