"""Each blocking data check on cleaned_splits stops lora_adapter, through the production definitions.

Good articles are materialized once; the splits folder is then replaced by one that breaks a single check, and a
second run of the same versions (so cleaned_splits reuses the folder it finds) must fail that check and never
start lora_adapter. The control run shows lora_adapter does start when the checks pass.
"""

import json
import shutil

import pytest

from titlegen_assets_tests.support import materialize

THROUGH_TRAINING = ["raw_dataset", "cleaned_splits", "lora_adapter"]
CHECKS = ("splits_not_empty", "no_empty_content_or_title", "titles_within_bounds", "no_leakage_between_splits")


@pytest.fixture
def news_file(tmp_path):
    path = tmp_path / "news.jsonl"
    topics = ["颱風", "地震", "選舉", "股市", "疫苗", "捷運", "棒球", "物價", "房市", "觀光"]
    rows = [{"title": f"第{i}則{topic}新聞 記者會說明最新進度",
             "content": f"第{i}篇關於{topic}的報導。相關單位今天說明第{i}項措施的細節，預計下個月上路，民眾可上網查詢。"}
            for i, topic in enumerate(topics * 3)]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return path


def _run(artifact_root, news_file, selection):
    config = {"ops": {"raw_dataset": {"config": {"source": "file", "path": str(news_file)}},
                      # if lora_adapter ever starts, it fails at once: this base model does not exist
                      "lora_adapter": {"config": {"base_model": str(artifact_root / "no-such-model"), "backend": "trl"}}}}
    return materialize(selection, config)


def _rewrite_splits(path: str, change) -> None:
    """Replace the saved splits at ``path`` by ``change``d ones; the folder's other files stay."""
    import datasets

    loaded = datasets.load_from_disk(path)
    features = loaded["train"].features
    splits = {name: loaded[name].to_list() for name in ("train", "validation", "test")}
    change(splits)
    staging = f"{path}-changed"
    datasets.DatasetDict({name: datasets.Dataset.from_dict({k: [r[k] for r in rows] for k in features}, features=features)
                          for name, rows in splits.items()}).save_to_disk(staging, num_shards=dict.fromkeys(splits, 1))
    for name in splits:
        shutil.rmtree(f"{path}/{name}")
        shutil.move(f"{staging}/{name}", f"{path}/{name}")
    shutil.rmtree(staging)


def _started(result, step: str) -> bool:
    return any(event.step_key == step and event.event_type_value == "STEP_START" for event in result.all_events)


def _empty_held_out(splits):
    splits["test"], splits["validation"] = [], []


def _blank_content(splits):
    splits["train"][0]["content"] = "  "


def _long_title(splits):
    splits["train"][0]["title"] = "這是一個遠遠超過三十個字元上限的新聞標題，用來確認長度檢查會擋下訓練資料"


def _leak(splits):
    splits["train"].append(dict(splits["test"][0]))


@pytest.mark.parametrize(
    ("change", "failing_check", "reason"),
    [
        (_empty_held_out, "splits_not_empty", "empty split(s): validation, test"),
        (_blank_content, "no_empty_content_or_title", "1 row(s) with an empty content or title: train row"),
        (_long_title, "titles_within_bounds", "1 title(s) outside 8-30 characters: train row"),
        (_leak, "no_leakage_between_splits", "2 text(s) in two splits: content in train and test, title in train and test"),
    ],
)
def test_each_failing_data_check_says_why_and_lora_adapter_never_starts(artifact_root, news_file, change,
                                                                          failing_check, reason):
    first = _run(artifact_root, news_file, ["raw_dataset", "cleaned_splits"])
    assert first.success and all(e.passed for e in first.get_asset_check_evaluations())
    _rewrite_splits(first.output_for_node("cleaned_splits")["path"], change)

    second = _run(artifact_root, news_file, THROUGH_TRAINING)
    verdicts = {e.check_name: e for e in second.get_asset_check_evaluations()}
    assert not verdicts[failing_check].passed
    assert reason in verdicts[failing_check].description
    assert all(verdicts[name].passed for name in CHECKS if name != failing_check)
    assert not _started(second, "lora_adapter")


def test_unloadable_splits_fail_every_check_with_the_reason_instead_of_crashing(artifact_root, news_file):
    first = _run(artifact_root, news_file, ["raw_dataset", "cleaned_splits"])
    path = first.output_for_node("cleaned_splits")["path"]
    shutil.rmtree(f"{path}/test")  # e.g. a copy interrupted by hand

    second = _run(artifact_root, news_file, THROUGH_TRAINING)
    verdicts = second.get_asset_check_evaluations()
    assert {e.check_name for e in verdicts} == set(CHECKS)
    assert all(not e.passed and f"cannot load the splits at {path}" in e.description for e in verdicts)
    assert not _started(second, "lora_adapter")


def test_with_passing_checks_lora_adapter_does_start(artifact_root, news_file):
    """The control: the probe above would see lora_adapter start (and fail on its missing base model)."""
    result = _run(artifact_root, news_file, THROUGH_TRAINING)
    assert all(e.passed for e in result.get_asset_check_evaluations())
    assert _started(result, "lora_adapter") and not result.success
