"""Bootstrap intervals for the eval gate: how much a score on a few test articles can be trusted, and whether one
system beats another on the same articles.

Percentile bootstrap over the test *articles*: a resample draws the articles with replacement, every system is
rescored on that same draw (so differences between systems are paired), and each metric is recomputed the way
``metrics.score`` computes it: a mean over articles for ROUGE, title-only and length, and corpus-level BLEU-1 (clipped
unigram matches and lengths summed over the drawn articles, then precision × brevity penalty). Per-article
sufficient statistics are computed once; a resample is then a row of article counts, and every resample of every
system is one matrix product.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from titlegen_assets.evaluation import metrics

#: The metrics that are a mean over articles, in the order ``_article_statistics`` gives them.
_MEANS = ("rouge1", "rouge2", "rougeL", "title_only_rate", "length_compliance")
#: Columns of ``_article_statistics``: the ``_MEANS``, then the three ``bleu_1_statistics``.
_COLUMNS = len(_MEANS) + 3


def resample_counts(articles: int, samples: int, seed: int) -> np.ndarray:
    """(samples, articles): how often each article is drawn in each resample (``articles`` draws with replacement).
    One draw serves every system, which is what makes their differences paired."""
    return np.random.default_rng(seed).multinomial(articles, np.full(articles, 1 / articles), size=samples)


def bleu_1_statistics(predictions: list[str], references: list[str]) -> np.ndarray:
    """(articles, 3): clipped unigram matches, prediction length and reference length of each article, in
    ``metrics.char_tokens`` — summed over any set of articles they give that set's corpus BLEU-1 (``corpus_bleu_1``)."""
    rows = []
    for prediction, reference in zip(predictions, references, strict=True):
        hypothesis, target = Counter(metrics.char_tokens(prediction)), Counter(metrics.char_tokens(reference))
        rows.append((sum((hypothesis & target).values()), hypothesis.total(), target.total()))
    return np.array(rows, dtype=float).reshape(-1, 3)


def corpus_bleu_1(matches: np.ndarray, hypothesis_length: np.ndarray, reference_length: np.ndarray) -> np.ndarray:
    """sacrebleu's corpus BLEU-1 from summed statistics, elementwise: matches / hypothesis length (0 without a match)
    times the brevity penalty exp(1 − reference/hypothesis) when the hypotheses are shorter."""
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(matches > 0, matches / hypothesis_length, 0.0)
        penalty = np.where(hypothesis_length >= reference_length, 1.0, np.exp(1 - reference_length / hypothesis_length))
    return precision * penalty


def _article_statistics(predictions: list[str], references: list[str], low: int, high: int) -> np.ndarray:
    """(articles, _COLUMNS): the ``_MEANS`` metrics of each article alone, then its ``bleu_1_statistics``."""
    means = [(*metrics.rouge([p], [r]).values(), metrics.is_title_only(p), metrics.within_length(p, low, high))
             for p, r in zip(predictions, references, strict=True)]
    return np.hstack([np.array(means, dtype=float).reshape(-1, len(_MEANS)), bleu_1_statistics(predictions, references)])


def _percentiles(values: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail], axis=0)
    return low, high


@dataclass(frozen=True)
class Bootstrap:
    """Several systems scored on the same test articles: point scores, and their scores on the same resamples."""

    #: system -> metric (``metrics.METRIC_KEYS``) -> ``metrics.score`` on every article
    point: dict[str, dict[str, float]]
    #: system -> (samples, len(METRIC_KEYS)) array: its scores on each resample, columns in METRIC_KEYS order
    resamples: dict[str, np.ndarray]
    confidence: float

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """{system: {metric: {"score", "low", "high"}}}: plain floats for check metadata and ``ui.tables.scores_table``."""
        result = {}
        for system, values in self.resamples.items():
            low, high = _percentiles(values, self.confidence)
            result[system] = {key: {"score": self.point[system][key], "low": float(low[i]), "high": float(high[i])}
                              for i, key in enumerate(metrics.METRIC_KEYS)}
        return result


def bootstrap_scores(
    systems: dict[str, list[str]], references: list[str], low: int, high: int,
    samples: int = 1000, seed: int = 0, confidence: float = 0.95,
) -> Bootstrap:
    """Every system's ``metrics.score`` and its scores on ``samples`` resamples of the articles (the same for all)."""
    if not references or not systems:
        raise ValueError(f"bootstrap_scores: got {len(references)} references and {len(systems)} systems; "
                         "score at least one system on at least one test article")
    for name, predictions in systems.items():
        if len(predictions) != len(references):
            raise ValueError(f"bootstrap_scores: system {name!r} has {len(predictions)} predictions for "
                             f"{len(references)} references; generate one title per test article")
    n = len(references)
    columns = [_article_statistics(predictions, references, low, high) for predictions in systems.values()]
    sums = resample_counts(n, samples, seed) @ np.hstack(columns)  # (samples, _COLUMNS × systems)
    resamples = {}
    for s, name in enumerate(systems):
        block = sums[:, _COLUMNS * s: _COLUMNS * (s + 1)]
        means = len(_MEANS)
        by_key = dict(zip(_MEANS, (block[:, :means] / n).T)) | {"bleu1": corpus_bleu_1(*block[:, means:].T)}
        resamples[name] = np.column_stack([by_key[key] for key in metrics.METRIC_KEYS])
    point = {name: metrics.score(predictions, references, low, high) for name, predictions in systems.items()}
    return Bootstrap(point, resamples, confidence)


def paired_differences(
    scores: Bootstrap, challenger: str, baselines: Iterable[str],
) -> dict[str, dict[str, dict[str, float]]]:
    """{baseline: {metric: {"difference", "low", "high"}}}: challenger minus baseline, the point difference and the
    interval of the per-resample differences (same articles on both sides, so what the systems share cancels)."""
    baselines = list(baselines)
    missing = [name for name in (challenger, *baselines) if name not in scores.point]
    if missing:
        raise ValueError(f"paired_differences: {missing} not scored; scored systems: {list(scores.point)}")
    result = {}
    for baseline in baselines:
        low, high = _percentiles(scores.resamples[challenger] - scores.resamples[baseline], scores.confidence)
        result[baseline] = {key: {"difference": scores.point[challenger][key] - scores.point[baseline][key],
                                  "low": float(low[i]), "high": float(high[i])}
                            for i, key in enumerate(metrics.METRIC_KEYS)}
    return result


def champion_comparison(
    scores: Bootstrap, challenger: str, champion: str, keys: Iterable[str], margin: float, on_lower_bound: bool = False,
) -> dict[str, dict]:
    """{metric: {"challenger", "champion", "difference", "low", "high", "passed", "reason"}} for each of ``keys``:
    is the challenger not worse than the champion (the model in service) by more than ``margin``?

    The plain rule passes when the point difference is ≥ −margin: a tie passes, a clear loss is refused.
    ``on_lower_bound`` passes only when the interval's lower bound is ≥ −margin (a non-inferiority test): it also
    refuses a challenger that *may* be worse by more than the margin. On the demo's 15 articles intervals are wide
    (±0.09 on Lead-1's ROUGE-L in benchmarks/RESULTS.md), so that rule refuses most retrains that change titles; it
    suits a production-sized test split.
    """
    differences = paired_differences(scores, challenger, [champion])[champion]
    result = {}
    for key in keys:
        d = differences[key]
        passed = (d["low"] if on_lower_bound else d["difference"]) >= -margin
        verdict = f"within the {margin:g} margin" if passed else f"worse by more than the {margin:g} margin"
        reason = (f"{key} {scores.point[challenger][key]:.3f} vs champion {scores.point[champion][key]:.3f}: "
                  f"{d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}], {verdict}"
                  + (" at the interval's lower bound" if on_lower_bound else ""))
        result[key] = {"challenger": scores.point[challenger][key], "champion": scores.point[champion][key],
                       **d, "passed": passed, "reason": reason}
    return result
