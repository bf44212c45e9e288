"""Read raw articles from the bundled sample, a local JSONL/Parquet file, or a Hugging Face dataset.

Every source ends as the same rows: the original columns, plus ``content``/``title`` mapped from the configured
input/target columns and ``source_row`` (1-based line or row number) so a later error can point back at the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from titlegen_assets.versioning.fingerprint import file_sha256, fingerprint, folder_sha256

SAMPLE_FILE = "zh_tw_news_sample.jsonl"
#: The production dataset: zh-TW PTS news articles, `content` the article, `title` the headline.
HUB_DATASET = "AWeirdDev/zh-tw-pts-articles-sm"
#: The instruction/input/output layout of TAIDE-style training files: ``input`` is the article, ``output`` the title.
TAIDE_COLUMNS = ("instruction", "input", "output")


class SourceError(ValueError):
    """Bad input: the message names the file, the row and what to do."""


@dataclass(frozen=True)
class RawSource:
    rows: list[dict]
    kind: str
    location: str
    revision: str
    columns: list[str]
    layout: str

    @property
    def version(self) -> str:
        return fingerprint(self.kind, self.location, self.revision, self.layout)


def sample_path() -> Path:
    """The bundled zh-TW sample the project wrote itself (real dataset schema, deliberately messy)."""
    return Path(str(resources.files("titlegen_assets") / "sample_data" / SAMPLE_FILE))


def read_jsonl(path: Path) -> list[dict]:
    """One JSON object per line; a bad line raises with its line number instead of being skipped."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise SourceError(
                    f"{path}: line {number} is not valid JSON ({error.msg} at column {error.colno}); "
                    "fix or delete that line (each line must be one JSON object)"
                ) from None
            if not isinstance(row, dict):
                raise SourceError(f"{path}: line {number} is a JSON {type(row).__name__}, not an object; "
                                  "each line must be one object such as {\"content\": ..., \"title\": ...}")
            rows.append(row)
    return rows


def read_parquet(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as error:  # pyarrow raises several types for an unreadable file
        raise SourceError(f"{path}: cannot be read as Parquet ({error}); check that the file is a Parquet file") from error


def map_columns(rows: list[dict], where: str, input_column: str, target_column: str) -> tuple[list[dict], str]:
    """Add ``content``/``title`` from the configured columns (or the TAIDE layout) and number the rows."""
    columns = set().union(*(row.keys() for row in rows)) if rows else set()
    if {input_column, target_column} <= columns:
        source_in, source_out, layout = input_column, target_column, f"{input_column}->content, {target_column}->title"
    elif set(TAIDE_COLUMNS) <= columns:
        source_in, source_out, layout = "input", "output", "instruction/input/output (TAIDE)"
    else:
        missing = sorted({input_column, target_column} - columns)
        raise SourceError(
            f"{where}: no column {', '.join(repr(m) for m in missing)}; the file has {sorted(columns)}. "
            "Set raw_dataset's input_column/target_column to the article and title columns, "
            "or use the instruction/input/output layout"
        )
    for number, row in enumerate(rows, start=1):
        if source_in not in row or source_out not in row:
            absent = source_in if source_in not in row else source_out
            raise SourceError(f"{where}: row {number} has no {absent!r}; add it (null is allowed and is dropped "
                              "by cleaning) or remove the row")
    mapped = [{**row, "content": row[source_in], "title": row[source_out], "source_row": n}
              for n, row in enumerate(rows, start=1)]
    return mapped, layout


def load_file(path: Path, input_column: str, target_column: str, kind: str = "file") -> RawSource:
    """A local ``.jsonl``/``.json`` (one object per line) or ``.parquet`` file."""
    if not path.is_file():
        raise SourceError(f"{path}: file not found; set raw_dataset's path to an existing .jsonl or .parquet file")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        rows = read_jsonl(path)
    elif suffix == ".parquet":
        rows = read_parquet(path)
    else:
        raise SourceError(f"{path}: unsupported extension {suffix!r}; use .jsonl or .parquet")
    if not rows:
        raise SourceError(f"{path}: the file has no rows; point raw_dataset at a file with articles")
    mapped, layout = map_columns(rows, str(path), input_column, target_column)
    return RawSource(mapped, kind, str(path), f"sha256:{file_sha256(path)}", sorted(rows[0].keys()), layout)


def load_hub(dataset_id: str, revision: str, split: str, input_column: str, target_column: str) -> RawSource:
    """``datasets.load_dataset`` at a commit; ``revision`` should already be a commit sha (see the Hub resource)."""
    import datasets

    try:
        dataset = datasets.load_dataset(dataset_id, revision=revision, split=split)
    except Exception as error:
        raise SourceError(
            f"{dataset_id}@{revision}: could not load split {split!r} ({type(error).__name__}: {error}). "
            "Check the dataset id, revision and split, network access to the Hub, or use source='file'"
        ) from error
    rows = dataset.to_list()
    mapped, layout = map_columns(rows, f"{dataset_id}@{revision}", input_column, target_column)
    return RawSource(mapped, "hub", dataset_id, revision, list(dataset.column_names), layout)


def read_source(source: str, hf_dataset: str, hf_revision: str, hf_split: str, path: str | None,
                input_column: str, target_column: str, resolve_commit) -> RawSource:
    """The configured source: the bundled sample, a local file, or a Hub dataset (``resolve_commit`` turns its
    branch into a commit). A local folder holding a copy of a Hub dataset is versioned by its content."""
    if source == "sample":
        return load_file(sample_path(), input_column, target_column, kind="sample")
    if source == "file":
        return load_file(Path(path).expanduser(), input_column, target_column)
    local_copy = Path(hf_dataset).expanduser()
    revision = f"sha256:{folder_sha256(local_copy)}" if local_copy.is_dir() else resolve_commit(hf_dataset, hf_revision)
    return load_hub(hf_dataset, revision, hf_split, input_column, target_column)
