"""Headline metrics pinned to hand-computed values, and the title-only rule on real-looking outputs."""

import pytest

from titlegen_assets.evaluation import metrics


def test_char_tokens_split_cjk_per_character_and_keep_latin_and_digit_runs_whole():
    assert metrics.char_tokens("AI伺服器出貨 2031年，GPU!") == ["ai", "伺", "服", "器", "出", "貨", "2031", "年", "gpu"]


def test_identical_strings_score_one_and_disjoint_strings_score_zero():
    same = metrics.score(["台北捷運通車"], ["台北捷運通車"], 1, 30)
    assert same["rouge1"] == same["rouge2"] == same["rougeL"] == pytest.approx(1.0)
    assert same["bleu1"] == pytest.approx(1.0)
    disjoint = metrics.score(["颱風豪雨"], ["台北捷運"], 1, 30)
    assert disjoint["rouge1"] == disjoint["rouge2"] == disjoint["rougeL"] == disjoint["bleu1"] == 0.0


def test_rouge_on_a_worked_example():
    """Reference 台北捷運通車, prediction 台北捷運動工 (6 characters each).

    ROUGE-1: 4 shared characters (台北捷運): P = R = 4/6, F1 = 0.6667.
    ROUGE-2: bigrams 台北 北捷 捷運 運通 通車 vs 台北 北捷 捷運 運動 動工: 3 shared of 5 each, F1 = 0.6.
    ROUGE-L: longest common subsequence 台北捷運 = 4: P = R = 4/6, F1 = 0.6667.
    """
    scores = metrics.rouge(["台北捷運動工"], ["台北捷運通車"])
    assert scores == pytest.approx({"rouge1": 4 / 6, "rouge2": 0.6, "rougeL": 4 / 6})


def test_rouge_l_counts_the_longest_common_subsequence_not_a_substring():
    """Reference 甲乙丙丁戊 (5), prediction 甲丙戊 (3): LCS 甲丙戊 = 3, P = 3/3, R = 3/5, F1 = 2·1·0.6/1.6 = 0.75."""
    assert metrics.rouge(["甲丙戊"], ["甲乙丙丁戊"])["rougeL"] == pytest.approx(0.75)


def test_bleu_1_on_a_worked_example_with_the_brevity_penalty():
    """Reference 台北捷運通車 (6), prediction 台北 (2): unigram precision 2/2 = 1;
    brevity penalty exp(1 - 6/2) = exp(-2) = 0.1353; BLEU-1 = 0.1353."""
    assert metrics.bleu_1(["台北"], ["台北捷運通車"]) == pytest.approx(0.135335, abs=1e-6)


def test_bleu_1_clips_repeated_characters():
    """Reference 台北 (2), prediction 台台 (2): 台 appears once in the reference, so clipped precision 1/2; BP 1."""
    assert metrics.bleu_1(["台台"], ["台北"]) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("prediction", "title_only"),
    [
        ("台北捷運環狀線北段動工 預計2031年通車", True),
        ("中華隊逆轉南韓晉級冠軍戰！", True),
        ("標題：台北捷運環狀線北段動工", False),
        ("Title: Taipei MRT circular line breaks ground", False),
        ("以下是這篇新聞的標題：台股站上兩萬四千點", False),
        ("好的，台股站上兩萬四千點", False),
        ("「台股站上兩萬四千點」", False),
        ('"台股站上兩萬四千點"', False),
        ("**台股站上兩萬四千點**", False),
        ("# 台股站上兩萬四千點", False),
        ("台股站上兩萬四千點\n這個標題點出了重點", False),
        ("台股站上兩萬四千點。這個標題概括了新聞重點", False),
        ("台股站上兩萬四千點，因為半導體權值股領漲", False),
        ("", False),
    ],
)
def test_title_only(prediction, title_only):
    assert metrics.is_title_only(prediction) is title_only


@pytest.mark.parametrize(("text", "ok"), [("八個字的新聞標題", True), ("太短了", False), ("長" * 31, False), ("長" * 30, True)])
def test_length_compliance_uses_the_8_to_30_character_bounds(text, ok):
    assert metrics.within_length(text, 8, 30) is ok


def test_lead_1_is_the_first_sentence_cut_to_the_bound():
    content = "中央銀行今天召開第二季理監事會，決議政策利率維持不變。央行指出通膨回落。"
    assert metrics.lead_1(content, 30) == "中央銀行今天召開第二季理監事會，決議政策利率維持不變"
    assert metrics.lead_1(content, 10) == "中央銀行今天召開第二"
