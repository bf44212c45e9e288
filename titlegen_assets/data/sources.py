"""Read raw articles from the bundled sample, a local JSONL/Parquet file, or a Hugging Face dataset.

Every source ends as the same rows: the original columns, plus ``content``/``title`` mapped from the configured
input/target columns and ``source_row`` (1-based line or row number) so a later error can point back at the file.
Files are hostile input: each is read a row (JSONL) or a small batch of rows (Parquet, Hub) at a time, a row larger
than ``max_row_bytes`` is refused before it is read whole (a Parquet row from the file's footer before anything is
decompressed, then in Arrow before it becomes Python), and every row is checked (UTF-8, one JSON object, text or
null in the mapped columns, one type per column) so a bad one stops the read with its file, its row and what to do.
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
#: The largest row read, in MB (a JSONL line; any text value of a Parquet or Hub row): news articles are a few KB.
MAX_ROW_MB = 4.0
_MB = 1_000_000
#: Parquet and Hub rows checked in Arrow, then turned into Python, at a time.
BATCH_ROWS = 256
#: pyarrow decompresses a whole Parquet page and a page holds at least one whole value, so before decompressing, the
#: only bound on a value is its column chunk's uncompressed size (the footer): a chunk over this many rows' limit
#: could hide one huge value and is not read (256 MB of a column in one row group at the default max_row_mb).
READ_ROWS = 64


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


def read_parquet(path: Path, max_row_bytes: int = int(MAX_ROW_MB * _MB)) -> list[dict]:
    """The rows of a Parquet file, ``BATCH_ROWS`` at a time, each batch's values measured before it becomes Python,
    after the footer said no row group is too large to measure (``check_parquet_footer``)."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several types for an unreadable file
        raise SourceError(f"{path}: cannot be read as Parquet ({error}); check that the file is a Parquet file") from error
    check_parquet_footer(parquet.metadata, str(path), max_row_bytes)
    batches = parquet.iter_batches(batch_size=BATCH_ROWS)
    rows = []
    while True:
        try:
            batch = next(batches, None)
        except Exception as error:
            raise SourceError(f"{path}: cannot be read as Parquet after row {len(rows)} ({error}); check that the "
                              "file is a whole Parquet file") from error
        if batch is None:
            return rows
        rows += checked_rows(batch, str(path), len(rows) + 1, max_row_bytes)


def check_parquet_footer(metadata, where: str, max_row_bytes: int) -> None:
    """From a Parquet footer (``pyarrow.parquet.FileMetaData``) alone, nothing decompressed: a column chunk larger
    than its row group's rows may hold at ``max_row_bytes`` each has a row over the limit; one larger than
    ``READ_ROWS`` rows' limit cannot be measured without decompressing a page that large. Either raises, naming the
    file, the row (or the rows of that row group) and what to do."""
    first = 1
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        last = first + group.num_rows - 1
        rows = f"row {first}" if first == last else f"rows {first}-{last} (row group {index + 1})"
        for chunk in (group.column(c) for c in range(group.num_columns)):
            size, column = chunk.total_uncompressed_size, chunk.path_in_schema
            if size > max_row_bytes * max(group.num_rows, 1):  # a row group of no rows holds no value
                which = f"row {first} has" if first == last else f"one of rows {first}-{last} (row group {index + 1}) has"
                raise SourceError(f"{where}: {which} a {column!r} longer than {_megabytes(max_row_bytes)} (raw_dataset's "
                                  f"max_row_mb): the file's footer gives {rows} {_megabytes(size)} of it before "
                                  "compression; shorten that article, remove the row, or raise max_row_mb")
            if size > max_row_bytes * READ_ROWS:
                raise SourceError(f"{where}: {rows} hold {_megabytes(size)} of {column!r} before compression, more "
                                  f"than raw_dataset decompresses at once ({READ_ROWS} x max_row_mb), so one huge row "
                                  "cannot be told from many small ones; write the file with smaller row groups "
                                  "(pyarrow: `pq.write_table(table, path, row_group_size=1000)`) or raise max_row_mb")
        first = last + 1


def checked_rows(batch, where: str, first_row: int, max_row_bytes: int) -> list[dict]:
    """A pyarrow record batch or table as Python rows, once every text or binary value in it was measured in Arrow
    (``pyarrow.compute.binary_length``) and found within ``max_row_bytes``; ``first_row`` numbers its first row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    measured = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)
    for name, column in zip(batch.schema.names, batch.columns):
        if not any(is_type(column.type) for is_type in measured):
            continue
        over = pc.greater(pc.binary_length(column), max_row_bytes)
        if pc.any(over).as_py():
            raise _too_long(where, first_row + pc.index(over, True).as_py(), name, max_row_bytes)
    return batch.to_pylist()


def _too_long(where: str, row: int, column: str, max_row_bytes: int) -> SourceError:
    return SourceError(f"{where}: row {row} has a {column!r} longer than {_megabytes(max_row_bytes)} (raw_dataset's "
                       "max_row_mb); shorten that article, remove the row, or raise max_row_mb")


def _megabytes(size: int) -> str:
    return f"{size / _MB:g} MB"


def _kind(value) -> str | None:
    """The JSON kind of a value as a person names it; None for null."""
    kinds = ((bool, "true/false"), ((int, float), "a number"), (str, "text"), (list, "a list"), (dict, "an object"))
    return None if value is None else next((name for types, name in kinds if isinstance(value, types)), type(value).__name__)


def check_rows(rows: list[dict], where: str, text_columns: tuple[str, str]) -> None:
    """Every row: the article and title columns text (or null), and every column one kind across rows, as an Arrow
    table needs; the first row that breaks a rule raises with what to do. (Sizes were checked as the rows were read.)"""
    first: dict[str, tuple[str, int]] = {}
    for number, row in enumerate(rows, start=1):
        for column in text_columns:
            kind = _kind(row[column])
            if kind not in (None, "text"):
                raise SourceError(f"{where}: row {number} has {kind} in {column!r}, not text; make it a string "
                                  "(null is allowed and is dropped by cleaning), remove the row, or map another "
                                  "column with raw_dataset's input_column/target_column")
        for column, value in row.items():
            kind = _kind(value)
            seen = first.setdefault(column, (kind, number)) if kind else None
            if seen and seen[0] != kind:
                raise SourceError(f"{where}: row {number} has {kind} in {column!r}, but row {seen[1]} has {seen[0]}; "
                                  "a column holds one type: fix one of the two rows, or remove the column")


def map_columns(rows: list[dict], where: str, input_column: str, target_column: str) -> tuple[list[dict], str]:
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
    check_rows(rows, where, (source_in, source_out))
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
        rows = read_parquet(path, max_row_bytes)
    else:
        raise SourceError(f"{path}: unsupported extension {suffix!r}; use .jsonl or .parquet")
    if not rows:
        raise SourceError(f"{path}: the file has no rows; point raw_dataset at a file with articles")
    mapped, layout = map_columns(rows, str(path), input_column, target_column)
    return RawSource(mapped, kind, str(path), f"sha256:{file_sha256(path)}", sorted(rows[0].keys()), layout)


def load_hub(dataset_id: str, revision: str, split: str, input_column: str, target_column: str,
             max_row_bytes: int = int(MAX_ROW_MB * _MB), token: str | bool | None = None) -> RawSource:
    """A Hub dataset (or a local copy of one) at a commit, through ``datasets``' builder: the footer of each of its
    Parquet files is checked before anything is downloaded whole (``check_parquet_footer``), and every value is
    measured in Arrow before it becomes Python. ``revision`` should already be a commit sha (see the Hub resource);
    ``token`` is the Hub resource's decision for this dataset (False: sent without one)."""
    import datasets
    import fsspec
    import pyarrow.parquet as pq

    where = f"{dataset_id}@{revision}"
    try:
        builder = datasets.load_dataset_builder(dataset_id, revision=revision, token=token)
        files = [str(file) for file in (builder.config.data_files or {}).get(split, [])]
        for file in (f for f in files if f.lower().endswith(".parquet")):
            hub_file = {"token": token} if file.startswith("hf://") else {}
            with fsspec.open(file, "rb", **hub_file) as handle:  # the footer only: fsspec reads what is asked
                footer = pq.ParquetFile(handle).metadata
            check_parquet_footer(footer, f"{where} {file.rsplit('/', 1)[-1]}", max_row_bytes)
        builder.download_and_prepare()
        dataset = builder.as_dataset(split=split)
    except SourceError:
        raise
    except Exception as error:
        anonymous = (" It was asked for without a token: the deployment reads with HF_TOKEN only in the namespaces it "
                     "allows, so elsewhere only a public dataset can be read." if token is False else "")
        raise SourceError(
            f"{where}: could not load split {split!r} ({type(error).__name__}: {error}). "
            f"Check the dataset id, revision and split, network access to the Hub, or use source='file'.{anonymous}"
        ) from error
    rows = []
    for table in dataset.with_format("arrow").iter(batch_size=BATCH_ROWS):
        rows += checked_rows(table, where, len(rows) + 1, max_row_bytes)
    mapped, layout = map_columns(rows, where, input_column, target_column)
    return RawSource(mapped, "hub", dataset_id, revision, list(dataset.column_names), layout)


def read_source(source: str, hf_dataset: str, hf_revision: str, hf_split: str, path: str | None,
                input_column: str, target_column: str, resolve_commit, max_row_mb: float = MAX_ROW_MB,
                token: str | bool | None = None) -> RawSource:
    """The configured source: the bundled sample, a local file, or a Hub dataset (``resolve_commit`` turns its
    branch into a commit; ``token`` reads it, False for none). A local folder holding a copy of a Hub dataset is
    versioned by its content."""
    max_row_bytes = int(max_row_mb * _MB)
    if source == "sample":
        return load_file(sample_path(), input_column, target_column, kind="sample", max_row_bytes=max_row_bytes)
    if source == "file":
        return load_file(Path(path).expanduser(), input_column, target_column, max_row_bytes=max_row_bytes)
    local_copy = Path(hf_dataset).expanduser()
    refuse_outside_links(local_copy)
    revision = f"sha256:{folder_sha256(local_copy)}" if local_copy.is_dir() else resolve_commit(hf_dataset, hf_revision)
    return load_hub(hf_dataset, revision, hf_split, input_column, target_column, max_row_bytes, token)
