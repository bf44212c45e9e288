"""``titlegen gc``: remove the artifact versions that no recent materialization references.

A version folder under the artifact root (``raw/``, ``splits/``, ``adapters/``, ``merged/``, ``gguf/``, ``hub/``,
``ollama/``, ``reports/<kind>/``) is kept when one of the last ``--keep`` materializations of any asset (or the
last ``--keep`` evaluations of any asset check) names it in its ``path`` metadata (a step output manifest names the
same folder as its materialization), or when it is the GGUF or Ollama folder of a kept merged model (named by the
merged model's version). Anything written in the last ``--min-age-hours`` (default a day: staging folders ``.tmp-*``,
training work folders ``.work-*``, a version whose run has not recorded its materialization yet) is never touched.

Dagster's records are read from ``DAGSTER_HOME``: it must be the deployment's, or every version looks unused
(an instance without any materialization is refused for that reason).

    titlegen gc --dry-run        # what would go, and how many bytes
    titlegen gc --keep 3         # remove it
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from titlegen_assets.versioning.artifacts import default_root

#: The folders that hold one entry per version; ``reports`` holds one folder of versions per kind of report.
KINDS = ("raw", "splits", "adapters", "merged", "gguf", "hub", "ollama", "reports")
#: Folders named by the version of the merged model they were made from.
FROM_MERGED = ("gguf", "ollama")


@dataclass(frozen=True)
class Entry:
    path: Path
    bytes: int


def version_entries(root: Path) -> list[Path]:
    """Every version entry (folder or file) under the artifact root, staging ones included."""
    folders = [root / kind for kind in KINDS if kind != "reports"]
    folders += sorted(p for p in (root / "reports").iterdir() if p.is_dir()) if (root / "reports").is_dir() else []
    return sorted(entry for folder in folders if folder.is_dir() for entry in folder.iterdir())


def entry_of(root: Path, path: Path) -> Path | None:
    """The version entry a referenced path lies in (``merged/<v>`` for ``merged/<v>/config.json``), or None."""
    try:
        parts = Path(path).resolve().relative_to(root.resolve()).parts
    except ValueError:
        return None
    depth = 3 if parts and parts[0] == "reports" else 2
    return root.joinpath(*parts[:depth]) if len(parts) >= depth and parts[0] in KINDS else None


def _walk(path: Path):
    yield path
    if path.is_dir() and not path.is_symlink():
        for child in path.rglob("*"):
            yield child


def newest_change(path: Path) -> float:
    """The latest modification time of the entry or anything in it (a writer touches the files it writes)."""
    return max(p.lstat().st_mtime for p in _walk(path))


def size(path: Path) -> int:
    return sum(p.lstat().st_size for p in _walk(path) if not p.is_dir())


def unreferenced(root: Path, referenced: set[Path], min_age_s: float, now: float) -> list[Entry]:
    """The entries no reference keeps and nobody wrote to in the last ``min_age_s`` seconds, with their sizes."""
    keep = {entry for entry in (entry_of(root, path) for path in referenced) if entry}
    keep |= {root / kind / entry.name for entry in keep if entry.parent == root / "merged" for kind in FROM_MERGED}
    return [Entry(entry, size(entry)) for entry in version_entries(root)
            if entry not in keep and newest_change(entry) < now - min_age_s]


def referenced_paths(instance, keep_last: int) -> set[Path]:
    """Every path named in the ``path``-typed metadata of the last ``keep_last`` materializations of each asset
    and the last ``keep_last`` evaluations of each asset check recorded by this Dagster instance."""
    import dagster as dg

    def paths(metadata) -> set[Path]:
        return {Path(value.value) for value in metadata.values() if isinstance(value, dg.PathMetadataValue)}

    keys = instance.get_asset_keys()
    if not keys:
        raise GcRefused("this Dagster instance has no materializations, so every version would look unused: set "
                        "DAGSTER_HOME to the deployment's (the folder holding its dagster.yaml) and run again")
    found = {path for key in keys for record in instance.fetch_materializations(key, limit=keep_last).records
             for path in paths(record.asset_materialization.metadata)}
    per_check: dict = {}
    evaluations = instance.get_event_records(dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION))
    for record in evaluations:  # newest first
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        seen = per_check.setdefault(evaluation.asset_check_key, 0)
        if seen < keep_last:
            per_check[evaluation.asset_check_key] = seen + 1
            found |= paths(evaluation.metadata)
    return found


class GcRefused(RuntimeError):
    """Collecting would not be safe; the message says why and what to do."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="titlegen", description="titlegen maintenance commands")
    commands = parser.add_subparsers(dest="command", required=True)
    gc = commands.add_parser("gc", help="remove artifact versions no recent materialization references",
                             description=__doc__.split("\n\n")[1])
    gc.add_argument("--keep", type=int, default=5, help="materializations kept per asset (default 5)")
    gc.add_argument("--min-age-hours", type=float, default=24.0,
                    help="never touch anything written more recently than this (default 24)")
    gc.add_argument("--root", type=Path, default=None, help="artifact root (default TITLEGEN_HOME or ~/.titlegen)")
    gc.add_argument("--dry-run", action="store_true", help="list what would be removed and its size; remove nothing")
    args = parser.parse_args(argv)
    if args.keep < 1:
        parser.error("--keep must be at least 1")
    from dagster import DagsterInstance

    root = args.root or default_root()
    try:
        with DagsterInstance.get() as instance:
            referenced = referenced_paths(instance, args.keep)
    except GcRefused as error:
        print(f"titlegen gc: {error}", file=sys.stderr)
        return 2
    doomed = unreferenced(root, referenced, args.min_age_hours * 3600, time.time())
    for entry in doomed:
        print(f"{'would remove' if args.dry_run else 'removing'} {entry.path} ({entry.bytes:,} bytes)")
        if not args.dry_run:
            shutil.rmtree(entry.path) if entry.path.is_dir() and not entry.path.is_symlink() else entry.path.unlink()
    total = sum(entry.bytes for entry in doomed)
    print(f"{'would free' if args.dry_run else 'freed'} {total:,} bytes in {len(doomed)} version(s) under {root}; "
          f"kept the last {args.keep} materializations of each asset")
    return 0


if __name__ == "__main__":
    sys.exit(main())
