import json

import pytest

from titlegen_assets.data.sources import SourceError, load_file, sample_path


def _write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


def test_bundled_sample_has_150_articles_in_the_real_dataset_schema():
    rows = [json.loads(line) for line in sample_path().read_text(encoding="utf-8").splitlines()]
    assert len({r["content"] for r in rows}) >= 150
    assert all(set(r) == {"image", "title", "conclusion", "content", "timestamp", "category", "link"} for r in rows)
    assert any(r["conclusion"] is None for r in rows) and any(r["category"] is None for r in rows)
    assert len({r["category"] for r in rows if r["category"]}) >= 10


def test_malformed_jsonl_line_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "news.jsonl"
    path.write_text('{"content": "甲", "title": "乙"}\n{"content": "broken\n', encoding="utf-8")
    with pytest.raises(SourceError, match=r"news\.jsonl: line 2 is not valid JSON.*fix or delete that line"):
        load_file(path, "content", "title")


def test_missing_column_names_the_file_the_columns_and_the_config_to_set(tmp_path):
    path = _write_jsonl(tmp_path / "news.jsonl", [{"body": "甲", "headline": "乙"}])
    with pytest.raises(SourceError, match=r"news\.jsonl: no column 'content', 'title'.*input_column/target_column"):
        load_file(path, "content", "title")


def test_a_row_without_the_column_names_its_row(tmp_path):
    path = _write_jsonl(tmp_path / "news.jsonl", [{"content": "甲", "title": "乙"}, {"content": "丙"}])
    with pytest.raises(SourceError, match=r"row 2 has no 'title'"):
        load_file(path, "content", "title")


def test_missing_file_says_which_file_and_what_to_set(tmp_path):
    with pytest.raises(SourceError, match=r"nope\.jsonl: file not found; set raw_dataset's path"):
        load_file(tmp_path / "nope.jsonl", "content", "title")


def test_custom_columns_and_taide_layout_are_mapped_to_content_and_title(tmp_path):
    custom = load_file(_write_jsonl(tmp_path / "a.jsonl", [{"body": "文章", "headline": "標題"}]), "body", "headline")
    assert (custom.rows[0]["content"], custom.rows[0]["title"], custom.rows[0]["source_row"]) == ("文章", "標題", 1)
    taide = load_file(_write_jsonl(tmp_path / "b.jsonl", [{"instruction": "下標題", "input": "文章", "output": "標題"}]),
                      "content", "title")
    assert (taide.rows[0]["content"], taide.rows[0]["title"]) == ("文章", "標題")
    assert "TAIDE" in taide.layout


def test_parquet_file_is_read_and_versioned_by_its_sha256(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "news.parquet"
    pq.write_table(pa.Table.from_pylist([{"content": "文章", "title": "標題"}]), path)
    source = load_file(path, "content", "title")
    assert source.revision.startswith("sha256:") and len(source.rows) == 1
    pq.write_table(pa.Table.from_pylist([{"content": "另一篇", "title": "標題"}]), path)
    assert load_file(path, "content", "title").version != source.version


def _jsonl_bytes(*lines: bytes) -> bytes:
    return b"\n".join(lines) + b"\n"


GOOD = '{"content": "颱風接近東部海面，氣象署發布海上警報。", "title": "颱風接近 花東嚴防強風豪雨"}'.encode()


def _parquet(path, table):
    import pyarrow.parquet as pq

    pq.write_table(table, path)


def _mixed_types_parquet(path):
    import pyarrow as pa

    _parquet(path, pa.table({"content": pa.array([2024, 2025]), "title": pa.array([["颱風"], ["地震"]])}))


def _symlink_out(path):
    outside = path.parent.parent / "elsewhere" / "secret.jsonl"
    outside.parent.mkdir()
    outside.write_bytes(_jsonl_bytes(GOOD))
    path.symlink_to(outside)


#: (name, file name, how to write it, the error expected: file, row and what to do)
HOSTILE_FILES = [
    ("a 50 MB line", "news.jsonl",
     lambda p: p.write_bytes(_jsonl_bytes(GOOD, b'{"content": "' + "颱".encode() * 17_000_000 + b'", "title": "x"}')),
     r"news\.jsonl: line 2 is longer than 4 MB \(raw_dataset's max_row_mb\); split or shorten that article"),
    ("Big5 bytes", "news.jsonl",
     lambda p: p.write_bytes(_jsonl_bytes(GOOD, '{"content": "颱風來了", "title": "颱風"}'.encode("big5"))),
     r"news\.jsonl: line 2 is not UTF-8 \(byte 0x\w\w at byte \d+ of the line\); re-save the file as UTF-8"),
    ("a lone continuation byte", "news.jsonl", lambda p: p.write_bytes(_jsonl_bytes(GOOD, GOOD, b"\x80")),
     r"news\.jsonl: line 3 is not UTF-8 \(byte 0x80 at byte 1 of the line\)"),
    ("a number as content", "news.jsonl", lambda p: p.write_bytes(_jsonl_bytes(GOOD, b'{"content": 2024, "title": "x"}')),
     r"news\.jsonl: row 2 has a number in 'content', not text; make it a string"),
    ("a list as title", "news.jsonl", lambda p: p.write_bytes(_jsonl_bytes(b'{"content": "x", "title": ["a", "b"]}')),
     r"news\.jsonl: row 1 has a list in 'title', not text"),
    ("an object as title", "news.jsonl", lambda p: p.write_bytes(_jsonl_bytes(b'{"content": "x", "title": {"zh": "a"}}')),
     r"news\.jsonl: row 1 has an object in 'title', not text"),
    ("true as content", "news.jsonl", lambda p: p.write_bytes(_jsonl_bytes(b'{"content": true, "title": "x"}')),
     r"news\.jsonl: row 1 has true/false in 'content', not text"),
    ("a column of two kinds", "news.jsonl",
     lambda p: p.write_bytes(_jsonl_bytes(b'{"content": "x", "title": "y", "category": "a"}',
                                          b'{"content": "x", "title": "y", "category": null}',
                                          b'{"content": "x", "title": "y", "category": ["a"]}')),
     r"news\.jsonl: row 3 has a list in 'category', but row 1 has text; a column holds one type"),
    ("nesting a million deep", "news.jsonl",
     lambda p: p.write_bytes(_jsonl_bytes(b'{"content": ' + b"[" * 1_000_000 + b"]" * 1_000_000 + b', "title": "x"}')),
     r"news\.jsonl: line 1 nests JSON arrays or objects too deeply to read; fix or delete that line"),
    ("a JSON array line", "news.jsonl", lambda p: p.write_bytes(_jsonl_bytes(b"[1, 2]")),
     r"news\.jsonl: line 1 is a JSON list, not an object"),
    ("Parquet with mixed column types", "news.parquet", _mixed_types_parquet,
     r"news\.parquet: row 1 has a number in 'content', not text"),
    ("a symlink out of the data folder", "news.jsonl", _symlink_out,
     r"news\.jsonl: a symlink to .*elsewhere/secret\.jsonl, outside .*data; copy the data into"),
]


@pytest.mark.parametrize(("name", "file_name", "write", "expected"), HOSTILE_FILES, ids=[c[0] for c in HOSTILE_FILES])
def test_hostile_files_stop_with_the_file_the_row_and_what_to_do(tmp_path, name, file_name, write, expected):
    import tracemalloc

    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / file_name
    write(path)
    tracemalloc.start()
    try:
        with pytest.raises(SourceError, match=expected):
            load_file(path, "content", "title")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12_000_000, f"{name}: reading held {peak / 1e6:.0f} MB; rows are read one at a time"


def test_a_row_over_the_limit_from_parquet_names_its_row_and_nulls_stay_allowed(tmp_path):
    import pyarrow as pa

    path = tmp_path / "news.parquet"
    _parquet(path, pa.table({"content": ["短文。", None, "長" * 2000], "title": ["標題", None, "標題"]}))
    with pytest.raises(SourceError, match=r"news\.parquet: row 3 has a 'content' longer than 0\.005 MB"):
        load_file(path, "content", "title", max_row_bytes=5000)
    assert [row["content"] for row in load_file(path, "content", "title").rows] == ["短文。", None, "長" * 2000]


def test_a_symlink_within_its_folder_and_a_bom_are_read(tmp_path):
    real = tmp_path / "news-2025.jsonl"
    real.write_bytes(b"\xef\xbb\xbf" + _jsonl_bytes(GOOD))
    (tmp_path / "news.jsonl").symlink_to(real.name)
    assert load_file(tmp_path / "news.jsonl", "content", "title").rows[0]["title"] == "颱風接近 花東嚴防強風豪雨"


WRITE_BOMBS = """
import sys
import pyarrow as pa
import pyarrow.parquet as pq

folder = sys.argv[1]
normal = pa.table({"content": ["颱風接近東部海面，氣象署發布海上警報。"] * 3, "title": ["颱風接近 花東嚴防強風豪雨"] * 3})
bomb = pa.table({"content": ["a" * 200_000_000], "title": ["颱風接近 花東嚴防強風豪雨"]})
with pq.ParquetWriter(f"{folder}/alone.parquet", normal.schema, compression="zstd") as writer:
    writer.write_table(normal)
    writer.write_table(bomb)  # appended: a row group of its own
pq.write_table(pa.concat_tables([normal, bomb]), f"{folder}/among.parquet", compression="zstd")
"""

READ_IN_A_CHILD = """
import resource
import sys
from pathlib import Path

import datasets
import pyarrow.parquet

from titlegen_assets.data import sources

kind, path = sys.argv[1], Path(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    if kind == "file":
        sources.load_file(path, "content", "title")
    else:
        sources.load_hub(str(path), "main", "train", "content", "title")
    print("read")
except sources.SourceError as error:
    print(error)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


@pytest.fixture(scope="module")
def parquet_bombs(tmp_path_factory):
    """zstd Parquet files of a few KB holding one 200 MB value: alone in a row group of its own, and among 3 rows."""
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("bombs")
    subprocess.run([sys.executable, "-c", WRITE_BOMBS, str(folder)], check=True)
    return folder


def _read_in_a_child(kind, path, tmp_path):
    """The error (or "read") and how far the child's peak resident memory rose while reading, in MB."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    child = subprocess.run([sys.executable, "-c", READ_IN_A_CHILD, kind, str(path)], capture_output=True, text=True,
                           env=env, timeout=300)
    assert child.returncode == 0, child.stderr
    message, rise_kib = child.stdout.strip().rsplit("\n", 1)
    return message, int(rise_kib) / 1024


@pytest.mark.parametrize(("layout", "expected"), [
    ("alone", r"alone\.parquet: row 4 has a 'content' longer than 4 MB \(raw_dataset's max_row_mb\): the file's "
              r"footer gives row 4 200 MB of it before compression; shorten that article, remove the row"),
    ("among", r"among\.parquet: one of rows 1-4 \(row group 1\) has a 'content' longer than 4 MB"),
])
def test_a_zstd_parquet_bomb_is_refused_from_the_footer_naming_file_and_row(parquet_bombs, tmp_path, layout, expected):
    import re

    path = parquet_bombs / f"{layout}.parquet"
    assert path.stat().st_size < 1_000_000
    message, rise_mb = _read_in_a_child("file", path, tmp_path)
    assert rise_mb < 40, f"reading rose the peak memory by {rise_mb:.0f} MB for a 200 MB value"
    assert re.search(expected, message), message


def test_a_parquet_bomb_in_a_hub_dataset_is_refused_before_it_is_downloaded_or_read(parquet_bombs, tmp_path):
    """A local copy of a Hub dataset goes through the same datasets builder as the Hub: its Parquet footers first."""
    import re
    import shutil

    copy = tmp_path / "zh-tw-news" / "data"
    copy.mkdir(parents=True)
    shutil.copy(parquet_bombs / "alone.parquet", copy / "train-00000-of-00001.parquet")
    message, rise_mb = _read_in_a_child("hub", copy.parent, tmp_path)
    assert rise_mb < 40, f"reading rose the peak memory by {rise_mb:.0f} MB for a 200 MB value"
    assert re.search(r"zh-tw-news@main train-00000-of-00001\.parquet: row 4 has a 'content' longer than 4 MB",
                     message), message


def test_a_row_group_too_large_to_measure_is_refused_with_how_to_rewrite_it(tmp_path):
    """Many rows within the limit in one row group larger than READ_ROWS rows' limit: one huge value could hide in
    it, and pyarrow cannot measure one without decompressing its page."""
    import pyarrow as pa

    path = tmp_path / "news.parquet"
    _parquet(path, pa.table({"content": [f"{i:04d}" + "長" * 300 for i in range(100)], "title": ["標題"] * 100}))
    with pytest.raises(SourceError, match=r"news\.parquet: rows 1-100 \(row group 1\) hold 0\.\d+ MB of 'content' "
                                          r"before compression, more than raw_dataset decompresses at once \(64 x "
                                          r"max_row_mb\).*row_group_size=1000\)`\) or raise max_row_mb"):
        load_file(path, "content", "title", max_row_bytes=1000)
    assert len(load_file(path, "content", "title").rows) == 100
