"""Versions that know the code: a digest of the source files and texts that shape each asset's output.

An asset's artifact folder is named by a fingerprint of its inputs and config; the digest below joins that
fingerprint, so editing the instruction, the chat template, a cleaning rule or the training code makes a new
version (and a new folder) instead of reusing the old one. The same digest is the asset's Dagster
``code_version``, so the UI marks downstream assets stale when the code behind them changed. Whole files are
hashed, deliberately: a reworded comment costs a retrain, a missed behaviour change would cost a wrong model.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
#: File types that carry behaviour or text the model sees (code, templates, tokenizer files).
_SOURCE_SUFFIXES = {".py", ".jinja", ".json", ".model"}


def source_digest(*names: str, root: Path = PACKAGE, length: int = 12) -> str:
    """sha256 over the named files and folders (relative to ``root``), folders read recursively in sorted order."""
    digest = hashlib.sha256()
    for name in names:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.suffix in _SOURCE_SUFFIXES) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:length]


#: What shapes the splits: the cleaning rules, near-duplicate detection and the split.
DATA_CODE = source_digest("cleaning.py", "dedup.py", "splitting.py", "sources.py")
#: What shapes the adapter: the one prompt (instruction, chat template) and the training code.
TRAINING_CODE = source_digest("prompts.py", "chat_template.jinja", "processing.py", "training", "smoke_model")
#: What shapes the merged folder: the merge, the chat template and stops it writes, and the SentencePiece model it carries.
MERGE_CODE = source_digest("training/merge.py", "training/tokenizer_files.py", "prompts.py", "chat_template.jinja")
#: What shapes the gate's predictions and scores.
EVAL_CODE = source_digest("prompts.py", "chat_template.jinja", "processing.py", "generation.py", "metrics.py")
#: What shapes the served model: the prompt and the Modelfile.
SERVING_CODE = source_digest("prompts.py", "modelfile.py", "serving.py")
