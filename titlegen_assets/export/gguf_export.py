"""GGUF export with llama.cpp's own converter and quantizer, so users can `ollama run hf.co/<org>/<repo>:Q4_K_M`.

llama.cpp is found at ``LLAMA_CPP_DIR`` (default ``~/.cache/titlegen/llama.cpp``), built by
``docker/build_llama_cpp.sh`` (the GPU image runs it). Where it is missing, export is skipped with that reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

#: Written by the converter directly; anything else (Q4_K_M, Q8_0, ...) goes through llama-quantize.
CONVERTER_TYPES = {"F32": "f32", "BF16": "bf16"}
#: The GGUF types the product makes, smallest first: what a quantization ladder climbs. F16 is left out: Gemma
#: overflows in fp16.
QUANTIZATIONS = ("Q4_0", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0", "BF16", "F32")
#: A mixed recipe, ``<type>_EMB_<embedding type>`` (``Q8_0_EMB_Q4_0``): the file is quantized to ``<type>`` except the
#: token embedding (``llama-quantize --token-embedding-type``). Gemma ties the embedding to the output head, so its
#: type sets most of the bytes read per decoded token (262k x 640 of Gemma 3 270M's 268M weights). IQ4_NL is 4.5 bits
#: like Q4_0 on a non-linear grid: on Gemma 3 270M it kept the gate's scores that Q4_0 lost (benchmarks/RESULTS.md).
EMBEDDING_MARK = "_EMB_"
#: Embedding types whose blocks are 32 wide; K-quant blocks are 256 wide, so a model whose hidden size is not a
#: multiple of 256 (Gemma 3 270M: 640) takes one of these.
BLOCK_32_EMBEDDING_TYPES = ("IQ4_NL", "Q4_0", "Q4_1", "Q5_0", "Q8_0")
EMBEDDING_TYPES = (*BLOCK_32_EMBEDDING_TYPES, "Q4_K", "Q5_K", "Q6_K")
#: The default ladder: the eval gate certifies the smallest of these whose answers still score and stop.
DEFAULT_LADDER = ("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")


def quantization_name(value: str) -> str:
    """A GGUF type in llama.cpp's spelling (``q4_k_m`` -> ``Q4_K_M``), or a mixed recipe (``Q8_0_EMB_Q4_0``), or
    ValueError naming the choices."""
    name = value.strip().upper()
    body, mark, embedding = name.partition(EMBEDDING_MARK)
    if body not in QUANTIZATIONS or (mark and (embedding not in EMBEDDING_TYPES or body in CONVERTER_TYPES)):
        raise ValueError(f"{value!r} is not a GGUF type titlegen makes: use one of {', '.join(QUANTIZATIONS)} "
                         f"(any case; F16 is refused because Gemma overflows in fp16), or a quantized type with its "
                         f"token embedding in another, <type>{EMBEDDING_MARK}<{'|'.join(EMBEDDING_TYPES)}> (e.g. "
                         f"Q8_0{EMBEDDING_MARK}Q4_0)")
    return name


def quantize_arguments(quantization: str) -> tuple[list[str], str]:
    """llama-quantize's options and its type argument for one GGUF type or mixed recipe."""
    body, _, embedding = quantization.upper().partition(EMBEDDING_MARK)
    return (["--token-embedding-type", embedding.lower()] if embedding else []), body


def llama_cpp_dir() -> Path:
    return Path(os.environ.get("LLAMA_CPP_DIR") or Path.home() / ".cache" / "titlegen" / "llama.cpp").expanduser()


def missing_tools(root: Path) -> str | None:
    """Why GGUF files cannot be made and certified here, or None when the converter, the quantizer and the server
    (the eval gate's runtime for GGUF) are all present."""
    if not (root / "convert_hf_to_gguf.py").is_file():
        return f"llama.cpp not found at {root} (set LLAMA_CPP_DIR or run docker/build_llama_cpp.sh)"
    for tool in ("llama-quantize", "llama-server"):
        if not os.access(root / "build" / "bin" / tool, os.X_OK):
            return f"{tool} is not built under {root}/build/bin (run docker/build_llama_cpp.sh)"
    return None


def _run(command: list, what: str, root: Path) -> None:
    # llama.cpp's own gguf-py goes first on the path: it must match the converter's version.
    pythonpath = os.pathsep.join(filter(None, [str(root / "gguf-py"), os.environ.get("PYTHONPATH")]))
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": pythonpath})
    if result.returncode != 0:
        hint = ("a tensor's rows are not a multiple of the block of the type asked for (K-quants: 256): give the token "
                f"embedding one of {', '.join(BLOCK_32_EMBEDDING_TYPES)} instead. "
                if "not divisible by block size" in result.stderr else "")
        raise RuntimeError(f"{what} failed (exit {result.returncode}): {hint}{result.stderr[-2000:]}")


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
    return export_all(Path(model_dir), Path(out_file).parent, [quantization], root, {quantization: Path(out_file)})[
        quantization]


def gguf_name(quantization: str) -> str:
    """The file name of one quantization (``model-Q4_K_M.gguf``): what the gate certifies and the consumers ship."""
    return f"model-{quantization.upper()}.gguf"


def export_all(model_dir: Path, folder: Path, quantizations: list[str], root: Path | None = None,
               names: dict[str, Path] | None = None) -> dict[str, Path]:
    """Every requested quantization of one merged model, from one conversion: the converter writes BF16 (or the
    converter type asked for), llama-quantize makes each other type from it. Whatever fails, no temporary file is
    left behind (the BF16 intermediate is multi-GB for a real model)."""
    root = root or llama_cpp_dir()
    folder.mkdir(parents=True, exist_ok=True)
    names = names or {q: folder / gguf_name(q) for q in quantizations}
    token = uuid.uuid4().hex[:8]
    converted = folder / f".tmp-{token}-converted.bf16.gguf"
    made: list[Path] = [converted]
    try:
        with converter_view(Path(model_dir)) as view:
            _run([sys.executable, root / "convert_hf_to_gguf.py", view, "--outtype", "bf16", "--outfile", converted],
                 "convert_hf_to_gguf.py", root)
        for quantization in quantizations:
            staging = folder / f".tmp-{token}-{names[quantization].name}"
            made.append(staging)
            kind = quantization.upper()
            if kind == "BF16":
                shutil.copyfile(converted, staging)
            elif kind in CONVERTER_TYPES:
                with converter_view(Path(model_dir)) as view:
                    _run([sys.executable, root / "convert_hf_to_gguf.py", view, "--outtype", CONVERTER_TYPES[kind],
                          "--outfile", staging], "convert_hf_to_gguf.py", root)
            else:
                options, body = quantize_arguments(kind)
                _run([root / "build" / "bin" / "llama-quantize", *options, converted, staging, body],
                     "llama-quantize", root)
        for quantization in quantizations:
            os.replace(folder / f".tmp-{token}-{names[quantization].name}", names[quantization])
    finally:
        for leftover in made:
            leftover.unlink(missing_ok=True)
    return names


def unavailable_reason(model_dir: Path, root: Path | None = None) -> str | None:
    """Why no GGUF can be made from ``model_dir`` here, or None when it can."""
    reason = missing_tools(root or llama_cpp_dir())
    if reason is None and not (Path(model_dir) / "tokenizer.model").is_file():
        reason = f"{model_dir} has no SentencePiece tokenizer.model (the converter needs it)"
    return reason


def exported_files(model_dir: Path, folder: Path, quantizations: list[str],
                   log: Callable[[str], None] = lambda _: None) -> dict:
    """The GGUF files of one merged model (made once into ``folder``, reused after): ``{"requested": [...],
    "files": {type: {"path", "sha256", "mib"}}, "skipped": why none were made, or None}``. The sha256 is what the
    eval gate certifies and what hf_repo and ollama_model compare before they ship a file."""
    from titlegen_assets.versioning.artifacts import version_lock
    from titlegen_assets.versioning.fingerprint import file_sha256

    reason = "no GGUF was asked for (gguf: none)" if not quantizations else unavailable_reason(model_dir)
    if reason:
        return {"requested": quantizations, "files": {}, "skipped": reason}
    with version_lock(folder):
        missing = [q for q in quantizations if not (folder / gguf_name(q)).is_file()]
        if missing:
            log(f"exporting {', '.join(missing)} GGUF with llama.cpp into {folder}")
            export_all(model_dir, folder, missing)
    files = {q: {"path": str(folder / gguf_name(q)), "sha256": file_sha256(folder / gguf_name(q)),
                 "mib": round((folder / gguf_name(q)).stat().st_size / 2**20, 1)} for q in quantizations}
    return {"requested": quantizations, "files": files, "skipped": None}


def toolchain_id(root: Path | None = None) -> str:
    """Which llama.cpp makes the files (its converter's content): part of the merged model's version."""
    from titlegen_assets.versioning.fingerprint import file_sha256

    converter = (root or llama_cpp_dir()) / "convert_hf_to_gguf.py"
    return file_sha256(converter)[:12] if converter.is_file() else "none"


class UncertifiedFile(RuntimeError):
    """A file about to ship is not byte for byte the one the eval gate certified."""


def require_certified(path: Path, sha256: str, consumer: str) -> Path:
    """``path`` if its sha256 is the certified one; else ``UncertifiedFile`` (nothing uncertified ever ships)."""
    from titlegen_assets.versioning.fingerprint import file_sha256

    actual = file_sha256(path) if path.is_file() else "missing"
    if actual != sha256:
        raise UncertifiedFile(f"{consumer}: {path} is not the file the eval gate certified (sha256 {actual[:16]} "
                              f"instead of {sha256[:16]}); it was changed or replaced after the gate ran, so it is "
                              "not shipped. Re-materialize merged_hf_model with its checks.")
    return path


def sentencepiece_model(gguf_file: Path) -> bytes:
    """The SentencePiece ``tokenizer.model`` (serialized) of a llama.cpp GGUF, rebuilt from the vocabulary it carries
    (pieces, scores, token types), so a folder de-quantized from that GGUF converts back with llama.cpp's converter.

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
    return model.SerializeToString()
