"""Cleaning rules on text written the way Taiwanese news sites publish it (examples written for these tests)."""

import pytest

from titlegen_assets.data import cleaning
from titlegen_assets.data.cleaning import CleaningRules, clean_rows

STORY = "台北市長蔣萬安今天出席捷運環狀線北段動工典禮，路線全長約14.9公里。市府預計2031年通車。"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        # markup left by the scraper
        ("央行今天宣布利率不變。<br>市場反應平淡。", "央行今天宣布利率不變。市場反應平淡。"),
        ("<p>央行今天宣布利率不變。</p><p>市場反應平淡。</p>", "央行今天宣布利率不變。市場反應平淡。"),
        ("台積電&amp;鴻海今天股價同步上漲&nbsp;兩成。", "台積電&鴻海今天股價同步上漲兩成。"),
        ('請見<a href="https://example.com/n/1">相關報導</a>。', "請見相關報導。"),
        ("內文。<script>var ad = 1;</script>下一段。", "內文。下一段。"),
        # wire-service datelines at the start
        ("（中央社記者王小明台北23日電）" + STORY, STORY),
        ("（中央社台北23日電）" + STORY, STORY),
        ("(中央社記者王小明、李大華台北２３日專電)" + STORY, STORY),
        ("（中央社華盛頓22日綜合外電報導）" + STORY, STORY),
        ("中央社台北23日電 " + STORY, STORY),
        # reporter and editor lines at the start or the end, bracketed or not
        ("〔記者王小明／台北報導〕" + STORY, STORY),
        ("【記者王小明／台北即時報導】" + STORY, STORY),
        ("〔即時新聞／綜合報導〕" + STORY, STORY),
        ("記者王小明／台北報導\n" + STORY, STORY),
        ("記者王小明／台北報導" + STORY, STORY),
        ("記者 王小明 / 攝影 李大華 報導\n" + STORY, STORY),
        ("記者王小明 台中報導\n" + STORY, STORY),
        (STORY + "（編輯：陳正健）1131023", STORY),
        (STORY + "（記者王小明／台北報導）（編輯：陳正健）", STORY),
        (STORY + "\n記者王小明／台北報導", STORY),
        (STORY + "（責任編輯：陳柏宇）", STORY),
        (STORY + "責任編輯：陳柏宇", STORY),
        # source credits in parentheses or brackets, wherever they stand
        (STORY + "（公視新聞）", STORY),
        ("台北市長蔣萬安今天出席典禮(圖/記者王小明攝)，路線全長約14.9公里。", "台北市長蔣萬安今天出席典禮，路線全長約14.9公里。"),
        ("市府預計2031年通車。（圖／台北市捷運局提供）預算由中央補助四成。", "市府預計2031年通車。預算由中央補助四成。"),
        ("颱風接近東部海面（資料照）。", "颱風接近東部海面。"),
        (STORY + "（更新時間：18:30）", STORY),
        ("颱風接近東部海面。（影音來源：公視新聞）氣象署表示，今晚可能發布陸上警報。",
         "颱風接近東部海面。氣象署表示，今晚可能發布陸上警報。"),
        ("颱風接近東部海面。〔中央社／記者王小明〕氣象署表示，今晚發布警報。", "颱風接近東部海面。氣象署表示，今晚發布警報。"),
        # photo and video captions
        ("▲蔣萬安出席記者會。（圖／記者王小明攝）" + STORY, STORY),
        (STORY + "\n▲捷運環狀線北段路線圖\n預算由中央補助四成。", STORY + "預算由中央補助四成。"),
        ("圖說：環狀線北段預定路線。" + STORY, STORY),
        # footers after the story
        (STORY + "\n※延伸閱讀：環狀線南段明年動工", STORY),
        (STORY + "＊珍惜生命，自殺不能解決問題，生命一定可以找到出路。安心專線：1925", STORY),
        (STORY + "延伸閱讀：\n環狀線南段明年動工", STORY),
        # what is not a credit stays
        ("世界衛生組織（WHO）今天表示，疫苗覆蓋率（約七成）仍不足。", "世界衛生組織（WHO）今天表示，疫苗覆蓋率（約七成）仍不足。"),
        ("記者會上市長表示，媒體報導不實。", "記者會上市長表示，媒體報導不實。"),
        ("中央社今天報導，央行將升息半碼。", "中央社今天報導，央行將升息半碼。"),
    ],
)
def test_content_rules_remove_what_newsrooms_add_and_keep_the_story(raw, clean):
    assert cleaning.clean_content(raw) == clean


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("【影】台股站上兩萬四千點", "台股站上兩萬四千點"),
        ("〔即時〕颱風海警發布 東部嚴防豪雨", "颱風海警發布 東部嚴防豪雨"),
        ("《獨家》台積電擬赴德設第二座廠", "台積電擬赴德設第二座廠"),
        ("【快訊】【影】北捷環狀線今天動工", "北捷環狀線今天動工"),
        ("快訊／台股盤中大漲三百點", "台股盤中大漲三百點"),
        ("北捷環狀線北段今天動工【影】", "北捷環狀線北段今天動工"),
        ("台股盤中大漲三百點 | 公視新聞網 PNN", "台股盤中大漲三百點"),
        ("台股盤中大漲三百點 - 自由時報電子報", "台股盤中大漲三百點"),
        ("蛋價又要漲了！！！", "蛋價又要漲了！"),
        ("颱風假放不放？？", "颱風假放不放？"),
        ("真的假的?!?!", "真的假的？！"),
        ("颱風接近東部海面(圖)", "颱風接近東部海面"),
        ("台積電&amp;鴻海股價同步上漲", "台積電&鴻海股價同步上漲"),
        ("《魷魚遊戲2》全球首播 網友熱議", "《魷魚遊戲2》全球首播 網友熱議"),  # a work's name, not a rubric
        ("台北捷運環狀線北段動工   預計2031年通車", "台北捷運環狀線北段動工 預計2031年通車"),
    ],
)
def test_title_rules_remove_rubrics_site_names_and_repeated_marks(raw, clean):
    assert cleaning.clean_title(raw) == clean


def test_sentences_around_a_removed_credit_survive_intact():
    before = "行政院今天通過明年度總預算案，總額達新台幣3兆元，創歷史新高。"
    after = "主計總處表示，社福支出占比最高，其次是國防與教育。"
    raw = f"（中央社記者王小明台北23日電）{before}(圖/記者李大華攝){after}（編輯：陳正健）1131023"
    clean = cleaning.clean_content(raw)
    assert clean == before + after
    assert cleaning.sentences(clean) == cleaning.sentences(before) + cleaning.sentences(after)


def test_width_normalisation_turns_fullwidth_digits_ascii_and_ascii_punctuation_fullwidth():
    assert cleaning.normalize_width("共１２所大學獲准調漲, 平均調幅多少?") == "共12所大學獲准調漲，平均調幅多少？"
    assert cleaning.normalize_width("(資料照)") == "（資料照）"
    assert cleaning.normalize_width("GDP 3.1% (preliminary)") == "GDP 3.1% (preliminary)"


def test_emoji_and_decorative_symbols_are_removed():
    assert cleaning.remove_emoji("流感疫苗開打🔥 逾50萬人接種⚠️★") == "流感疫苗開打 逾50萬人接種"


def test_lead_n_keeps_whole_leading_sentences_within_budget():
    content = "第一句話在這裡。第二句也很短！第三句會超過預算的長度很多很多很多。"
    assert cleaning.lead_n(content, 15) == "第一句話在這裡。第二句也很短！"
    assert cleaning.lead_n(content, 100) == content


def test_lead_n_cuts_a_single_overlong_first_sentence_at_the_budget():
    assert cleaning.lead_n("一" * 50 + "。", 10) == "一" * 10


def test_clean_rows_counts_every_drop_and_every_edit_by_rule():
    rules = CleaningRules(title_min_chars=8, title_max_chars=30, content_min_chars=10)
    body = "這是一篇足夠長的新聞內容，用來測試清理規則是否正確。"
    rows = [
        {"content": "〔記者王小明／台北報導〕" + body, "title": "【影】一個長度剛好合適的新聞標題！！"},
        {"content": body, "title": "另一個長度合適但內容重複的標題"},
        {"content": "另一篇完全不同的新聞，內容談的是颱風。", "title": None},
        {"content": "（中央社台北23日電）", "title": "內容只有電頭而標題很正常喔"},
        {"content": "又一篇不同的新聞內容在這裡出現了。", "title": "太短"},
        {"content": "第四篇不同的新聞內容在這裡出現了。", "title": "這" * 31},
    ]
    report = clean_rows(rows, rules)
    assert [(r["content"], r["title"]) for r in report.kept] == [(body, "一個長度剛好合適的新聞標題！")]
    assert dict(report.dropped) == {
        "exact_duplicate": 1, "empty_title": 1, "empty_or_short_content": 1,
        "title_too_short": 1, "title_too_long": 1, "near_duplicate": 0,
    }
    assert report.edited["content: reporter_line"] == 1 and report.edited["content: wire_dateline"] == 1
    assert report.edited["title: title_tag"] == 1 and report.edited["title: end_punctuation"] == 1
    table = {rule: (edited, dropped) for rule, edited, dropped in report.table()}
    assert table["content: reporter_line"] == (1, 0) and table["exact_duplicate"] == (0, 1)


def test_clean_rows_drops_a_lightly_edited_copy_as_a_near_duplicate():
    base = ("經濟部今天表示，國內晶圓廠採購國產半導體設備的比率已提高到兩成，較五年前成長一倍。"
            "經濟部將持續以研發補助與驗證平台，協助設備業者打入先進製程供應鏈，降低對進口設備的依賴。")
    rows = [{"content": base, "title": "國產半導體設備採購比率提高到兩成"},
            {"content": "颱風今天接近東部海面，氣象署發布海上警報，花東地區要嚴防強風豪雨。", "title": "颱風接近 花東嚴防強風豪雨"},
            {"content": base.replace("表示", "指出"), "title": "經濟部：國產半導體設備採購達兩成"}]
    report = clean_rows(rows, CleaningRules())
    assert [r["title"] for r in report.kept] == ["國產半導體設備採購比率提高到兩成", "颱風接近 花東嚴防強風豪雨"]
    assert report.dropped["near_duplicate"] == 1


def test_sketches_from_worker_processes_equal_those_made_in_process():
    from titlegen_assets.data.dedup import signatures
    from titlegen_assets.data.parallel import map_chunks

    texts = [STORY, STORY.replace("今天", "昨天"), "颱風今天接近東部海面，氣象署發布海上警報。"] * 3
    in_process = signatures(texts)
    in_workers = map_chunks(signatures, texts, workers=2, chunk_size=2, min_items=1)
    assert [s.digest() for s in in_workers] == [s.digest() for s in in_process]
    assert in_process[0].jaccard(in_process[1]) > 0.6 > in_process[0].jaccard(in_process[2])


CLEAN_IN_A_CHILD = """
import sys, time
from titlegen_assets.data.cleaning import clean_content, clean_title, lead_n
text = eval(sys.argv[1])
start = time.perf_counter()
content, title = clean_content(text), clean_title(text)
lead_n(content, 1200)
print(f"{time.perf_counter() - start:.2f}", len(text), repr(content[:40]))
"""

#: Hostile article bodies and titles of about 1 MB or more (expressions the child process evaluates). Each took
#: time quadratic in its length before (an unclosed comment of 8/16/32 KB: 0.38/1.5/5.8 s); now each is cleaned
#: in about a second, and never in more than a minute even on a loaded machine.
HOSTILE_TEXTS = [
    ("an unclosed comment of 1 MB", "'story。<!--' + '甲' * 1_000_000"),
    ("a comment opened 250,000 times", "'<!--' * 250_000"),
    ("a script opened 125,000 times", "'<script>' * 125_000"),
    ("an unclosed tag of 1 MB", "'<a href=\"' + 'x' * 1_000_000"),
    ("a million entities", "'&amp;' * 1_000_000"),
    ("markup nested a million deep", "'<b>' * 1_000_000 + '颱風' + '</b>' * 1_000_000"),
    ("entity-encoded markup 100,000 times", "'&lt;br&gt;' * 100_000"),
    ("a million line breaks", "'颱風。' + '\\n' * 1_000_000 + '甲'"),
    ("a megabyte of blanks and tabs", "'颱風' + ' \\t' * 500_000 + '甲'"),
    ("a million exclamation marks", "'！' * 1_000_000 + '甲'"),
    ("an unclosed parenthesis around Chinese", "'(' + '甲' * 1_000_000"),
    ("a caption mark and a megabyte of blanks", "'▲甲' + ' ' * 1_000_000 + '乙'"),
    ("a reporter credit a hundred thousand times", "'記者王小明／台北報導\\n' * 100_000"),
    ("a byline glued to a sentence a hundred thousand times", "'。文／記者王小明' * 100_000"),
    ("a stack of bracketed credits a hundred thousand long", "'。（編輯：陳正健）' * 100_000 + '1131023'"),
]


@pytest.mark.parametrize(("name", "text"), HOSTILE_TEXTS, ids=[c[0] for c in HOSTILE_TEXTS])
def test_hostile_text_is_cleaned_in_linear_time(name, text):
    import subprocess
    import sys

    try:
        child = subprocess.run([sys.executable, "-c", CLEAN_IN_A_CHILD, text], capture_output=True, text=True,
                               timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name}: cleaning took over a minute (time grows faster than the text)")
    assert child.returncode == 0, child.stderr


@pytest.mark.parametrize(("raw", "clean"), [
    # line-breaking markup in forms the rules were not written from: a credit on its own line goes wherever it stands
    (STORY + "<BR/>記者李大華／高雄報導<br />預算由中央補助四成。", STORY + "預算由中央補助四成。"),
    ("<P class='lead'>記者李大華／高雄報導</P><DIV>" + STORY + "</DIV>", STORY),
    (STORY + "<li>〔記者李大華／高雄報導〕</li>預算由中央補助四成。", STORY + "預算由中央補助四成。"),
    (STORY + "&lt;br /&gt;責任編輯：林小美&lt;br /&gt;預算由中央補助四成。", STORY + "預算由中央補助四成。"),
    ("<h2>記者 李大華 / 攝影 陳小英 報導</h2>" + STORY, STORY),
    # a closing credit in any script and bracket
    (STORY + "(Kyodo)", STORY), (STORY + "（ANSA）", STORY), (STORY + " [DPA]", STORY), (STORY + "【Yonhap】", STORY),
    (STORY + "〔AFP／巴黎〕", STORY), (STORY + "(中央社CNA)", STORY), (STORY + "（Reuters）1131023", STORY),
    (STORY + "(AP)<br>預算由中央補助四成。", STORY + "預算由中央補助四成。"),
    # a gloss stays: it follows its term, not the end of a sentence
    ("歐洲核子研究組織（CERN）今天宣布新發現。", "歐洲核子研究組織（CERN）今天宣布新發現。"),
    ("日本放送協會(NHK)報導，地震規模7.1。", "日本放送協會(NHK)報導，地震規模7.1。"),
])
def test_line_breaking_markup_and_credits_in_any_script_are_cleaned_in_forms_not_seen_before(raw, clean):
    assert cleaning.clean_content(raw) == clean


def test_a_break_in_a_title_separates_its_clauses():
    assert cleaning.clean_title("颱風海警發布<br/>東部嚴防豪雨") == "颱風海警發布 東部嚴防豪雨"


#: Newsroom credits in the forms zh-TW sites print them (written for this test).
CREDITS = ["記者王小明／台北報導", "記者王小明/台北報導", "（記者王小明／綜合報導）", "【記者王小明／高雄報導】",
           "〔記者王小明、李大華／台北報導〕", "實習記者王小明／台中報導", "中央社記者王小明台北2日電",
           "（中央社記者王小明台北2日電）", "文／記者王小明", "撰文／王小明", "圖文／記者王小明", "記者王小明攝",
           "責任編輯：陳柏宇", "（編輯：陳正健）1131023", "即時新聞／綜合報導"]
#: Where a credit stands: alone on a line, closing the article, glued to its last sentence (with or without a space),
#: glued to the end of a paragraph that a footer follows, and opening the article on a line of its own.
PLACES = {
    "own line at the end": (STORY + "\n{credit}", STORY),
    "own line at the start": ("{credit}\n" + STORY, STORY),
    "own line in the middle": (STORY + "\n{credit}\n預算由中央補助四成。", STORY + "預算由中央補助四成。"),
    "glued to the last sentence": (STORY + "{credit}", STORY),
    "glued to the last sentence after a space": (STORY + " {credit}", STORY),
    "glued to a paragraph a footer follows": (STORY + "{credit}\n※延伸閱讀：環狀線南段明年動工", STORY),
}


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("credit", CREDITS)
def test_a_newsroom_credit_is_removed_wherever_it_stands(credit, place):
    raw, clean = PLACES[place]
    assert cleaning.clean_content(raw.format(credit=credit)) == clean


@pytest.mark.parametrize("credit", ["記者王小明／台北報導", "（記者王小明／綜合報導）", "【記者王小明／高雄報導】",
                                    "中央社記者王小明台北2日電", "〔即時新聞／綜合報導〕"])
def test_a_credit_that_ends_in_its_own_word_is_removed_from_the_start_of_any_line(credit):
    """報導, 電 and a closing bracket end the credit, so the story glued after it is told apart."""
    raw = STORY + "\n" + credit + "預算由中央補助四成。"
    assert cleaning.clean_content(raw) == STORY + "預算由中央補助四成。"


@pytest.mark.parametrize("sentence", [
    "他向記者表示，颱風將帶來豪雨。", "記者會上市長表示，媒體報導不實。", "記者協會指出，新聞自由正受威脅。",
    "市長今天召開記者會。", "市長對記者說，預算將增加。", "記者王小明今天採訪市長，市長表示支持。",
    "中央社今天報導，央行將升息半碼。", "本文作者為台大教授。", "總編輯表示，改版將在下月上線。",
])
@pytest.mark.parametrize("where", ["alone", "after the story", "before the story", "on its own line"])
def test_a_sentence_that_mentions_a_reporter_is_kept(sentence, where):
    raw = {"alone": sentence, "after the story": STORY + sentence, "before the story": sentence + STORY,
           "on its own line": STORY + "\n" + sentence}[where]
    assert cleaning.clean_content(raw) == raw.replace("\n", "")


def test_a_credit_glued_to_the_story_after_it_never_takes_the_story_with_it():
    """An editor credit opening the text, with the story glued after its name, cannot be told from the story: it is
    kept, and so is every sentence after it (the end-of-text rule once read it as a credit running to the end)."""
    raw = "責任編輯：陳柏宇" + STORY
    assert cleaning.clean_content(raw) == raw
