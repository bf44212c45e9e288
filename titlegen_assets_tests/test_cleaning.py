from titlegen_assets import cleaning
from titlegen_assets.cleaning import CleaningRules, clean_rows


def test_width_normalisation_turns_fullwidth_digits_ascii_and_ascii_punctuation_fullwidth():
    assert cleaning.normalize_width("共１２所大學獲准調漲, 平均調幅多少?") == "共12所大學獲准調漲，平均調幅多少？"
    assert cleaning.normalize_width("(資料照)") == "（資料照）"
    assert cleaning.normalize_width("GDP 3.1% (preliminary)") == "GDP 3.1% (preliminary)"


def test_emoji_and_decorative_symbols_are_removed():
    assert cleaning.remove_emoji("流感疫苗開打🔥 逾50萬人接種⚠️★") == "流感疫苗開打 逾50萬人接種"


def test_title_rubric_tags_are_stripped():
    assert cleaning.clean_title("【快訊】台股站上兩萬四千點") == "台股站上兩萬四千點"


def test_reporter_line_and_trailing_source_credits_are_stripped():
    text = "記者林雅婷／台北報導\n央行今天宣布利率不變。（公視新聞）(責任編輯：陳柏宇)"
    assert cleaning.clean_content(text) == "央行今天宣布利率不變。"
    assert cleaning.clean_content("颱風接近。【記者許文華／綜合報導】") == "颱風接近。"


def test_picture_asides_are_removed_but_other_parentheses_stay():
    assert cleaning.clean_content("新廠落成（圖／公視新聞網），世界衛生組織（WHO）表示肯定。") == "新廠落成，世界衛生組織（WHO）表示肯定。"


def test_whitespace_is_dropped_in_prose_and_single_spaces_kept_in_titles():
    assert cleaning.clean_content("  第一句。 \n第二句  有空白。 ") == "第一句。第二句有空白。"
    assert cleaning.clean_title("台北捷運環狀線北段動工   預計2031年通車") == "台北捷運環狀線北段動工 預計2031年通車"


def test_lead_n_keeps_whole_leading_sentences_within_budget():
    content = "第一句話在這裡。第二句也很短！第三句會超過預算的長度很多很多很多。"
    assert cleaning.lead_n(content, 15) == "第一句話在這裡。第二句也很短！"
    assert cleaning.lead_n(content, 100) == content


def test_lead_n_cuts_a_single_overlong_first_sentence_at_the_budget():
    assert cleaning.lead_n("一" * 50 + "。", 10) == "一" * 10


def test_near_duplicates_map_a_lightly_edited_copy_to_the_first_occurrence():
    base = ("經濟部今天表示，國內晶圓廠採購國產半導體設備的比率已提高到兩成，較五年前成長一倍。"
            "經濟部將持續以研發補助與驗證平台，協助設備業者打入先進製程供應鏈，降低對進口設備的依賴。")
    texts = [base, "完全不同的一篇文章，談的是颱風與豪雨造成的災情以及後續的復原工作。", base.replace("表示", "指出")]
    assert cleaning.near_duplicates(texts, threshold=0.8) == {2: 0}


def test_clean_rows_counts_every_drop_by_rule():
    rules = CleaningRules(title_min_chars=8, title_max_chars=30, content_min_chars=10)
    body = "這是一篇足夠長的新聞內容，用來測試清理規則是否正確。"
    rows = [
        {"content": body, "title": "一個長度剛好合適的新聞標題"},
        {"content": body, "title": "另一個長度合適但內容重複的標題"},
        {"content": "另一篇完全不同的新聞，內容談的是颱風。", "title": None},
        {"content": "", "title": "內容是空的但標題很正常喔"},
        {"content": "又一篇不同的新聞內容在這裡出現了。", "title": "太短"},
        {"content": "第四篇不同的新聞內容在這裡出現了。", "title": "這" * 31},
    ]
    report = clean_rows(rows, rules)
    assert [r["title"] for r in report.kept] == ["一個長度剛好合適的新聞標題"]
    assert dict(report.dropped) == {
        "exact_duplicate": 1, "empty_title": 1, "empty_or_short_content": 1,
        "title_too_short": 1, "title_too_long": 1, "near_duplicate": 0,
    }
