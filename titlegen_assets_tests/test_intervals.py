"""Bootstrap intervals pinned to metrics.score and sacrebleu, on the bundled sample's reference titles."""

import random

import numpy as np
import pytest

from titlegen_assets.data.cleaning import CleaningRules
from titlegen_assets.data.sources import load_file, sample_path
from titlegen_assets.evaluation import intervals, metrics
from titlegen_assets.ui.tables import differences_table, scores_table

LOW, HIGH = CleaningRules().title_min_chars, CleaningRules().title_max_chars


@pytest.fixture(scope="module")
def sample() -> tuple[list[str], list[str]]:
    """(contents, reference titles) of the bundled sample's rows that have a title."""
    rows = [r for r in load_file(sample_path(), "content", "title").rows if isinstance(r["title"], str)]
    return [r["content"] for r in rows], [r["title"] for r in rows]


def perturbed(titles: list[str], drop: float, seed: int = 0) -> list[str]:
    """Each title with about ``drop`` of its characters removed: right in parts, by a different amount per article."""
    rng = random.Random(seed)
    return ["".join(c for c in title if rng.random() >= drop) for title in titles]


def test_point_scores_are_metrics_score_and_each_resample_is_metrics_score_on_the_drawn_articles(sample):
    contents, references = sample[0][:15], sample[1][:15]
    systems = {"fine-tuned": perturbed(references, 0.3), "lead-1": [metrics.lead_1(c, HIGH) for c in contents]}
    scores = intervals.bootstrap_scores(systems, references, LOW, HIGH, samples=5, seed=7)
    counts = intervals.resample_counts(len(references), 5, 7)
    for name, predictions in systems.items():
        assert scores.point[name] == metrics.score(predictions, references, LOW, HIGH)
        for b, row in enumerate(counts):
            drawn = np.repeat(np.arange(len(references)), row)
            expected = metrics.score([predictions[i] for i in drawn], [references[i] for i in drawn], LOW, HIGH)
            assert dict(zip(metrics.METRIC_KEYS, scores.resamples[name][b])) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("case", "make"),
    [
        ("shorter than the references (brevity penalty)", lambda refs: perturbed(refs, 0.4)),
        ("longer than the references", lambda refs: [r + "記者報導" for r in perturbed(refs, 0.1)]),
        ("some empty predictions", lambda refs: ["" if i % 5 == 0 else r for i, r in enumerate(perturbed(refs, 0.2))]),
        ("no shared character", lambda refs: ["颱風" for _ in refs]),
    ],
)
def test_corpus_bleu_1_from_sufficient_statistics_equals_sacrebleu(sample, case, make):
    references = sample[1]
    predictions = make(references)
    matches, hypothesis, reference = intervals.bleu_1_statistics(predictions, references).sum(axis=0)
    assert intervals.corpus_bleu_1(matches, hypothesis, reference) == pytest.approx(
        metrics.bleu_1(predictions, references), rel=1e-12, abs=1e-15), case


def test_intervals_contain_the_point_score_and_narrow_with_more_articles(sample):
    contents, references = sample[0][:150], sample[1][:150]
    systems = {"fine-tuned": perturbed(references, 0.3), "base model": perturbed(references, 0.6, seed=1),
               "lead-1": [metrics.lead_1(c, HIGH) for c in contents]}
    width = {}
    for n in (15, 150):  # the demo's test split, and a production-sized one (3 systems × 1000 resamples)
        scores = intervals.bootstrap_scores({k: v[:n] for k, v in systems.items()}, references[:n], LOW, HIGH)
        assert {v.shape for v in scores.resamples.values()} == {(1000, len(metrics.METRIC_KEYS))}
        summary = scores.summary()
        for name, row in summary.items():
            for key, cell in row.items():
                assert cell["low"] <= cell["score"] <= cell["high"], (n, name, key, cell)
        width[n] = {key: summary["fine-tuned"][key]["high"] - summary["fine-tuned"][key]["low"]
                    for key in ("rougeL", "bleu1")}
    for key in ("rougeL", "bleu1"):
        assert width[150][key] < width[15][key] / 2, width


def test_a_system_minus_itself_is_exactly_zero(sample):
    references = sample[1][:15]
    predictions = perturbed(references, 0.3)
    scores = intervals.bootstrap_scores({"a": predictions, "copy": list(predictions)}, references, LOW, HIGH)
    assert intervals.paired_differences(scores, "a", ["copy"]) == {
        "copy": {key: {"difference": 0.0, "low": 0.0, "high": 0.0} for key in metrics.METRIC_KEYS}}


def test_identical_seeds_give_identical_intervals_and_another_seed_others(sample):
    references = sample[1][:15]
    systems = {"a": perturbed(references, 0.3), "b": perturbed(references, 0.5, seed=1)}
    first, again, other = (intervals.bootstrap_scores(systems, references, LOW, HIGH, samples=200, seed=seed)
                           for seed in (3, 3, 4))
    assert first.summary() == again.summary()
    assert intervals.paired_differences(first, "a", ["b"]) == intervals.paired_differences(again, "a", ["b"])
    assert first.summary() != other.summary()


def test_champion_rule_refuses_a_clearly_worse_challenger_and_accepts_a_tie(sample):
    references = sample[1][:15]
    champion = perturbed(references, 0.2)
    systems = {"champion": champion, "worse": perturbed(references, 0.7, seed=1), "same": list(champion)}
    scores = intervals.bootstrap_scores(systems, references, LOW, HIGH)
    worse = intervals.champion_comparison(scores, "worse", "champion", ("rougeL", "bleu1"), margin=0.02)
    tie = intervals.champion_comparison(scores, "same", "champion", ("rougeL", "bleu1"), margin=0.02)
    rouge = worse["rougeL"]
    assert not rouge["passed"] and not worse["bleu1"]["passed"]
    assert rouge["difference"] == rouge["challenger"] - rouge["champion"] < -0.02
    assert rouge["reason"] == (f"rougeL {rouge['challenger']:.3f} vs champion {rouge['champion']:.3f}: "
                               f"{rouge['difference']:+.3f} [{rouge['low']:+.3f}, {rouge['high']:+.3f}], "
                               "worse by more than the 0.02 margin")
    assert all(v["passed"] and v["reason"].endswith("within the 0.02 margin") for v in tie.values())


def test_the_lower_bound_rule_refuses_a_loss_within_the_margin_that_the_interval_does_not_rule_out(sample):
    references = sample[1][:15]
    champion = perturbed(references, 0.2)
    challenger = ["颱風" if i == 0 else title for i, title in enumerate(champion)]  # one article lost
    scores = intervals.bootstrap_scores({"champion": champion, "challenger": challenger}, references, LOW, HIGH)
    d = intervals.paired_differences(scores, "challenger", ["champion"])["champion"]["rougeL"]
    assert d["low"] < d["difference"] < 0
    margin = -(d["low"] + d["difference"]) / 2  # between the two statistics the rules read
    plain, strict = (intervals.champion_comparison(scores, "challenger", "champion", ["rougeL"], margin, on_lower_bound=rule)
                     ["rougeL"] for rule in (False, True))
    assert plain["passed"] and not strict["passed"]
    assert strict["reason"].endswith(f"worse by more than the {margin:g} margin at the interval's lower bound")


def test_mismatched_or_unknown_systems_are_named(sample):
    references = sample[1][:15]
    with pytest.raises(ValueError, match="system 'short' has 14 predictions for 15 references"):
        intervals.bootstrap_scores({"short": references[:14]}, references, LOW, HIGH)
    scores = intervals.bootstrap_scores({"fine-tuned": references}, references, LOW, HIGH, samples=10)
    with pytest.raises(ValueError, match=r"\['base model'\] not scored; scored systems: \['fine-tuned'\]"):
        intervals.paired_differences(scores, "fine-tuned", ["base model"])


def test_tables_show_each_score_with_its_interval_and_differences_signed():
    summary = {"fine-tuned": {"rougeL": {"score": 0.4123, "low": 0.371, "high": 0.4551},
                              "bleu1": {"score": 0.45, "low": 0.4, "high": 0.5}}}
    differences = {"lead-1": {"rougeL": {"difference": 0.043, "low": -0.01, "high": 0.081},
                              "bleu1": {"difference": -0.002, "low": -0.05, "high": 0.04}}}
    assert scores_table(summary) == ("| system | rougeL | bleu1 |\n|---|---|---|\n"
                                     "| fine-tuned | 0.412 [0.371, 0.455] | 0.450 [0.400, 0.500] |")
    assert differences_table("fine-tuned", differences) == (
        "| paired difference | rougeL | bleu1 |\n|---|---|---|\n"
        "| fine-tuned − lead-1 | +0.043 [-0.010, +0.081] | -0.002 [-0.050, +0.040] |")
