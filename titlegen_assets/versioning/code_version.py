"""Versions that know the code: a digest of the source files and texts that shape each stage's output.

An asset's artifact folder is named by a fingerprint of its inputs and config; the digest below joins that
fingerprint, so editing the instruction, the chat template, a cleaning rule or the training code makes a new
version (and a new folder) instead of reusing the old one. The same digest is the asset's Dagster
``code_version``, so the UI marks downstream assets stale when the code behind them changed.

Nothing is listed by hand: a stage's digest covers its own package and every first-party module that package
imports, followed transitively (imports inside functions count), with the data files (templates, tokenizer files)
of every package reached. Whole files are hashed, deliberately: a reworded comment costs a retrain, a missed
behaviour change would cost a wrong model.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
ROOT_MODULE = PACKAGE.name
#: Data files that carry behaviour or text the model sees (templates, tokenizer files); .py files are followed.
_DATA_SUFFIXES = {".jinja", ".json", ".model"}


def _module_file(module: str) -> Path | None:
    """The file of a first-party module (``titlegen_assets.x.y``), a package's ``__init__.py``, or None."""
    relative = Path(*module.split(".")[1:])
    for candidate in (PACKAGE / relative.with_suffix(".py"), PACKAGE / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def _imports(file: Path) -> frozenset[Path]:
    """The first-party module files ``file`` imports (``import a.b``, ``from a.b import c`` where c may be a module)."""
    found = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name == ROOT_MODULE or name.startswith(ROOT_MODULE + "."):
                module = _module_file(name)
                if module is not None:
                    found.add(module)
    return frozenset(found)


def closure(*packages: str) -> list[Path]:
    """Every file a stage depends on: the packages' modules, what they import (transitively), and the data files of
    each package folder reached, in sorted order."""
    pending = [path for package in packages for path in sorted((PACKAGE / package).rglob("*.py"))]
    seen: set[Path] = set()
    while pending:
        file = pending.pop()
        if file in seen:
            continue
        seen.add(file)
        pending.extend(_imports(file) - seen)
    folders = {file.parent for file in seen if file.parent != PACKAGE}
    data = {path for folder in folders for path in folder.rglob("*") if path.suffix in _DATA_SUFFIXES}
    return sorted(seen | data)


@cache
def _file_digest(file: Path) -> bytes:
    return hashlib.sha256(file.read_bytes()).digest()


def stage_digest(*packages: str, length: int = 12) -> str:
    """sha256 over the closure of ``packages`` (relative paths and the contents' digests)."""
    digest = hashlib.sha256()
    for file in closure(*packages):
        digest.update(str(file.relative_to(PACKAGE)).encode())
        digest.update(_file_digest(file))
    return digest.hexdigest()[:length]


#: What shapes the splits: sources, cleaning rules, near-duplicate detection and the split.
DATA_CODE = stage_digest("data")
#: What shapes the adapter and the merged folder: the training package and the prompt it imports.
TRAINING_CODE = stage_digest("training")
#: What shapes the merged folder and its GGUF files: the merge (training package) and the export package.
MERGE_CODE = stage_digest("training", "export")
#: What shapes the published folder and its model card.
PUBLISH_CODE = stage_digest("export")
#: What shapes the gate's predictions and scores.
EVAL_CODE = stage_digest("evaluation")
#: What shapes the served model: the Modelfile, the Ollama client's use, and the prompt.
SERVING_CODE = stage_digest("serving")
