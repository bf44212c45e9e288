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
