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


#: Real headlines that use the words an explanation also uses (這是, 因為, 說明, 解釋, 當然, 標題), quoted words, !/?.
HEADLINES = [
    "台北捷運環狀線北段動工 預計2031年通車",
    "中華隊逆轉南韓晉級冠軍戰！",
    "台股站上兩萬四千點，因為半導體權值股領漲",
    "這是台灣首座綠能資料中心 使用百分百再生能源",
    "衛福部說明疫苗副作用 籲民眾安心接種",
    "央行總裁解釋升息原因 通膨壓力仍在",
    "當然要投票 青年返鄉投票人數創新高",
    "「躺平」成年度代表字 年輕世代的無聲抗議",
    "「台灣價值」與「民主自由」 總統國慶談話重點",
    "新聞標題黨氾濫 媒體識讀教育受重視",
    "日本文化祭登場 原文書展同步開幕",
    "公司註冊數創新高 新創投資回溫",
    "OK繃之父逝世 享壽九十歲",
    "颱風來襲怎麼辦？ 氣象署教你防颱三步驟",
    "台積電宣布擴廠。",
]

#: What a chat model says instead of (or around) a title: every one must be flagged.
NOT_TITLES = [
    "",
    "   ",
    "標題：台北捷運環狀線北段動工",
    "新聞標題：台北捷運環狀線北段動工",
    "建議標題: 台北捷運環狀線北段動工",
    "Title: Taipei MRT circular line breaks ground",
    "Headline: Taiwan stocks hit a record",
    "以下是這篇新聞的標題：台股站上兩萬四千點",
    "以下是我建議的標題 台股站上兩萬四千點",
    "我為這則新聞下的標題是：台股站上兩萬四千點",
    "這是一個適合的標題：台股站上兩萬四千點",
    "好的，台股站上兩萬四千點",
    "好的！台股站上兩萬四千點",
    "當然，台股站上兩萬四千點",
    "沒問題，台股站上兩萬四千點",
    "Sure, here is a headline: 台股站上兩萬四千點",
    "Here's the headline: 台股站上兩萬四千點",
    "「台股站上兩萬四千點」",
    "『台股站上兩萬四千點』",
    '"台股站上兩萬四千點"',
    "“台股站上兩萬四千點”",
    "《台股站上兩萬四千點》",
    "**台股站上兩萬四千點**",
    "# 台股站上兩萬四千點",
    "## 台股站上兩萬四千點",
    "- 台股站上兩萬四千點",
    "1. 台股站上兩萬四千點",
    "`台股站上兩萬四千點`",
    "台股站上__兩萬四千點__",
    "台股站上兩萬四千點\n這個標題點出了重點",
    "台股站上兩萬四千點\n\n半導體權值股領漲",
    "1. 台股站上兩萬四千點\n2. 半導體權值股領漲 台股創高",
    "台股站上兩萬四千點。這個標題概括了新聞重點",
    "台股站上兩萬四千點。半導體權值股領漲，外資買超",
    "台股站上兩萬四千點（說明：標題點出指數創新高）",
    "台股站上兩萬四千點 (Note: the index hit a record)",
    "台股站上兩萬四千點（註：以收盤價計）",
    "台股站上兩萬四千點，說明：點出指數創新高",
    "台股站上兩萬四千點 — 這個標題強調了指數的里程碑",
    "台股站上兩萬四千點，此標題突出指數創新高",
    "台股站上兩萬四千點，這篇新聞主要在講台股創高",
    "台股站上兩萬四千點 This headline captures the record",
]


@pytest.mark.parametrize("title", HEADLINES)
def test_headlines_that_use_explanation_words_count_as_titles(title):
    assert metrics.is_title_only(title)


@pytest.mark.parametrize("output", NOT_TITLES)
def test_prefixes_quotes_markdown_lines_and_explanations_are_flagged(output):
    assert not metrics.is_title_only(output)


def test_every_reference_title_of_the_bundled_sample_counts_as_a_title():
    """The sample's titles as the gate sees them (cleaned, every split): a metric that fails a reference fails a
    model that copies it."""
    from titlegen_assets.data.cleaning import CleaningRules, clean_rows
    from titlegen_assets.data.sources import load_file, sample_path

    titles = [row["title"] for row in clean_rows(load_file(sample_path(), "content", "title").rows, CleaningRules()).kept]
    assert len(titles) > 100
    assert [t for t in titles if not metrics.is_title_only(t)] == []


@pytest.mark.parametrize(("text", "ok"), [("八個字的新聞標題", True), ("太短了", False), ("長" * 31, False), ("長" * 30, True)])
def test_length_compliance_uses_the_8_to_30_character_bounds(text, ok):
    assert metrics.within_length(text, 8, 30) is ok


def test_lead_1_is_the_first_sentence_cut_to_the_bound():
    content = "中央銀行今天召開第二季理監事會，決議政策利率維持不變。央行指出通膨回落。"
    assert metrics.lead_1(content, 30) == "中央銀行今天召開第二季理監事會，決議政策利率維持不變"
    assert metrics.lead_1(content, 10) == "中央銀行今天召開第二"
