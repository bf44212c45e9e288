import json

import dagster as dg
import pytest

from titlegen_assets.defs.data_assets import cleaned_splits, cleaned_splits_checks, raw_dataset

SAMPLE = {"ops": {"raw_dataset": {"config": {"source": "sample"}}}}


def _materialize(resources, run_config=SAMPLE, raise_on_error=True):
    return dg.materialize([raw_dataset, cleaned_splits, cleaned_splits_checks], resources=resources,
                          run_config=run_config, raise_on_error=raise_on_error)


def test_sample_materializes_into_versioned_splits_with_passing_checks(resources, artifact_root):
    result = _materialize(resources)
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 4 and all(c.passed for c in checks)
    meta = result.asset_materializations_for_node("cleaned_splits")[0].metadata
    assert meta["rows_train"].value > 100 and meta["rows_test"].value >= 10
    assert "| exact_duplicate | 0 | 4 |" in meta["cleaning_by_rule"].value
    assert "| content: reporter_line |" in meta["cleaning_by_rule"].value
    assert "data:image/png;base64," in meta["length_histograms"].value
    manifest = result.output_for_node("cleaned_splits")
    assert (artifact_root / "splits" / manifest["version"] / "length_histograms.png").is_file()


def test_rematerializing_unchanged_data_keeps_the_same_version_and_folder(resources, artifact_root):
    first = _materialize(resources).output_for_node("cleaned_splits")
    second = _materialize(resources).output_for_node("cleaned_splits")
    assert first["version"] == second["version"]
    assert len(list((artifact_root / "splits").iterdir())) == 1
    other_seed = {"ops": {**SAMPLE["ops"], "cleaned_splits": {"config": {"seed": 7}}}}
    assert _materialize(resources, other_seed).output_for_node("cleaned_splits")["version"] != first["version"]


def test_a_local_copy_of_a_hub_dataset_is_loaded_with_load_dataset_and_versioned_by_its_content(resources, tmp_path):
    copy = tmp_path / "zh-tw-pts-articles-sm" / "data"
    copy.mkdir(parents=True)
    rows = [{"title": f"這是第{i}則測試用的新聞標題", "content": f"第{i}篇文章的內容，描述一件發生在台灣的事情。",
             "conclusion": None, "category": "生活", "image": "", "timestamp": "", "link": ""} for i in range(40)]
    (copy / "train.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    config = {"ops": {"raw_dataset": {"config": {"source": "hub", "hf_dataset": str(copy.parent)}}}}
    result = _materialize(resources, config)
    meta = result.asset_materializations_for_node("raw_dataset")[0].metadata
    assert (meta["source"].value, meta["row_count"].value) == ("hub", 40)
    assert meta["revision"].value.startswith("sha256:")

    rows[3]["title"] = "這則標題在本地副本裡被人改過了"
    (copy / "train.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    changed = _materialize(resources, config).output_for_node("raw_dataset")
    assert changed["version"] != result.output_for_node("raw_dataset")["version"]


def test_bad_file_fails_with_the_file_and_line_and_leaves_no_folder(resources, artifact_root, tmp_path):
    bad = tmp_path / "news.jsonl"
    bad.write_text('{"content": "甲", "title": "乙"}\nnot json\n', encoding="utf-8")
    config = {"ops": {"raw_dataset": {"config": {"source": "file", "path": str(bad)}}}}
    result = _materialize(resources, config, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error.to_string()
    assert "news.jsonl: line 2 is not valid JSON" in failure
    assert not (artifact_root / "raw").exists()


@pytest.mark.parametrize(("lines", "max_row_mb", "expected"), [
    (['{"content": "甲", "title": "乙", "tags": "颱風"}', '{"content": "丙", "title": "丁", "tags": ["地震"]}'], 4,
     "news.jsonl: row 2 has a list in 'tags', but row 1 has text"),
    (['{"content": "甲", "title": "乙"}', '{"content": "' + "颱" * 400 + '", "title": "丁"}'], 0.001,
     "news.jsonl: line 2 is longer than 0.001 MB (raw_dataset's max_row_mb)"),
])
def test_a_hostile_file_fails_raw_dataset_with_its_row_and_leaves_nothing_half_written(
        resources, artifact_root, tmp_path, lines, max_row_mb, expected):
    bad = tmp_path / "news.jsonl"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = {"ops": {"raw_dataset": {"config": {"source": "file", "path": str(bad), "max_row_mb": max_row_mb}}}}
    result = _materialize(resources, config, raise_on_error=False)
    assert expected in result.get_step_failure_events()[0].event_specific_data.error.to_string()
    assert not (artifact_root / "raw").exists()


def test_a_failure_while_writing_splits_leaves_no_partial_folder(resources, artifact_root, monkeypatch):
    import titlegen_assets.defs.data_assets as data

    def broken_plot(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(data, "histograms_png", broken_plot)
    result = _materialize(resources, raise_on_error=False)
    assert not result.success
    assert list((artifact_root / "splits").iterdir()) == []


def test_file_source_without_a_path_is_rejected_by_config_validation(resources):
    with pytest.raises(Exception, match="source='file' needs path"):
        _materialize(resources, {"ops": {"raw_dataset": {"config": {"source": "file"}}}})


def test_a_file_without_usable_rows_fails_naming_the_file_and_the_drops_and_writes_no_splits(
        resources, artifact_root, tmp_path):
    bad = tmp_path / "scraped.jsonl"
    rows = [{"content": "（中央社台北23日電）", "title": "颱風假今天放不放"},  # nothing left after the dateline
            {"content": "央行今天宣布利率維持不變，市場反應平淡。", "title": "【快訊】升息"},  # too short once the tag goes
            {"content": "央行今天宣布利率維持不變，市場反應平淡。", "title": None}]
    bad.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    config = {"ops": {"raw_dataset": {"config": {"source": "file", "path": str(bad)}}}}
    result = _materialize(resources, config, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0]
    assert failure.step_key == "cleaned_splits"
    message = failure.event_specific_data.error.to_string()
    assert f"no usable rows in {bad}: all 3 rows were dropped" in message
    assert "empty_or_short_content: 1" in message and "title_too_short: 1" in message and "empty_title: 1" in message
    assert not (artifact_root / "splits").exists()
