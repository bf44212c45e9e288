"""The Ollama model definition, generated from the prompts module so serving sees exactly the training prompt.

Ollama's ``create`` takes the same pieces a Modelfile holds (``FROM`` files, TEMPLATE, SYSTEM, PARAMETERs,
quantization); ``render`` writes them as a Modelfile for users who prefer ``ollama create -f``.
"""

from __future__ import annotations

from pathlib import Path

from titlegen_assets.prompts import END_OF_TURN, INSTRUCTION, ollama_template


def parameters(temperature: float, num_predict: int, runtime: dict | None = None) -> dict:
    """Stop at the end of the model's turn; near-greedy and short, as a title needs. ``runtime``: the runner's
    options that are set (num_thread, num_batch, num_ctx; None leaves Ollama's default)."""
    chosen = {name: value for name, value in (runtime or {}).items() if value is not None}
    return {"stop": [END_OF_TURN], "temperature": temperature, "num_predict": num_predict, **chosen}


def render(source: Path, temperature: float, num_predict: int, runtime: dict | None = None) -> str:
    """The Modelfile for ``ollama create -f``; ``source`` is the GGUF file or the safetensors folder."""
    lines = [f"FROM {source}", f'TEMPLATE """{ollama_template()}"""', f'SYSTEM """{INSTRUCTION}"""']
    for name, value in parameters(temperature, num_predict, runtime).items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f'PARAMETER {name} "{item}"' if isinstance(item, str) else f"PARAMETER {name} {item}")
    return "\n".join(lines) + "\n"


def model_files(model_dir: Path) -> list[Path]:
    """The files Ollama imports from a safetensors folder: weights, configs and tokenizer (not the model card)."""
    return sorted(p for p in model_dir.rglob("*") if p.is_file() and p.name != "README.md" and not p.name.startswith("."))
