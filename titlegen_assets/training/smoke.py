"""A smoke base model: the real Gemma 3n text architecture at toy size, random weights, built locally in seconds.

It lets the whole graph run offline on a laptop and in CI. It is named as a smoke model everywhere it appears
(its name, its config's ``_name_or_path``, the model card), never passed off as a real one; its titles are noise.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from titlegen_assets.prompts import stop_token_ids, with_chat_template, with_generation_stops
from titlegen_assets.versioning.artifacts import atomic_folder

SMOKE_MODEL_ID = "titlegen/smoke-gemma3n-tiny"
#: Five layers: four sliding-window and one global, the real Gemma 3n pattern (llama.cpp assumes it too).
LAYERS = 5


#: The real Gemma 3n tokenizer's image and audio tokens (google/gemma-3n-E4B-it tokenizer_config.json), which
#: ``Gemma3nProcessor`` reads from its tokenizer.
GEMMA3N_MEDIA_TOKENS = {"image_token": "<image_soft_token>", "boi_token": "<start_of_image>", "eoi_token": "<end_of_image>",
                        "audio_token": "<audio_soft_token>", "boa_token": "<start_of_audio>", "eoa_token": "<end_of_audio>"}


def tokenizer_dir() -> Path:
    """The committed SentencePiece tokenizer, trained on the bundled sample."""
    return Path(str(resources.files("titlegen_assets.training") / "smoke_model"))


def multimodal_processor():
    """A real ``Gemma3nProcessor`` around the smoke tokenizer, built offline: the tokenizer with Gemma 3n's media
    tokens added, the default SigLIP image processor and Gemma 3n audio feature extractor. What Unsloth returns for
    a Gemma 3n checkpoint, for the smoke model shaped like one (tests) and the E4B benchmark."""
    from transformers import AutoTokenizer, Gemma3nAudioFeatureExtractor, Gemma3nProcessor, SiglipImageProcessorPil

    tokenizer = with_chat_template(AutoTokenizer.from_pretrained(tokenizer_dir(), extra_special_tokens=GEMMA3N_MEDIA_TOKENS))
    return Gemma3nProcessor(feature_extractor=Gemma3nAudioFeatureExtractor(), image_processor=SiglipImageProcessorPil(),
                            tokenizer=tokenizer, chat_template=tokenizer.chat_template)


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

    tokenizer = with_chat_template(AutoTokenizer.from_pretrained(tokenizer_dir()))
    torch.manual_seed(seed)
    model = Gemma3nForCausalLM(text_config(tokenizer))
    model.generation_config = with_generation_stops(GenerationConfig(), tokenizer)
    with atomic_folder(target) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        shutil.copyfile(tokenizer_dir() / "tokenizer.model", staging / "tokenizer.model")  # for GGUF conversion
    return target
