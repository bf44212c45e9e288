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
def version_lock(target: Path) -> Iterator[None]:
    """Hold an exclusive lock on one version while it is made, so concurrent runs of the same version wait for each
    other instead of training twice (``flock`` on ``.lock-<name>`` beside it: released when the process dies, and
    seen across processes and containers that share the artifact volume). ``titlegen gc`` may remove a lock file
    nobody holds; a run that was waiting on the removed file then locks the one now at the path instead."""
    import fcntl

    target.parent.mkdir(parents=True, exist_ok=True)
    lock = lock_path(target)
    while True:
        handle = open(lock, "a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            opened, current = os.fstat(handle.fileno()), os.stat(lock)
            if (opened.st_dev, opened.st_ino) == (current.st_dev, current.st_ino):
                break
        except FileNotFoundError:
            pass
        handle.close()  # the file was removed while this run waited on it: lock the one at the path now
    with handle:
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lock_path(target: Path) -> Path:
    """The lock file ``version_lock`` holds while ``target`` is made."""
    return target.parent / f".lock-{target.name}"


@contextlib.contextmanager
def lock_if_free(lock: Path) -> Iterator[bool]:
    """Take ``flock`` on an existing lock file without waiting: yields False when another process (or another open of
    it in this one) holds it, else True, holding it until the block ends; no file is free. Never creates the file."""
    import fcntl

    try:
        handle = open(lock, "rb")
    except (FileNotFoundError, NotADirectoryError):
        yield True
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lock_is_held(lock: Path) -> bool:
    """Whether a live process holds ``flock`` on ``lock`` (its maker, in any container on the volume)."""
    with lock_if_free(lock) as free:
        return not free


def staging_is_live(staging: Path) -> bool:
    """Whether a process still holds the staging folder's lock (its maker is alive, in any container on the volume)."""
    return lock_is_held(staging / STAGING_LOCK)


#: The lock file inside a staging folder; held by the run writing it, removed before the rename.
STAGING_LOCK = ".staging.lock"


@contextlib.contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``target``; rename it to ``target`` only if the block succeeds.

    If ``target`` exists by then (the same version produced by another run, maybe at the same time), the new copy is
    discarded and the existing one kept, so a re-materialization never overwrites what an earlier run produced.
    Staging folders that a killed run left for the same target are removed first; a live run's staging folder (its
    lock still held) is left alone.
    """
    import fcntl

    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in target.parent.glob(f".tmp-{target.name}-*"):
        if not staging_is_live(leftover):
            shutil.rmtree(leftover, ignore_errors=True)
    staging = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    with open(staging / STAGING_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held until the folder is renamed or removed: a sweeper leaves it alone
        try:
            yield staging
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        try:
            os.replace(staging, target)
        except OSError:
            if not target.is_dir():
                raise
            shutil.rmtree(staging, ignore_errors=True)  # another run renamed the same version first: keep theirs
        else:
            (target / STAGING_LOCK).unlink()


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
