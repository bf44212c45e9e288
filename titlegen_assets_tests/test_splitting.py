import random

from titlegen_assets.data.splitting import leaked_rows, split_rows


def _rows(n):
    return [{"content": f"文章內容第{i}篇", "title": f"標題第{i}則新聞"} for i in range(n)]


def test_split_is_deterministic_and_independent_of_row_order():
    rows = _rows(100)
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    assert split_rows(rows, 42, 0.1, 0.1) == split_rows(shuffled, 42, 0.1, 0.1)


def test_every_row_lands_in_exactly_one_split_with_the_requested_sizes():
    splits = split_rows(_rows(100), 7, 0.1, 0.2)
    assert {k: len(v) for k, v in splits.items()} == {"test": 20, "validation": 10, "train": 70}
    contents = [r["content"] for part in splits.values() for r in part]
    assert sorted(contents) == sorted(r["content"] for r in _rows(100))
    assert leaked_rows(splits) == []


def test_another_seed_gives_another_split():
    assert split_rows(_rows(50), 1, 0.1, 0.1)["test"] != split_rows(_rows(50), 2, 0.1, 0.1)["test"]


def test_leakage_is_reported_for_a_title_shared_between_splits():
    splits = {"train": [{"content": "a", "title": "同一個標題"}], "validation": [],
              "test": [{"content": "b", "title": "同一個標題"}]}
    assert leaked_rows(splits) == [("title", "train", "test")]
