"""Cleaning rules for scraped zh-TW news: small pure functions, applied in order by ``clean_rows``.

Every rule either rewrites text or drops a row; drops are counted per rule so the asset can report them.
Lengths are counted in characters (``len``), the natural unit for Chinese titles.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_FULLWIDTH_ALNUM = {chr(c): chr(c - 0xFEE0) for c in range(0xFF10, 0xFF5F) if chr(c - 0xFEE0).isalnum()}
_FULLWIDTH_ALNUM["\u3000"] = " "
_HALF_TO_FULL_PUNCT = {",": "，", "!": "！", "?": "？", ":": "：", ";": "；"}

_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, supplemental symbols
    "\u2600-\u27bf"  # miscellaneous symbols and dingbats (☀ ✨ ❤ ...)
    "\u2b00-\u2bff"  # arrows and stars (⭐ ⬆ ...)
    "\ufe0f\u200d"  # variation selector, zero-width joiner
    "]+"
)
_DECORATIVE = re.compile("[★☆◆◇■□●○▲△▼▽◎※♦♥♪►▶◀→←↑↓➤✓✔✗✘…]+")
_TITLE_TAG = re.compile(r"^\s*(?:【[^】]{1,8}】|\[[^\]]{1,8}\]|〔[^〕]{1,8}〕)\s*")

_CREDIT_WORDS = "新聞|報導|編輯|記者|更新|來源|中央社|綜合|整理"
_ASIDE_WORDS = "圖|照|攝|示意|翻攝|影片|截圖|提供"
_REPORTER_LINE = re.compile(r"^\s*【?記者[^\n。]{1,24}?[／/ ]?\S{0,6}報導】?\s*\n?")
_TRAILING_CREDIT = re.compile(rf"\s*(?:[（(【〔][^（）()【】〔〕]{{0,30}}(?:{_CREDIT_WORDS})[^（）()【】〔〕]{{0,30}}[）)】〕]\s*)+$")
_ASIDE = re.compile(rf"[（(〔][^（）()〔〕]{{0,20}}(?:{_ASIDE_WORDS})[^（）()〔〕]{{0,20}}[）)〕]")
_SENTENCE = re.compile(r"[^。！？!?]*[。！？!?]+[」』”]?|[^。！？!?]+$")


def normalize_width(text: str) -> str:
    """Full-width letters and digits to half-width; ASCII ,!?:; and () after Chinese text to their full-width forms."""
    text = unicodedata.normalize("NFC", text).translate(str.maketrans(_FULLWIDTH_ALNUM))
    text = re.sub(rf"(?<=[{_CJK}])\s*([,!?:;])\s*", lambda m: _HALF_TO_FULL_PUNCT[m.group(1)], text)
    return re.sub(rf"\(([^()]*[{_CJK}][^()]*)\)", r"（\1）", text)


def remove_emoji(text: str) -> str:
    """Emoji and decorative symbols carry no headline content."""
    return _DECORATIVE.sub("", _EMOJI.sub("", text))


def strip_title_tags(title: str) -> str:
    """Drop a leading rubric such as 【快訊】 or [影音]: it labels the page, not the story."""
    return _TITLE_TAG.sub("", title)


def strip_credits(content: str) -> str:
    """Remove a leading reporter line and trailing source footnotes like （公視新聞）or （責任編輯：…）."""
    return _TRAILING_CREDIT.sub("", _REPORTER_LINE.sub("", content.strip()))


def remove_asides(text: str) -> str:
    """Remove parenthetical asides about pictures and footage, e.g. （圖／公視新聞網）, (資料照)."""
    return _ASIDE.sub("", text)


def collapse_whitespace(text: str, keep_spaces: bool = False) -> str:
    """Join lines and fold runs of white space to one space; in prose, also drop spaces next to Chinese text.

    Titles keep their single spaces: in zh-TW headlines a space separates two clauses, like a comma.
    """
    text = re.sub(r"\s+", " ", text).strip()
    if keep_spaces:
        return text
    return re.sub(rf"\s+(?=[{_CJK}，。！？：；、（）「」])|(?<=[{_CJK}，。！？：；、（）「」])\s+", "", text)


def clean_content(content: str) -> str:
    """Article body: width, credits, emoji, asides, then white space."""
    return collapse_whitespace(remove_asides(remove_emoji(strip_credits(normalize_width(content)))))


def clean_title(title: str) -> str:
    """Headline: width, rubric tags, emoji, asides, then white space (single spaces kept)."""
    text = remove_asides(strip_title_tags(remove_emoji(normalize_width(title))))
    return collapse_whitespace(text, keep_spaces=True)


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


def _shingles(text: str, size: int) -> set[int]:
    import zlib

    return {zlib.crc32(text[i : i + size].encode()) for i in range(max(1, len(text) - size + 1))}


def near_duplicates(texts: list[str], threshold: float, shingle_size: int = 5, sketch: int = 12) -> dict[int, int]:
    """Map each near-duplicate text's index to the earlier index it repeats (character-shingle Jaccard ≥ threshold).

    Candidates come from a bottom-k sketch index, so the cost stays near linear in the number of texts.
    """
    import heapq

    sets = [_shingles(t, shingle_size) for t in texts]
    index: dict[int, list[int]] = {}
    repeats: dict[int, int] = {}
    for i, shingles in enumerate(sets):
        bottom = heapq.nsmallest(sketch, shingles)
        candidates = sorted({j for h in bottom for j in index.get(h, ())})
        for j in candidates:
            if len(shingles & sets[j]) / len(shingles | sets[j]) >= threshold:
                repeats[i] = j
                break
        else:
            for h in bottom:
                index.setdefault(h, []).append(i)
    return repeats


@dataclass(frozen=True)
class CleaningRules:
    """The knobs of ``clean_rows``; part of the split's fingerprint."""

    title_min_chars: int = 8
    title_max_chars: int = 30
    content_max_chars: int = 1200
    content_min_chars: int = 20
    near_duplicate_threshold: float = 0.8


@dataclass
class CleaningReport:
    kept: list[dict] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    shortened_to_lead_n: int = 0


def clean_rows(rows: list[dict], rules: CleaningRules) -> CleaningReport:
    """Clean ``content``/``title`` of each row and drop what cannot train a headline model; counts every drop by rule."""
    report = CleaningReport()
    seen_content: dict[str, int] = {}
    seen_title: dict[str, int] = {}
    candidates = []
    for row in rows:
        content = clean_content(row.get("content") or "")
        title = clean_title(row.get("title") or "")
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
            seen_content[content] = seen_title[title] = len(candidates)
            candidates.append({**row, "content": content, "title": title})
    repeats = near_duplicates([c["content"] for c in candidates], rules.near_duplicate_threshold)
    report.dropped["near_duplicate"] += len(repeats)
    for i, row in enumerate(candidates):
        if i in repeats:
            continue
        short = lead_n(row["content"], rules.content_max_chars)
        report.shortened_to_lead_n += short != row["content"]
        report.kept.append({**row, "content": short})
    return report
