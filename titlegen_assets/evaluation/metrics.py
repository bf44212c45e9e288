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
_PREFIX = re.compile(r"^\s*(?:(?:新聞)?標題|題目|Title|Headline)\s*[:：]|^\s*(?:以下是|這是|好的|當然|Sure|Here)", re.I)
_QUOTED = re.compile(r"^\s*([「『“\"'《〈【])(?s:.*)([」』”\"'》〉】])\s*$")
_MARKDOWN = re.compile(r"^\s*(?:#|[-*+]\s|\d+\.\s)|\*\*|`|__")
_EXPLANATION = re.compile(r"。|因為|說明|解釋|這個標題|此標題")


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
    """One line, just the title: no prefix (標題：, Title:, 以下是…), no surrounding quotes, no markdown, and no
    explanation sentence (a 。 or words like 因為/說明 give one away)."""
    stripped = text.strip()
    return bool(stripped) and "\n" not in stripped and not (
        _PREFIX.search(stripped) or _QUOTED.match(stripped) or _MARKDOWN.search(stripped) or _EXPLANATION.search(stripped)
    )


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
