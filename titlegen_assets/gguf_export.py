"""GGUF export with llama.cpp's own converter and quantizer, so users can `ollama run hf.co/<org>/<repo>:Q4_K_M`.

llama.cpp is found at ``LLAMA_CPP_DIR`` (default ``~/.cache/titlegen/llama.cpp``), built by
``docker/build_llama_cpp.sh`` (the GPU image runs it). Where it is missing, export is skipped with that reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

#: Written by the converter directly; anything else (Q4_K_M, Q8_0, ...) goes through llama-quantize.
CONVERTER_TYPES = {"F32": "f32", "BF16": "bf16", "F16": "f16"}


def llama_cpp_dir() -> Path:
    return Path(os.environ.get("LLAMA_CPP_DIR") or Path.home() / ".cache" / "titlegen" / "llama.cpp").expanduser()


def missing_tools(root: Path) -> str | None:
    """Why GGUF export cannot run here, or None when the converter and quantizer are both present."""
    if not (root / "convert_hf_to_gguf.py").is_file():
        return f"llama.cpp not found at {root} (set LLAMA_CPP_DIR or run docker/build_llama_cpp.sh)"
    if not os.access(root / "build" / "bin" / "llama-quantize", os.X_OK):
        return f"llama-quantize is not built under {root}/build/bin (run docker/build_llama_cpp.sh)"
    return None


def _run(command: list, what: str, root: Path) -> None:
    # llama.cpp's own gguf-py goes first on the path: it must match the converter's version.
    pythonpath = os.pathsep.join(filter(None, [str(root / "gguf-py"), os.environ.get("PYTHONPATH")]))
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": pythonpath})
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {result.returncode}): {result.stderr[-2000:]}")


def export(model_dir: Path, out_file: Path, quantization: str, root: Path | None = None) -> Path:
    """Convert a Hugging Face folder (with its SentencePiece ``tokenizer.model``) to one GGUF file."""
    root = root or llama_cpp_dir()
    quantization = quantization.upper()
    direct = CONVERTER_TYPES.get(quantization)
    converted = out_file if direct else out_file.with_name(out_file.stem + ".bf16.gguf")
    _run([sys.executable, root / "convert_hf_to_gguf.py", model_dir, "--outtype", direct or "bf16",
          "--outfile", converted], "convert_hf_to_gguf.py", root)
    if not direct:
        _run([root / "build" / "bin" / "llama-quantize", converted, out_file, quantization], "llama-quantize", root)
        converted.unlink()
    return out_file


def copy_sentencepiece_model(base_model: str, target: Path) -> bool:
    """Put the base model's ``tokenizer.model`` beside a merged model: GGUF conversion needs it and
    ``save_pretrained`` does not write it. A Hub base is read from the local Hugging Face cache only."""
    local = Path(base_model) / "tokenizer.model"
    if local.is_file():
        shutil.copyfile(local, target / "tokenizer.model")
        return True
    try:
        from huggingface_hub import hf_hub_download

        shutil.copyfile(hf_hub_download(base_model, "tokenizer.model", local_files_only=True), target / "tokenizer.model")
        return True
    except Exception:  # not cached or not a SentencePiece model: GGUF export will say it is skipped
        return False
