"""Versioned artifact folders under one root, written atomically: a failed run leaves nothing half-written."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


def default_root() -> Path:
    """``TITLEGEN_HOME`` if set, else ``~/.titlegen``."""
    return Path(os.environ.get("TITLEGEN_HOME") or Path.home() / ".titlegen").expanduser()


def final_path(root: Path, kind: str, version: str) -> Path:
    return root / kind / version


@contextlib.contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``target``; rename it to ``target`` only if the block succeeds.

    If ``target`` already exists (same version produced before), the new copy is discarded and the existing one
    kept, so a re-materialization never overwrites what an earlier run produced. Staging folders that a killed
    run left for the same target are removed first: they can only be half-written.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in target.parent.glob(f".tmp-{target.name}-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    staging = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(staging, ignore_errors=True)
    else:
        os.replace(staging, target)


def atomic_write_text(path: Path, text: str) -> Path:
    """Write a file through a temporary sibling and a rename, so readers never see half of it; a failed write
    (a full disk, text that cannot be encoded) removes the temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex[:8]}"
    try:
        staging.write_text(text, encoding="utf-8")
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    return path
