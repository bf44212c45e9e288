"""Read raw articles from the bundled sample, a local JSONL/Parquet file, or a Hugging Face dataset.

Every source ends as the same rows: the original columns, plus ``content``/``title`` mapped from the configured
input/target columns and ``source_row`` (1-based line or row number) so a later error can point back at the file.
Files are hostile input: each is read a row at a time, a row larger than ``max_row_bytes`` is refused before it is
read whole, and every row is checked (UTF-8, one JSON object, text or null in the mapped columns, one type per
column) so a bad one stops the read with its file, its row and what to do.
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
#: The largest row read, in MB (a JSONL line; a Parquet or Hub row's article and title): news articles are a few KB.
MAX_ROW_MB = 4.0
_MB = 1_000_000


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


def read_jsonl(path: Path, max_row_bytes: int = int(MAX_ROW_MB * _MB)) -> list[dict]:
    """One JSON object per line, read a line at a time; a bad line raises with its line number instead of being
    skipped, and a line longer than ``max_row_bytes`` is refused before it is read whole."""
    rows = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(iter(lambda: handle.readline(max_row_bytes + 1), b""), start=1):
            if len(raw.rstrip(b"\r\n")) > max_row_bytes:
                raise SourceError(f"{path}: line {number} is longer than {_megabytes(max_row_bytes)} (raw_dataset's "
                                  "max_row_mb); split or shorten that article, remove the line, or raise max_row_mb")
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise SourceError(
                    f"{path}: line {number} is not UTF-8 (byte 0x{raw[error.start]:02x} at byte {error.start + 1} of "
                    "the line); re-save the file as UTF-8 (from Big5: `iconv -f BIG5 -t UTF-8`) or delete that line"
                ) from error
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise SourceError(
                    f"{path}: line {number} is not valid JSON ({error.msg} at column {error.colno}); "
                    "fix or delete that line (each line must be one JSON object)"
                ) from None
            except RecursionError as error:
                raise SourceError(f"{path}: line {number} nests JSON arrays or objects too deeply to read; "
                                  "fix or delete that line (each line must be one flat JSON object)") from error
            if not isinstance(row, dict):
                raise SourceError(f"{path}: line {number} is a JSON {type(row).__name__}, not an object; "
                                  "each line must be one object such as {\"content\": ..., \"title\": ...}")
            rows.append(row)
    return rows


def read_parquet(path: Path) -> list[dict]:
    """The rows of a Parquet file, a record batch at a time."""
    import pyarrow.parquet as pq

    try:
        return [row for batch in pq.ParquetFile(path).iter_batches() for row in batch.to_pylist()]
    except Exception as error:  # pyarrow raises several types for an unreadable file
        raise SourceError(f"{path}: cannot be read as Parquet ({error}); check that the file is a Parquet file") from error


def _megabytes(size: int) -> str:
    return f"{size / _MB:g} MB"


def _kind(value) -> str | None:
    """The JSON kind of a value as a person names it; None for null."""
    kinds = ((bool, "true/false"), ((int, float), "a number"), (str, "text"), (list, "a list"), (dict, "an object"))
    return None if value is None else next((name for types, name in kinds if isinstance(value, types)), type(value).__name__)


def check_rows(rows: list[dict], where: str, text_columns: tuple[str, str], max_row_bytes: int) -> None:
    """Every row: the article and title columns text (or null) of at most ``max_row_bytes``, and every column one
    kind across rows, as an Arrow table needs; the first row that breaks a rule raises with what to do."""
    first: dict[str, tuple[str, int]] = {}
    for number, row in enumerate(rows, start=1):
        for column in text_columns:
            kind = _kind(row[column])
            if kind not in (None, "text"):
                raise SourceError(f"{where}: row {number} has {kind} in {column!r}, not text; make it a string "
                                  "(null is allowed and is dropped by cleaning), remove the row, or map another "
                                  "column with raw_dataset's input_column/target_column")
            # a character is at most 4 UTF-8 bytes: only a long text is encoded to be measured
            if kind and len(row[column]) * 4 > max_row_bytes and len(row[column].encode()) > max_row_bytes:
                raise SourceError(f"{where}: row {number} has a {column!r} longer than {_megabytes(max_row_bytes)} "
                                  "(raw_dataset's max_row_mb); shorten that article, remove the row, or raise max_row_mb")
        for column, value in row.items():
            kind = _kind(value)
            seen = first.setdefault(column, (kind, number)) if kind else None
            if seen and seen[0] != kind:
                raise SourceError(f"{where}: row {number} has {kind} in {column!r}, but row {seen[1]} has {seen[0]}; "
                                  "a column holds one type: fix one of the two rows, or remove the column")


def map_columns(rows: list[dict], where: str, input_column: str, target_column: str,
                max_row_bytes: int = int(MAX_ROW_MB * _MB)) -> tuple[list[dict], str]:
    """Add ``content``/``title`` from the configured columns (or the TAIDE layout) and number the rows, after
    checking every row (``check_rows``)."""
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
    check_rows(rows, where, (source_in, source_out), max_row_bytes)
    mapped = [{**row, "content": row[source_in], "title": row[source_out], "source_row": n}
              for n, row in enumerate(rows, start=1)]
    return mapped, layout


def refuse_outside_links(path: Path) -> None:
    """A source named in a folder must be in that folder: a symlink resolving outside it is refused, so a link
    dropped into a shared data folder cannot make a run read (and copy to the artifact root) a file elsewhere."""
    if path.is_symlink() and not path.resolve().is_relative_to(path.parent.resolve()):
        raise SourceError(f"{path}: a symlink to {path.resolve()}, outside {path.parent}; copy the data into "
                          f"{path.parent}, or set raw_dataset's path (or hf_dataset) to where it really is")


def load_file(path: Path, input_column: str, target_column: str, kind: str = "file",
              max_row_bytes: int = int(MAX_ROW_MB * _MB)) -> RawSource:
    """A local ``.jsonl``/``.json`` (one object per line) or ``.parquet`` file."""
    refuse_outside_links(path)
    if not path.is_file():
        raise SourceError(f"{path}: file not found; set raw_dataset's path to an existing .jsonl or .parquet file")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        rows = read_jsonl(path, max_row_bytes)
    elif suffix == ".parquet":
        rows = read_parquet(path)
    else:
        raise SourceError(f"{path}: unsupported extension {suffix!r}; use .jsonl or .parquet")
    if not rows:
        raise SourceError(f"{path}: the file has no rows; point raw_dataset at a file with articles")
    mapped, layout = map_columns(rows, str(path), input_column, target_column, max_row_bytes)
    return RawSource(mapped, kind, str(path), f"sha256:{file_sha256(path)}", sorted(rows[0].keys()), layout)


def load_hub(dataset_id: str, revision: str, split: str, input_column: str, target_column: str,
             max_row_bytes: int = int(MAX_ROW_MB * _MB)) -> RawSource:
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
    mapped, layout = map_columns(rows, f"{dataset_id}@{revision}", input_column, target_column, max_row_bytes)
    return RawSource(mapped, "hub", dataset_id, revision, list(dataset.column_names), layout)


def read_source(source: str, hf_dataset: str, hf_revision: str, hf_split: str, path: str | None,
                input_column: str, target_column: str, resolve_commit, max_row_mb: float = MAX_ROW_MB) -> RawSource:
    """The configured source: the bundled sample, a local file, or a Hub dataset (``resolve_commit`` turns its
    branch into a commit). A local folder holding a copy of a Hub dataset is versioned by its content."""
    max_row_bytes = int(max_row_mb * _MB)
    if source == "sample":
        return load_file(sample_path(), input_column, target_column, kind="sample", max_row_bytes=max_row_bytes)
    if source == "file":
        return load_file(Path(path).expanduser(), input_column, target_column, max_row_bytes=max_row_bytes)
    local_copy = Path(hf_dataset).expanduser()
    refuse_outside_links(local_copy)
    revision = f"sha256:{folder_sha256(local_copy)}" if local_copy.is_dir() else resolve_commit(hf_dataset, hf_revision)
    return load_hub(hf_dataset, revision, hf_split, input_column, target_column, max_row_bytes)
