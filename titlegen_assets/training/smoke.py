"""A smoke base model: the real Gemma 3n text architecture at toy size, random weights, built locally in seconds.

It lets the whole graph run offline on a laptop and in CI. It is named as a smoke model everywhere it appears
(its name, its config's ``_name_or_path``, the model card), never passed off as a real one; its titles are noise.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from titlegen_assets.artifacts import atomic_folder
from titlegen_assets.prompts import END_OF_TURN

SMOKE_MODEL_ID = "titlegen/smoke-gemma3n-tiny"
#: Five layers: four sliding-window and one global, the real Gemma 3n pattern (llama.cpp assumes it too).
LAYERS = 5


def tokenizer_dir() -> Path:
    """The committed SentencePiece tokenizer (trained on the bundled sample) with the real Gemma 3n chat template."""
    return Path(str(resources.files("titlegen_assets") / "smoke_model"))


def stop_token_ids(tokenizer) -> list[int]:
    """``<eos>`` and ``<end_of_turn>``: generation stops at either, as with the real Gemma 3n."""
    return [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(END_OF_TURN)]


def text_config(tokenizer):
    from transformers import Gemma3nTextConfig

    vocab_size = len(tokenizer)
    return Gemma3nTextConfig(
        vocab_size=vocab_size, vocab_size_per_layer_input=vocab_size, hidden_size=64,
        intermediate_size=[128] * LAYERS, num_hidden_layers=LAYERS, num_attention_heads=2, num_key_value_heads=1,
        head_dim=32, num_kv_shared_layers=0, sliding_window=32,
        layer_types=["sliding_attention"] * (LAYERS - 1) + ["full_attention"],
        # Kept at the real model's values so llama.cpp's GGUF converter accepts the architecture.
        altup_num_inputs=4, hidden_size_per_layer_input=256, laurel_rank=64,
        # The real model sparsifies its first 10 layers at 0.95; llama.cpp hard-codes that, so the smoke model does too.
        activation_sparsity_pattern=[0.95] * LAYERS,
        max_position_embeddings=2048, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=stop_token_ids(tokenizer),
    )


def build(target: Path, seed: int = 0) -> Path:
    """Write the smoke model (safetensors, config, tokenizer, chat template) to ``target`` if it is not there yet."""
    if target.exists():
        return target
    import torch
    from transformers import AutoTokenizer, Gemma3nForCausalLM, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir())
    torch.manual_seed(seed)
    model = Gemma3nForCausalLM(text_config(tokenizer))
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=stop_token_ids(tokenizer), pad_token_id=tokenizer.pad_token_id
    )
    with atomic_folder(target) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        shutil.copyfile(tokenizer_dir() / "tokenizer.model", staging / "tokenizer.model")  # for GGUF conversion
    return target
