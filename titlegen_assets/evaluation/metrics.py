"""Headline metrics, correct for Chinese: ROUGE-1/2/L (F1) and BLEU-1 at the character level, title-only rate and
length compliance.

Tokenization: each CJK character is one token; a run of Latin letters or digits is one token (lower-cased);
punctuation and white space are not tokens. ROUGE comes from ``rouge_score`` with that tokenizer (its default one
drops every Chinese character and scores 0.0); BLEU-1 from ``sacrebleu`` (unigram precision with the brevity
penalty, corpus level) on the same tokens. Both libraries are what ``evaluate``'s ``rouge``/``bleu`` wrap; they are
called directly because ``evaluate.load`` fetches metric code from the Hub at run time.
"""

from __future__ import annotations

import re
from pathlib import Path

from titlegen_assets.data.cleaning import CJK

#: Path of the ``evaluate`` module that wraps ``score`` (``zh_headline.py``, shipped beside this file), for
#: ``evaluate.load(ZH_HEADLINE)``: it loads offline, and a user's own ``Trainer`` scores titles the same way.
ZH_HEADLINE = str(Path(__file__).with_name("zh_headline.py"))

_TOKEN = re.compile(rf"[{CJK}]|[A-Za-z0-9]+")
#: A lead-in before the title: a label (標題：, Title:, 以下是這篇新聞的標題：…) or a chat reply's opening (好的，Sure,).
_PREFIX = re.compile(
    r"^\s*(?:(?:新聞|建議|參考)?標題|題目|Title|Headline)\s*[:：]"  # a label
    r"|^[^:：\n]{0,30}(?:標題|title|headline)[^:：\n]{0,12}[:：]"  # 以下是這篇新聞的標題： / 我為這則新聞下的標題是：
    r"|^\s*(?:以下(?:是|為)|如下)"  # 以下是… introduces what follows
    r"|^\s*(?:好的|好|當然|沒問題|可以)\s*[，,、!！。]"  # a reply's opening word with its pause: 好的，… (當然 alone is a word)
    r"|^\s*(?:Sure|OK|Okay|Certainly|Of course)\b|^\s*Here(?:'s| is| are)\b",
    re.I,
)
#: Opening quotes and the closing quote that matches each.
_QUOTES = {"「": "」", "『": "』", "“": "”", '"': '"', "'": "'", "《": "》", "〈": "〉", "【": "】", "‘": "’"}
_MARKDOWN = re.compile(r"^\s*(?:#|[-*+>]\s|\d+[.)]\s)|\*\*|`|__|\[[^\]]*\]\(")
#: An explanation: a second sentence after 。, talk about the title or the article itself, or a labelled or
#: parenthesised note. Words a headline uses (因為, 說明, 解釋, 這是, 當然) alone are not one.
_EXPLANATION = re.compile(
    r"。\s*\S"  # a second sentence
    r"|(?:這個|這一?則|此|該|上述|以上|我的|這樣的)\s*標題|這個題目"  # 這個標題點出…
    r"|這(?:篇|則)(?:新聞|文章|報導)"  # about the article
    r"|(?:this|the|my) (?:title|headline)\b"
    r"|(?:^|[\s，,；;—–-])(?:說明|解釋|註|備註|附註|理由|Note|Explanation)\s*[:：]"  # a labelled note: …，說明：…
    r"|[（(【\[]\s*(?:說明|解釋|備註|附註|理由|Note|Explanation|註\s*[:：)）])",  # a parenthesised note: （說明：…）
    re.I,
)


def char_tokens(text: str) -> list[str]:
    return [token.lower() for token in _TOKEN.findall(text)]


class CharTokenizer:
    """The ``tokenize`` interface ``rouge_score.RougeScorer`` expects."""

    def tokenize(self, text: str) -> list[str]:
        return char_tokens(text)


def rouge(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F1 over pairs."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=CharTokenizer())
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for prediction, reference in zip(predictions, references, strict=True):
        for name, score in scorer.score(reference, prediction).items():
            totals[name] += score.fmeasure
    return {name: total / len(predictions) if predictions else 0.0 for name, total in totals.items()}


def bleu_1(predictions: list[str], references: list[str]) -> float:
    """Corpus BLEU with unigrams only, in [0, 1]."""
    from sacrebleu.metrics import BLEU

    scorer = BLEU(max_ngram_order=1, tokenize="none", effective_order=False)
    joined = [" ".join(char_tokens(p)) for p in predictions]
    return scorer.corpus_score(joined, [[" ".join(char_tokens(r)) for r in references]]).score / 100


def is_title_only(text: str) -> bool:
    """One line, just the title: no lead-in (標題：, Title:, 以下是…, 好的，…), no surrounding quotes, no markdown,
    and no explanation (a second sentence after 。, 「這個標題…」, （說明：…）). Headline words are not flagged."""
    stripped = text.strip()
    return bool(stripped) and "\n" not in stripped and not (
        _PREFIX.search(stripped) or _quoted(stripped) or _MARKDOWN.search(stripped) or _EXPLANATION.search(stripped)
    )


def _quoted(text: str) -> bool:
    """The whole text inside one pair of quotes (「…」), not a title that only starts and ends with quoted words
    (「躺平」成流行語 or 「A」與「B」)."""
    close = _QUOTES.get(text[0])
    return close is not None and len(text) > 1 and text.endswith(close) and close not in text[1:-1]


def within_length(text: str, low: int, high: int) -> bool:
    return low <= len(text.strip()) <= high


#: What ``score`` returns, in the order tables show it.
METRIC_KEYS = ("rouge1", "rouge2", "rougeL", "bleu1", "title_only_rate", "length_compliance")


def score(predictions: list[str], references: list[str], low: int, high: int) -> dict[str, float]:
    """Every gate metric for one system's predictions."""
    n = len(predictions) or 1
    return {
        **rouge(predictions, references),
        "bleu1": bleu_1(predictions, references),
        "title_only_rate": sum(map(is_title_only, predictions)) / n,
        "length_compliance": sum(within_length(p, low, high) for p in predictions) / n,
    }


def lead_1(content: str, high: int) -> str:
    """The Lead-1 baseline: the article's first sentence, cut to the title length bound, without its final 。."""
    from titlegen_assets.data.cleaning import sentences

    first = (sentences(content) or [content])[0]
    return first.rstrip("。！？!?")[:high]
