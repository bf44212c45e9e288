"""GGUF export with llama.cpp's own converter and quantizer, so users can `ollama run hf.co/<org>/<repo>:Q4_K_M`.

llama.cpp is found at ``LLAMA_CPP_DIR`` (default ``~/.cache/titlegen/llama.cpp``), built by
``docker/build_llama_cpp.sh`` (the GPU image runs it). Where it is missing, export is skipped with that reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
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


@contextlib.contextmanager
def converter_view(model_dir: Path) -> Iterator[Path]:
    """``model_dir`` as llama.cpp's converter must read it: its files (linked, not copied), plus an
    ``added_tokens.json`` naming the user-defined pieces of its ``tokenizer.model``, which the converter types only
    from that file. The folder itself does not carry the file: transformers would add those pieces as new tokens."""
    with tempfile.TemporaryDirectory(prefix="gguf-convert-") as parent:
        view = Path(parent) / model_dir.name  # the converter names the model after its folder
        view.mkdir()
        for path in model_dir.iterdir():
            os.symlink(path.resolve(), view / path.name)
        pieces = model_dir / "tokenizer.model"
        if pieces.is_file() and not (model_dir / "added_tokens.json").exists():
            from transformers.utils import sentencepiece_model_pb2_new as sentencepiece_pb

            model = sentencepiece_pb.ModelProto.FromString(pieces.read_bytes())
            user_defined = {piece.piece: index for index, piece in enumerate(model.pieces)
                            if piece.type == piece.USER_DEFINED}
            if user_defined:
                (view / "added_tokens.json").write_text(json.dumps(user_defined, ensure_ascii=False))
        yield view


def export(model_dir: Path, out_file: Path, quantization: str, root: Path | None = None) -> Path:
    """Convert a Hugging Face folder (with its SentencePiece ``tokenizer.model``) to one GGUF file."""
    root = root or llama_cpp_dir()
    quantization = quantization.upper()
    direct = CONVERTER_TYPES.get(quantization)
    converted = out_file if direct else out_file.with_name(out_file.stem + ".bf16.gguf")
    with converter_view(Path(model_dir)) as view:
        _run([sys.executable, root / "convert_hf_to_gguf.py", view, "--outtype", direct or "bf16",
              "--outfile", converted], "convert_hf_to_gguf.py", root)
    if not direct:
        _run([root / "build" / "bin" / "llama-quantize", converted, out_file, quantization], "llama-quantize", root)
        converted.unlink()
    return out_file


def exported(model_dir: Path, cache_dir: Path, quantization: str, root: Path | None = None) -> Path:
    """The GGUF of one merged model at one quantization, exported once into ``cache_dir`` (beside the merged
    version, on the artifact root) and shared by its consumers: hf_repo publishes it, ollama_model serves it."""
    target = cache_dir / f"model-{quantization.upper()}.gguf"
    if target.is_file():
        return target
    root = root or llama_cpp_dir()
    reason = missing_tools(root) or (None if (model_dir / "tokenizer.model").is_file() else
                                     f"{model_dir} has no SentencePiece tokenizer.model (the converter needs it)")
    if reason:
        raise GGUFUnavailable(f"no {target.name} under {cache_dir}, and it cannot be exported here: {reason}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = cache_dir / f".tmp-{uuid.uuid4().hex[:8]}-{target.name}"
    try:
        export(model_dir, staging, quantization, root)
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    return target


class GGUFUnavailable(RuntimeError):
    """No GGUF exists for the model and llama.cpp cannot make one here; the message says what is missing."""


def write_sentencepiece_model(gguf_file: Path, target: Path) -> Path:
    """Rebuild the SentencePiece ``tokenizer.model`` of a llama.cpp GGUF from the vocabulary it carries (pieces,
    scores, token types), so a folder de-quantized from that GGUF can be converted back by llama.cpp's converter.

    Only a SentencePiece ("llama") vocabulary can be rebuilt. transformers' own copy of the SentencePiece protobuf
    schema is used: the one in the ``sentencepiece`` wheel needs protobuf 7, which Dagster's pin forbids.
    """
    from gguf import GGUFReader
    from transformers.utils import sentencepiece_model_pb2_new as sentencepiece_pb

    fields = GGUFReader(gguf_file).fields
    kind = fields["tokenizer.ggml.model"].contents() if "tokenizer.ggml.model" in fields else None
    if kind != "llama":
        raise ValueError(f"{gguf_file} has a {kind!r} tokenizer, not a SentencePiece ('llama') one: "
                         "no tokenizer.model can be rebuilt from it")
    unknown = fields["tokenizer.ggml.unknown_token_id"].contents()
    model = sentencepiece_pb.ModelProto()
    pieces = zip(fields["tokenizer.ggml.tokens"].contents(), fields["tokenizer.ggml.scores"].contents(),
                 fields["tokenizer.ggml.token_type"].contents())
    for index, (piece, score, token_type) in enumerate(pieces):  # GGUF token types number like SentencePiece's
        model.pieces.add(piece=piece, score=score,
                         type=sentencepiece_pb.ModelProto.SentencePiece.UNKNOWN if index == unknown else token_type)
    spec = model.trainer_spec
    spec.model_type, spec.vocab_size, spec.byte_fallback = sentencepiece_pb.TrainerSpec.BPE, len(model.pieces), True
    spec.unk_id, spec.bos_id = unknown, fields["tokenizer.ggml.bos_token_id"].contents()
    spec.eos_id, spec.pad_id = fields["tokenizer.ggml.eos_token_id"].contents(), fields["tokenizer.ggml.padding_token_id"].contents()
    normalizer = model.normalizer_spec
    normalizer.name, normalizer.escape_whitespaces, normalizer.remove_extra_whitespaces = "identity", True, False
    space_prefix = fields.get("tokenizer.ggml.add_space_prefix")  # llama.cpp's default when absent: true
    normalizer.add_dummy_prefix = bool(space_prefix.contents()) if space_prefix else True
    target.write_bytes(model.SerializeToString())
    return target
