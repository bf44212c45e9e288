"""The Ollama model definition, generated from the prompts module so serving sees exactly the training prompt.

Ollama's ``create`` takes the same pieces a Modelfile holds (``FROM`` files, TEMPLATE, SYSTEM, PARAMETERs,
quantization); ``render`` writes them as a Modelfile for users who prefer ``ollama create -f``.
"""

from __future__ import annotations

from pathlib import Path

from titlegen_assets.prompts import END_OF_TURN, GREEDY, INSTRUCTION, ollama_template


def parameters(num_predict: int, runtime: dict | None = None) -> dict:
    """The eval gate's decoding: greedy, stopping at the end of the model's turn, capped at the gate's
    ``num_predict`` tokens, so the served model answers as the certified one did. ``runtime``: the runner's options
    that are set (num_thread, num_batch, num_ctx; None leaves Ollama's default), which change speed, not answers."""
    chosen = {name: value for name, value in (runtime or {}).items() if value is not None}
    return {"stop": [END_OF_TURN], **GREEDY, "num_predict": num_predict, **chosen}


def render(source: Path, num_predict: int, runtime: dict | None = None) -> str:
    """The Modelfile for ``ollama create -f``; ``source`` is the GGUF file or the safetensors folder."""
    lines = [f"FROM {source}", f'TEMPLATE """{ollama_template()}"""', f'SYSTEM """{INSTRUCTION}"""']
    for name, value in parameters(num_predict, runtime).items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f'PARAMETER {name} "{item}"' if isinstance(item, str) else f"PARAMETER {name} {item}")
    return "\n".join(lines) + "\n"


def model_files(model_dir: Path) -> list[Path]:
    """The files Ollama imports from a safetensors folder: weights, configs and tokenizer (not the model card)."""
    return sorted(p for p in model_dir.rglob("*") if p.is_file() and p.name != "README.md" and not p.name.startswith("."))
