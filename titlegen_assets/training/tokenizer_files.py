"""The tokenizer files every saved model folder carries, SentencePiece ``tokenizer.model`` included.

llama.cpp's GGUF converter reads Gemma's vocabulary from ``tokenizer.model``, which ``save_pretrained`` does not
write (transformers 5 keeps no SentencePiece model in memory). So the adapter folder gets the very file the run's
tokenizer was loaded from, at training time, and the merge copies it on: the GGUF never depends on what a cache
holds later. Unsloth's own merge does the same lookup (``unsloth/save.py``
``_preserve_sentencepiece_tokenizer_assets``, 2026.10.7: the tokenizer's ``name_or_path``, a folder or a Hub repo).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

SENTENCEPIECE = "tokenizer.model"


def sentencepiece_source(tokenizer, base_model: str) -> tuple[Path | None, list[str]]:
    """(the ``tokenizer.model`` of the folder or Hub repo this tokenizer was loaded from, else of ``base_model``;
    what was tried). A 4-bit Unsloth load reads its tokenizer from ``…-unsloth-bnb-4bit``, hence the second try."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    from titlegen_assets.training.processing import text_tokenizer

    tried = []
    for source in dict.fromkeys(filter(None, [getattr(text_tokenizer(tokenizer), "name_or_path", None), base_model])):
        folder = Path(source)
        if folder.is_dir():
            if (folder / SENTENCEPIECE).is_file():
                return folder / SENTENCEPIECE, tried
            tried.append(f"{folder} (no {SENTENCEPIECE})")
            continue
        try:
            return Path(hf_hub_download(source, SENTENCEPIECE)), tried
        except (EntryNotFoundError, LocalEntryNotFoundError, HfHubHTTPError, ConnectionError, ValueError) as error:
            tried.append(f"{source} on the Hub ({type(error).__name__})")
    return None, tried


def save_tokenizer(tokenizer, target: Path, base_model: str, log: Callable[[str], None]) -> bool:
    """``tokenizer.save_pretrained(target)`` plus its SentencePiece model; False (and a log line saying why) when
    the tokenizer has none, e.g. a BPE-only model: its GGUF export will then say what is missing."""
    tokenizer.save_pretrained(str(target))
    source, tried = sentencepiece_source(tokenizer, base_model)
    if source is None:
        log(f"no SentencePiece {SENTENCEPIECE} for this tokenizer (tried {'; '.join(tried)}): the folder converts "
            "to GGUF only where llama.cpp reads tokenizer.json for this architecture")
        return False
    shutil.copyfile(source, target / SENTENCEPIECE)
    return True


def copy_sentencepiece(source_dir: Path, target: Path) -> bool:
    """Carry ``tokenizer.model`` from one saved folder (the adapter) to the next (the merged model)."""
    if (source_dir / SENTENCEPIECE).is_file() and not (target / SENTENCEPIECE).is_file():
        shutil.copyfile(source_dir / SENTENCEPIECE, target / SENTENCEPIECE)
    return (target / SENTENCEPIECE).is_file()
