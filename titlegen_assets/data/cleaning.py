r"""Cleaning rules for scraped zh-TW news: small pure functions, applied in order by ``clean_rows``.

Each rule is named; ``clean_rows`` counts the rows each rule edited and the rows each drop rule removed, so the
asset can say what happened to every row. Lengths are counted in characters (``len``), the natural unit for
Chinese titles. Rules only remove what newsrooms add around a story (markup, credits, datelines, captions,
footers, rubric tags): the sentences of the story itself are kept as they are.

Every rule runs in time linear in the text, whatever the text (scraped pages are hostile input): a pattern that can
start at many places never scans an unbounded run from each of them. Runs of white space are taken possessively
(``\s*+``) and only from their first character (``(?<!\s)``), free text is bounded (``{0,200}``), and markup
that is never closed runs to the end of the text, as an HTML parser reads it, so one scan consumes it.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

#: Han characters (CJK Extension A, Unified Ideographs, Compatibility Ideographs), as a regex character range.
CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"

_FULLWIDTH_ALNUM = str.maketrans(
    {chr(c): chr(c - 0xFEE0) for c in range(0xFF10, 0xFF5F) if chr(c - 0xFEE0).isalnum()} | {"\u3000": " "}
)
_FULLWIDTH = re.compile("[\uff10-\uff5e\u3000]+")
_ASCII_PUNCT = re.compile("[,!?:;]")
_ASCII_PUNCT_AFTER_CJK = re.compile(rf"(?<=[{CJK}])\s*([,!?:;]+)\s*")
_ASCII_PARENS_AROUND_CJK = re.compile(rf"\((?=[^()]*[{CJK}])([^()]*+)\)")
_HALF_TO_FULL_PUNCT = str.maketrans({",": "，", "!": "！", "?": "？", ":": "：", ";": "；"})

_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, supplemental symbols
    "\u2600-\u27bf"  # miscellaneous symbols and dingbats (☀ ✨ ❤ ...)
    "\u2b00-\u2bff"  # arrows and stars (⭐ ⬆ ...)
    "\ufe0f\u200d"  # variation selector, zero-width joiner
    "]+"
)
_DECORATIVE = re.compile("[★☆◆◇■□●○▲△▼▽◎※♦♥♪►▶◀→←↑↓➤✓✔✗✘…]+")

# --- markup ---------------------------------------------------------------------------------------------------
#: Tags that end a line or a block where a browser shows them (opening or closing): each becomes a line break.
_BLOCK_TAG = re.compile(
    r"<\s*/?\s*(?:br|p|div|li|ul|ol|h[1-6]|hr|tr|table|blockquote|section|article|header|footer|aside|nav|main|"
    r"figure|figcaption|pre|dl|dt|dd|address)\b[^<>]{0,500}>", re.IGNORECASE)
#: A script or style element, or a comment; one never closed runs to the end of the text, as HTML parsers read it.
_SCRIPT = re.compile(r"<(script|style)\b[^<>]{0,500}>.*?(?:</\1\s*+>|\Z)|<!--.*?(?:-->|\Z)", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*+\b[^<>]{0,500}>")

# --- credits --------------------------------------------------------------------------------------------------
_OPEN, _CLOSE = r"[（(【〔［\[]", r"[）)】〕］\]]"
_INNER = r"[^（）()【】〔〕［］\[\]\n]"  # text inside one pair of brackets
_NAME = r"[\u4e00-\u9fff]{2,4}"
_NAMES = rf"{_NAME}(?:\s*[、,，]\s*{_NAME})*"
# 記者王小明／台北報導, 記者王小明 台中報導, 記者王小明、李大華/綜合報導, 即時新聞／綜合報導, 國際中心／綜合報導, 記者 王小明 / 攝影 李大華 報導
_REPORTER = (rf"(?:(?:實習|特約)?記者|編譯|特派員)\s*{_NAMES}(?:\s*[／/]|[ \t]+){_INNER}{{0,14}}?報導"
             rf"|(?:即時新聞|綜合|[\u4e00-\u9fff]{{0,4}}中心)\s*[／/]{_INNER}{{0,8}}?報導")
# 責任編輯：陳柏宇, 編輯：陳正健, 核稿：…, 譯者：…
_EDITOR = rf"(?:責任編輯|文字編輯|編輯|核稿|校對|譯者|主編|審校)\s*[：:／/]{_INNER}{{1,20}}?"
_SOURCES = ("中央社|公視新聞網?|公視|自由時報|自由時報電子報|聯合報|聯合新聞網|經濟日報|ETtoday新聞雲|ETtoday|"
            "三立新聞網?|TVBS新聞網?|TVBS|中時新聞網|中國時報|NOWnews今日新聞|NOWnews|鏡週刊|風傳媒|華視新聞|"
            "民視新聞網?|台視新聞|東森新聞|新頭殼|上報|路透社?|法新社|美聯社|彭博社?|本報訊|綜合報導|綜合外電")
_PICTURE = ("圖片來源|影音來源|影片來源|資料來源|新聞來源|圖文|圖說|圖片|照片|攝影|影音|影片|圖|照|影|來源|翻攝|"
            "截圖|資料照|示意圖")
_CREDIT_INNER = (
    rf"(?:{_REPORTER}|{_EDITOR}"
    rf"|(?:{_PICTURE})\s*[／/：:]{_INNER}{{0,40}}"  # 圖／記者王小明攝, 影音來源：公視新聞
    rf"|{_INNER}{{0,30}}?(?:攝|提供|翻攝{_INNER}{{0,15}}|資料照|示意圖|截圖)"  # 記者王小明攝, 中央氣象署提供, 資料照
    rf"|(?:{_SOURCES})(?:\s*[／/]{_INNER}{{0,20}})?"  # （公視新聞）, （中央社／記者…）
    rf"|(?:更新時間|最後更新|更新|發稿時間)\s*[：:]{_INNER}{{0,20}}"  # （更新時間：18:30）
    rf"|多?圖|有片|影音?|組圖|圖輯)"  # a bare (圖) or (影)
)
_CNA_CODE = r"(?:\s*\d{7})?"  # CNA closes with a date code after the editor credit: （編輯：陳正健）1131023
_BRACKETED_CREDIT = rf"{_OPEN}\s*{_CREDIT_INNER}\s*{_CLOSE}"
_AGENCIES = "中央社|路透社?|法新社|美聯社|共同社|韓聯社|彭博社?|德新社"
_WIRE = rf"(?:{_AGENCIES})(?:記者{_NAMES})?[{CJK}]{{0,10}}?\d{{1,2}}日(?:專|綜合外)?電"  # 中央社記者王小明台北2日電
_WIRE_DATELINE = re.compile(
    rf"^\s*(?:{_OPEN}\s*(?:{_AGENCIES}){_INNER}{{0,40}}?(?:電|報導)\s*{_CLOSE}"  # （中央社記者王小明台北23日電）
    rf"|{_WIRE})\s*"  # 中央社台北23日電
)
_LINE = r"[^\S\n]*+"  # white space within one line
# 文／記者王小明, 撰文／王小明, 圖文／記者王小明, 記者王小明攝: the name ends the credit, so only a line end can close it
_BYLINE = (rf"(?:撰文|圖文|文字|採訪|整理|文)\s*[／/]\s*(?:(?:實習|特約)?記者)?\s*{_NAMES}"
           rf"|(?:實習|特約)?記者\s*{_NAMES}\s*攝")
#: Every unbracketed credit a newsroom closes a line with; reporter and wire credits also end in a word of their own
#: (報導, 電), so they are told from story text glued after them at the start of a line.
_CLOSING = rf"{_REPORTER}|{_WIRE}|{_EDITOR}|{_BYLINE}"
_ONE_CREDIT = rf"(?:{_OPEN}{_LINE}(?:{_CLOSING}){_LINE}{_CLOSE}|{_CLOSING})"
#: A credit opening a line (the text's first included): bracketed, or one that ends in 報導/電.
_OPENING_CREDIT = re.compile(rf"^{_LINE}(?:{_OPEN}{_LINE}(?:{_CLOSING}){_LINE}{_CLOSE}|{_REPORTER}|{_WIRE}){_LINE}",
                             re.MULTILINE)
#: Up to four credits closing a line: alone on it, or glued to its last sentence with no line break
#: (…之冠。記者王小明／台北報導, …。（記者王小明／台北報導）（編輯：陳正健）1131023); <br> and <p> have become line ends.
_CLOSING_CREDITS = re.compile(rf"(?:(?<=[。！？」』])|^){_LINE}(?:{_ONE_CREDIT}{_LINE}){{1,4}}{_CNA_CODE}{_LINE}$",
                              re.MULTILINE)
#: A short bracketed aside closing a line or the text after its last sentence, in any script: （中央社）, (PTS),
#: （Reuters／台北）, 【CNA】. Nothing of the story stands there; a term's gloss such as （WHO） follows its term.
_TRAILING_CREDIT = re.compile(
    rf"(?:(?<=[。！？」』\n])|^){_LINE}{_OPEN}{_LINE}[^（）()【】〔〕［］\[\]\n。！？，,]{{1,30}}?{_LINE}{_CLOSE}{_CNA_CODE}{_LINE}$",
    re.MULTILINE,
)
_CREDIT_ANYWHERE = re.compile(rf"{_BRACKETED_CREDIT}(?:{_CNA_CODE}(?=\s*+$))?")

# --- captions and footers -------------------------------------------------------------------------------------
_CAPTION = re.compile(
    rf"[▲△▼►]\s*+[^▲△▼►\n（）。！？]{{0,200}}[。！？]?\s*+{_BRACKETED_CREDIT}"  # ▲蔣萬安出席記者會。（圖／記者王小明攝）
    r"|[▲△▼►][^▲△▼►\n。！？]*+[。！？]?"  # a caption line without a credit: up to its line or sentence end
    rf"|(?:(?<=[。！？」\n])|^){_LINE}圖說[：:][^\n。！？]*+[。！？]?"
)
_CAPTION_MARK = re.compile(r"[▲△▼►]|圖說")  # a cheap test first: the caption pattern is slow to scan
_FOOTER = re.compile(
    rf"(?:(?<=[。！？」』\n])|^){_LINE}(?:[※＊*★☆►➤▸■]++\s*+(?:延伸閱讀|相關新聞|更多新聞|看更多|點我|下載|本文|版權|未經授權|"
    r"喝酒不開車|酒後不開車|珍惜生命|自殺|《[^》]{1,12}》提醒您)|(?:延伸閱讀|相關新聞|更多新聞)\s*+[：:]).*$",
    re.DOTALL,
)

# --- titles ---------------------------------------------------------------------------------------------------
_RUBRIC = "獨家|快訊|即時|影|影音|專訪|直播|更新|最新|圖輯|多圖|更正|社論|評論|焦點|專題|懶人包|民調|有片|直擊|重磅|新聞"
_TITLE_TAG = re.compile(
    rf"^\s*(?:(?:【[^】]{{1,8}}】|\[[^\]]{{1,8}}\]|［[^］]{{1,8}}］|〔[^〕]{{1,8}}〕|[《〈](?:{_RUBRIC})[》〉]"
    rf"|(?:{_RUBRIC})\s*[／/｜|])\s*)+"  # 【影】〔即時〕《獨家》快訊／
    rf"|(?<!\s)\s*+(?:[【〔［\[](?:{_RUBRIC})[】〕］\]])+\s*+$"  # a rubric at the end: …【影】
)
_SITE_SUFFIX = re.compile(
    r"(?<!\s)\s*+[|｜\-–—]\s*+[^|｜]{0,12}(?:新聞網?|電子報|新聞雲|PNN|日報|時報|財經|中央社|CNA)[^|｜]{0,8}$"
)  # … | 公視新聞網 PNN, … - 自由時報電子報, …｜ETtoday新聞雲
_REPEATED_END_PUNCT = re.compile(r"(?<![！？。～~])[！？。～~]{2,}+$")
_WHITESPACE = re.compile(r"\s+")
_SPACE = re.compile(" ")
_CHINESE_OR_PUNCT = re.compile(rf"[{CJK}，。！？：；、（）「」]")
_SENTENCE = re.compile(r"[^。！？!?]*[。！？!?]+[」』”]?|[^。！？!?]+$")


def strip_html(text: str) -> str:
    """Markup left by the scraper: tags out, those that break a line or a block (<br>, <p>, </div>...) becoming a
    line break so the line rules see the lines the page showed; entities decoded, and the markup they encoded
    (&lt;br&gt;) read once more."""
    return _markup_to_lines(html.unescape(_markup_to_lines(text)))


def _markup_to_lines(text: str) -> str:
    return _TAG.sub("", _BLOCK_TAG.sub("\n", _SCRIPT.sub("", text)))


def normalize_width(text: str) -> str:
    """Full-width letters and digits to half-width; ASCII ,!?:; and () after Chinese text to their full-width forms."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    text = _FULLWIDTH.sub(lambda m: m.group().translate(_FULLWIDTH_ALNUM), text)
    if _ASCII_PUNCT.search(text):  # the full pattern starts with a look-behind: slow to scan, so test first
        text = _ASCII_PUNCT_AFTER_CJK.sub(lambda m: m.group(1).translate(_HALF_TO_FULL_PUNCT), text)
    return _ASCII_PARENS_AROUND_CJK.sub(r"（\1）", text)


def strip_wire_dateline(content: str) -> str:
    """A wire service's dateline opening the story: （中央社記者王小明台北23日電）, （中央社華盛頓22日綜合外電報導）."""
    return _WIRE_DATELINE.sub("", content, count=1)


def strip_reporter_lines(content: str) -> str:
    """Newsroom credits wherever a line holds them: alone on it, opening it, or glued to its last sentence with no
    line break; bracketed or not: 〔記者王小明／台北報導〕, …之冠。記者王小明／台北報導, 文／記者王小明,
    中央社記者王小明台北2日電, （編輯：陳正健）1131023, 責任編輯：陳柏宇. A sentence that mentions a reporter
    (他向記者表示, 記者會上) is no credit: each form needs its credit word, a name and its closing mark."""
    return _OPENING_CREDIT.sub("", _CLOSING_CREDITS.sub("", content))


def strip_captions(content: str) -> str:
    """Photo and video captions: ▲蔣萬安出席記者會。（圖／記者王小明攝）, 圖說：…; the story around them stays."""
    return _CAPTION.sub("", content) if _CAPTION_MARK.search(content) else content


def strip_source_credits(text: str) -> str:
    """Bracketed credits wherever they stand, text after them kept: （公視新聞）, (圖/記者王小明攝), （影音來源：公視）."""
    return _CREDIT_ANYWHERE.sub("", text)


def strip_trailing_credits(content: str) -> str:
    """A bracketed aside after the last sentence of a line or of the story, in any script: (PTS), （Reuters）."""
    return _TRAILING_CREDIT.sub("", content)


def strip_footer(content: str) -> str:
    """Site footers after the story: ※延伸閱讀, ＊珍惜生命…安心專線, 延伸閱讀：…, from the marker to the end."""
    return _FOOTER.sub("", content)


def remove_emoji(text: str) -> str:
    """Emoji and decorative symbols carry no headline content."""
    return _DECORATIVE.sub("", _EMOJI.sub("", text))


def strip_title_tags(title: str) -> str:
    """Rubrics that label the page, not the story: 【影】, 〔即時〕, 《獨家》, 快訊／ at the start, 【影】 at the end."""
    return _TITLE_TAG.sub("", title)


def strip_site_suffix(title: str) -> str:
    """The site's name the page title carries: … | 公視新聞網 PNN, … - 自由時報電子報."""
    return _SITE_SUFFIX.sub("", title)


def collapse_end_punctuation(title: str) -> str:
    """Repeated marks ending a title keep one of each kind, in order: ！！！ → ！, ？？ → ？, ？！？！ → ？！."""
    return _REPEATED_END_PUNCT.sub(lambda m: "".join(dict.fromkeys(m.group(0))), title)


def collapse_whitespace(text: str, keep_spaces: bool = False) -> str:
    """Join lines and fold runs of white space to one space; in prose, also drop spaces next to Chinese text.

    Titles keep their single spaces: in zh-TW headlines a space separates two clauses, like a comma.
    """
    text = _WHITESPACE.sub(" ", text).strip()
    if keep_spaces:
        return text
    return _SPACE.sub(_drop_space_next_to_chinese, text)


def _drop_space_next_to_chinese(match: re.Match) -> str:
    text, start, end = match.string, match.start(), match.end()
    beside = (start and _CHINESE_OR_PUNCT.match(text, start - 1)) or (end < len(text) and _CHINESE_OR_PUNCT.match(text, end))
    return "" if beside else match.group()


@dataclass(frozen=True)
class Rule:
    """One named text rewrite; ``clean_rows`` counts the rows it changed under ``name``."""

    name: str
    apply: Callable[[str], str]


#: The article body's rules, in order: markup and width first so the patterns see one form of each character;
#: captions before emoji (the ▲ marks a caption); white space last (line ends mark reporter lines and footers).
CONTENT_RULES = (
    Rule("html", strip_html),
    Rule("width", normalize_width),
    Rule("wire_dateline", strip_wire_dateline),
    Rule("reporter_line", strip_reporter_lines),
    Rule("caption", strip_captions),
    Rule("source_credit", strip_source_credits),
    Rule("trailing_credit", strip_trailing_credits),
    Rule("footer", strip_footer),
    Rule("emoji", remove_emoji),
    Rule("whitespace", collapse_whitespace),
)
#: The headline's rules, in order; single spaces are kept (they separate clauses in zh-TW headlines).
TITLE_RULES = (
    Rule("html", strip_html),
    Rule("width", normalize_width),
    Rule("title_tag", strip_title_tags),
    Rule("site_suffix", strip_site_suffix),
    Rule("source_credit", strip_source_credits),
    Rule("emoji", remove_emoji),
    Rule("end_punctuation", collapse_end_punctuation),
    Rule("whitespace", lambda title: collapse_whitespace(title, keep_spaces=True)),  # spaces between clauses stay
)


def apply_rules(text: str, rules: tuple[Rule, ...], edited: Counter | None = None, prefix: str = "") -> str:
    """Run ``rules`` in order; when ``edited`` is given, count each rule that changed the text as ``prefix+name``."""
    for rule in rules:
        changed = rule.apply(text)
        if edited is not None and changed != text:
            edited[prefix + rule.name] += 1
        text = changed
    return text


def clean_content(content: str) -> str:
    """Article body through ``CONTENT_RULES``."""
    return apply_rules(content, CONTENT_RULES)


def clean_title(title: str) -> str:
    """Headline through ``TITLE_RULES``."""
    return apply_rules(title, TITLE_RULES)


def sentences(text: str) -> list[str]:
    """Split Chinese prose into sentences ending in 。！？ (a closing quote stays with its sentence)."""
    return [s for s in (m.group(0).strip() for m in _SENTENCE.finditer(text)) if s]


def lead_n(content: str, budget: int) -> str:
    """The longest run of leading sentences within ``budget`` characters (news puts the story first).

    A first sentence longer than the budget is cut at the budget, the only case of a blind cut.
    """
    if len(content) <= budget:
        return content
    kept = ""
    for sentence in sentences(content):
        if len(kept) + len(sentence) > budget:
            break
        kept += sentence
    return kept or content[:budget]


@dataclass(frozen=True)
class CleaningRules:
    """The knobs of ``clean_rows``; part of the split's fingerprint."""

    title_min_chars: int = 8
    title_max_chars: int = 30
    content_max_chars: int = 1200
    content_min_chars: int = 20
    near_duplicate_threshold: float = 0.8


#: The drop rules, in the order ``clean_rows`` tries them; a dropped row counts under the first that applies.
DROP_RULES = ("empty_title", "empty_or_short_content", "title_too_short", "title_too_long", "exact_duplicate",
              "near_duplicate")


@dataclass
class CleaningReport:
    kept: list[dict] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    edited: Counter = field(default_factory=Counter)  # "content: <rule>" / "title: <rule>" -> rows changed
    shortened_to_lead_n: int = 0

    def table(self) -> list[tuple[str, int, int]]:
        """(rule, rows edited, rows dropped) for every rule, edits first in rule order, then drops."""
        edits = [(f"{where}: {rule.name}", self.edited[f"{where}: {rule.name}"], 0)
                 for where, rules in (("content", CONTENT_RULES), ("title", TITLE_RULES)) for rule in rules]
        edits.append(("content: lead_n", self.shortened_to_lead_n, 0))
        return edits + [(name, 0, self.dropped[name]) for name in DROP_RULES]


def clean_texts(pairs: list[tuple[str, str]]) -> list[tuple[str, str, list[str]]]:
    """(content, title) pairs through the rules: the cleaned pair and the names of the rules that changed it."""
    cleaned = []
    for content, title in pairs:
        edited: Counter = Counter()
        cleaned.append((apply_rules(content, CONTENT_RULES, edited, "content: "),
                        apply_rules(title, TITLE_RULES, edited, "title: "), list(edited)))
    return cleaned


def clean_rows(rows: list[dict], rules: CleaningRules, workers: int = 1) -> CleaningReport:
    """Clean ``content``/``title`` of each row and drop what cannot train a headline model; counts every edit and
    drop by rule (edits on every row, including rows later dropped). Text rules and near-duplicate sketches run in
    ``workers`` processes on large inputs; the result does not depend on ``workers``."""
    from titlegen_assets.data.dedup import near_duplicates
    from titlegen_assets.data.parallel import map_chunks

    report = CleaningReport()
    seen_content: set[str] = set()
    seen_title: set[str] = set()
    candidates = []
    texts = [(row.get("content") or "", row.get("title") or "") for row in rows]
    for row, (content, title, edited) in zip(rows, map_chunks(clean_texts, texts, workers)):
        report.edited.update(edited)
        if not title:
            report.dropped["empty_title"] += 1
        elif len(content) < rules.content_min_chars:
            report.dropped["empty_or_short_content"] += 1
        elif len(title) < rules.title_min_chars:
            report.dropped["title_too_short"] += 1
        elif len(title) > rules.title_max_chars:
            report.dropped["title_too_long"] += 1
        elif content in seen_content or title in seen_title:
            report.dropped["exact_duplicate"] += 1
        else:
            seen_content.add(content)
            seen_title.add(title)
            candidates.append({**row, "content": content, "title": title})
    repeats = near_duplicates([c["content"] for c in candidates], rules.near_duplicate_threshold, workers)
    report.dropped["near_duplicate"] += len(repeats)
    for i, row in enumerate(candidates):
        if i in repeats:
            continue
        short = lead_n(row["content"], rules.content_max_chars)
        report.shortened_to_lead_n += short != row["content"]
        report.kept.append({**row, "content": short})
    return report
