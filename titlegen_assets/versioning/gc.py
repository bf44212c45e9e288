"""``titlegen gc``: remove the artifact versions that nothing in service and no recent materialization references.

Always kept, whatever their age and ``--keep``:

- the model in service or published: the merged version named (``merged_version``) by the latest materialization of
  ``ollama_model`` and of ``hf_repo``, with its lineage read from that merged model's step-output manifest — its
  ``merged/`` folder, its GGUFs, its adapter, splits and raw data — and the ``hub/`` and ``ollama/`` folders those
  materializations name. When the manifest cannot be read, its merged folder and GGUFs are still kept and gc says so;
- anything a live run holds: a ``.lock-<v>`` whose ``flock`` is held, a ``.tmp-*`` staging folder whose staging
  lock is held, a ``.work-<v>`` training folder (or a version folder) whose ``.lock-<v>`` is held. Each is removed
  only under its lock, so a run that takes it meanwhile wins;
- anything behind a symbolic link: a kind folder (``merged``, ``reports/latency``…) that is a link is skipped, never
  followed out of the artifact root; an entry that is a link is removed as a link, never through it.

gc prints each of these with the reason. Beyond them, a version folder under the artifact root (``raw/``,
``splits/``, ``adapters/``, ``merged/``, ``gguf/``, ``hub/``, ``ollama/``, ``reports/<kind>/``) is kept when one of
the last ``--keep`` materializations of any asset (or the last ``--keep`` executions of any asset check the code
location defines) names it in its ``path`` metadata (a step output manifest names the same folder as its
materialization), when it is the GGUF or Ollama folder of a kept merged model (named by the merged model's version),
or when anything in it was written in the last ``--min-age-hours`` (default a day: a version whose run has not
recorded its materialization yet).

Dagster's records are read from ``DAGSTER_HOME``: it must be the deployment's, or every version looks unused
(an instance without any materialization is refused for that reason).

    titlegen gc --dry-run        # what would go and how many bytes, and what is kept and why
    titlegen gc --keep 3         # remove it
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from titlegen_assets.versioning.artifacts import (
    STAGING_LOCK, default_root, lock_if_free, lock_is_held, lock_path, staging_is_live,
)

#: The folders that hold one entry per version; ``reports`` holds one folder of versions per kind of report.
KINDS = ("raw", "splits", "adapters", "merged", "gguf", "hub", "ollama", "reports")
#: Folders named by the version of the merged model they were made from.
FROM_MERGED = ("gguf", "ollama")
#: The assets whose latest materialization is a model in service (served or published); each records the merged
#: version it ships as ``merged_version``.
SERVING = ("ollama_model", "hf_repo")
#: The folder kind of each input a merged model's manifest names in ``inputs``, and what the reason calls it.
INPUT_KINDS = {"lora_adapter": ("adapters", "adapter"), "cleaned_splits": ("splits", "splits"),
               "raw_dataset": ("raw", "raw data")}
#: What a consumer's own folder is to the reader.
CONSUMER_VERBS = {"hf_repo": "published by", "ollama_model": "served by"}
#: Prefixes of the entries a run makes beside its version: ``version_lock``'s file, ``atomic_folder``'s staging
#: folder, lora_adapter's checkpoints.
LOCK, STAGING, WORK = ".lock-", ".tmp-", ".work-"


@dataclass(frozen=True)
class Entry:
    path: Path
    bytes: int


@dataclass(frozen=True)
class InService:
    """A merged model that the latest materialization of one of ``SERVING`` names, with its lineage."""

    version: str
    #: The assets whose latest materialization ships it.
    by: tuple[str, ...]
    #: The paths those materializations name in path-typed metadata (their hub/ and ollama/ folders), and whose.
    folders: Mapping[Path, str] = field(default_factory=dict)
    #: The versions it was made from, from its step-output manifest; None when that could not be read.
    inputs: Mapping[str, str] | None = None
    #: Why ``inputs`` is None.
    unreadable: str = ""


def kind_folders(root: Path) -> tuple[list[Path], dict[Path, str]]:
    """The folders that hold version entries, and the ones skipped because they are symbolic links (with why):
    gc never follows a link out of the artifact root."""
    folders, links = [], {}
    candidates = [root / kind for kind in KINDS if kind != "reports"]
    reports = root / "reports"
    if reports.is_symlink():
        links[reports] = _link_reason(reports)
    elif reports.is_dir():
        candidates += sorted(p for p in reports.iterdir() if p.is_dir() or p.is_symlink())
    for folder in candidates:
        if folder.is_symlink():
            links[folder] = _link_reason(folder)
        elif folder.is_dir():
            folders.append(folder)
    return folders, links


def _link_reason(link: Path) -> str:
    return f"a symbolic link (to {link.readlink()}); gc never follows a link out of the artifact root"


def version_entries(root: Path) -> list[Path]:
    """Every version entry (folder, file or link) under the artifact root, staging ones included; none behind a
    linked kind folder."""
    return sorted(entry for folder in kind_folders(root)[0] for entry in folder.iterdir())


def entry_of(root: Path, path: Path) -> Path | None:
    """The version entry a referenced path lies in (``merged/<v>`` for ``merged/<v>/config.json``), or None."""
    try:
        parts = Path(path).resolve().relative_to(root.resolve()).parts
    except ValueError:
        return None
    depth = 3 if parts and parts[0] == "reports" else 2
    return root.joinpath(*parts[:depth]) if len(parts) >= depth and parts[0] in KINDS else None


def guarding_lock(entry: Path) -> Path:
    """The lock a run holds while it makes (or trains toward) this entry: a staging folder's own lock, else the
    version's ``.lock-<v>`` (a lock file guards itself)."""
    name = entry.name
    if name.startswith(LOCK):
        return entry
    if name.startswith(STAGING):
        return entry / STAGING_LOCK
    return lock_path(entry.parent / name.removeprefix(WORK))


def in_use(root: Path) -> dict[Path, str]:
    """The entries a live run holds, and the linked kind folders gc skips, each with the reason."""
    folders, reasons = kind_folders(root)
    for entry in (entry for folder in folders for entry in folder.iterdir()):
        name, kind = entry.name, entry.parent.relative_to(root)
        if name.startswith(LOCK) and lock_is_held(entry):
            reasons[entry] = f"held by a run making {kind}/{name.removeprefix(LOCK)}"
        elif name.startswith(STAGING) and entry.is_dir() and not entry.is_symlink() and staging_is_live(entry):
            reasons[entry] = "being written (its staging lock is held)"
        elif name.startswith(WORK) and lock_is_held(guarding_lock(entry)):
            reasons[entry] = f"work folder of {kind}/{name.removeprefix(WORK)}, which a run is making"
        elif not name.startswith((LOCK, STAGING, WORK)) and lock_is_held(guarding_lock(entry)):
            reasons[entry] = f"a run holds {guarding_lock(entry).name} (making or reusing it)"
    return reasons


def in_service_reasons(root: Path, services: Iterable[InService]) -> dict[Path, str]:
    """{entry: why it is kept} for every folder of each model in service: its merged folder, its GGUFs, its adapter,
    splits and raw data (when its lineage was read), and the folders its consumers name."""
    reasons: dict[Path, list[str]] = {}

    def keep(entry: Path | None, reason: str) -> None:
        if entry is not None and reason not in reasons.setdefault(entry, []):
            reasons[entry].append(reason)

    for service in services:
        merged, by = f"merged/{service.version}", f"in service ({', '.join(service.by)})"
        lost = "" if service.inputs is not None else (
            f"; its lineage could not be read ({service.unreadable}), so its adapter, splits and raw data are not "
            "kept on its account")
        keep(root / "merged" / service.version, by + lost)
        keep(root / "gguf" / service.version, f"GGUFs of {merged}, {by}")
        for name, version in (service.inputs or {}).items():
            if name in INPUT_KINDS:
                kind, what = INPUT_KINDS[name]
                keep(root / kind / version, f"{what} of {merged}, {by}")
        for path, consumer in service.folders.items():
            keep(entry_of(root, path), f"{CONSUMER_VERBS.get(consumer, 'named by')} {consumer} ({merged})")
    return {entry: "; ".join(why) for entry, why in reasons.items()}


def in_service(instance, root: Path) -> list[InService]:
    """The merged models the latest materialization of each of ``SERVING`` names (Dagster's records), with the
    lineage read from the step-output manifest of the merged_hf_model materialization that made each version."""
    import dagster as dg

    from titlegen_assets.defs.guard import HISTORY, materialization_of
    from titlegen_assets.defs.io_manager import manifest_file

    merged_key = dg.AssetKey("merged_hf_model")
    by: dict[str, list[str]] = {}
    folders: dict[str, dict[Path, str]] = {}
    for name in SERVING:
        records = instance.fetch_materializations(dg.AssetKey(name), limit=1).records
        if not records:
            continue
        metadata = records[0].asset_materialization.metadata
        if "merged_version" not in metadata:
            raise GcRefused(f"the latest {name} materialization (run {records[0].run_id[:8]}) does not record the "
                            "merged model it ships (merged_version), so gc cannot tell which model is in service: "
                            f"re-materialize {name} and run gc again")
        version = str(metadata["merged_version"].value)
        by.setdefault(version, []).append(name)
        folders.setdefault(version, {}).update(
            {Path(value.value): name for value in metadata.values() if isinstance(value, dg.PathMetadataValue)})
    services = []
    for version, consumers in by.items():
        inputs, unreadable = None, ""
        record = materialization_of(instance, merged_key, version)
        if record is None:
            unreadable = f"no merged_hf_model materialization of it among the last {HISTORY}"
        else:
            manifest = manifest_file(root, merged_key, record.run_id)
            try:
                inputs = json.loads(manifest.read_text(encoding="utf-8"))["inputs"]
            except FileNotFoundError:
                unreadable = f"no manifest at {manifest}"
            except (OSError, ValueError, KeyError, TypeError) as error:
                unreadable = f"{manifest} is unreadable: {error!r}"
        services.append(InService(version, tuple(consumers), folders[version], inputs, unreadable))
    return services


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


def unreferenced(root: Path, referenced: set[Path], min_age_s: float, now: float,
                 kept: Mapping[Path, str] | None = None) -> list[Entry]:
    """The entries that no reference keeps, that are not in ``kept`` (the model in service and its lineage), that
    no live run holds, and that nobody wrote to in the last ``min_age_s`` seconds, with their sizes."""
    keep = {entry for entry in (entry_of(root, path) for path in referenced) if entry}
    keep |= {root / kind / entry.name for entry in keep if entry.parent == root / "merged" for kind in FROM_MERGED}
    keep |= set(kept or {}) | set(in_use(root))
    return [Entry(entry, size(entry)) for entry in version_entries(root)
            if entry not in keep and newest_change(entry) < now - min_age_s]


def remove(entry: Path) -> bool:
    """Remove one entry under the lock that guards it (a link as a link, never what it points at); False, touching
    nothing, when a run took that lock since the entry was listed."""
    with lock_if_free(guarding_lock(entry)) as free:
        if not free:
            return False
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    return True


def referenced_paths(instance, keep_last: int) -> set[Path]:
    """Every path named in the ``path``-typed metadata of the last ``keep_last`` materializations of each asset
    and the last ``keep_last`` executions of each asset check the code location defines (one still running names
    no path), recorded by this Dagster instance.

    Each read is bounded by ``keep_last``. Materializations come through the public
    ``DagsterInstance.fetch_materializations``. Dagster 1.13.27 has no public instance method for check evaluations:
    ``get_event_records`` is deprecated for 2.0 (and read every record); the narrower calls that replace it
    (dagster-io/dagster#15985) cover materializations, observations and run status only. So evaluations come, one
    check key at a time as the guard reads them, through ``get_asset_check_execution_history``, an abstract method of
    the public ``EventLogStorage`` class that every storage implements (the instance's ``event_log_storage`` property
    that hands it out carries no ``@public`` mark)."""
    import dagster as dg

    from titlegen_assets.defs.guard import check_specs

    def paths(metadata) -> set[Path]:
        return {Path(value.value) for value in metadata.values() if isinstance(value, dg.PathMetadataValue)}

    keys = instance.get_asset_keys()
    if not keys:
        raise GcRefused("this Dagster instance has no materializations, so every version would look unused: set "
                        "DAGSTER_HOME to the deployment's (the folder holding its dagster.yaml) and run again")
    found = {path for key in keys for record in instance.fetch_materializations(key, limit=keep_last).records
             for path in paths(record.asset_materialization.metadata)}
    for spec in check_specs():
        for execution in instance.event_log_storage.get_asset_check_execution_history(spec.key, limit=keep_last):
            if isinstance(execution.evaluation, dg.AssetCheckEvaluation):  # a running one holds its planned event
                found |= paths(execution.evaluation.metadata)
    return found


class GcRefused(RuntimeError):
    """Collecting would not be safe; the message says why and what to do."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="titlegen", description="titlegen maintenance commands")
    commands = parser.add_subparsers(dest="command", required=True)
    gc = commands.add_parser("gc", help="remove artifact versions that nothing in service and no recent "
                             "materialization references", description=__doc__.split("\n\n", 1)[1],
                             formatter_class=argparse.RawDescriptionHelpFormatter)
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
            services = in_service(instance, root)
    except GcRefused as error:
        print(f"titlegen gc: {error}", file=sys.stderr)
        return 2
    serving = in_service_reasons(root, services)
    kept = {**serving, **in_use(root)}
    for entry, reason in sorted(kept.items()):
        if entry.exists() or entry.is_symlink():
            print(f"kept {entry.relative_to(root)}: {reason}")
    doomed = unreferenced(root, referenced, args.min_age_hours * 3600, time.time(), serving)
    removed = []
    for entry in doomed:
        print(f"{'would remove' if args.dry_run else 'removing'} {entry.path} ({entry.bytes:,} bytes)")
        if args.dry_run or remove(entry.path):
            removed.append(entry)
        else:
            print(f"left {entry.path}: a run took {guarding_lock(entry.path).name} meanwhile")
    total = sum(entry.bytes for entry in removed)
    print(f"{'would free' if args.dry_run else 'freed'} {total:,} bytes in {len(removed)} version(s) under {root}; "
          f"kept the last {args.keep} materializations of each asset, the models in service and what runs hold")
    return 0

if __name__ == "__main__":
    sys.exit(main())
