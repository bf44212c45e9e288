"""zh_headline: character-level ROUGE-1/2/L, BLEU-1, title-only rate and length compliance, as an ``evaluate``
metric that loads offline.

    import evaluate
    from titlegen_assets.evaluation.metrics import ZH_HEADLINE
    metric = evaluate.load(ZH_HEADLINE)
    metric.compute(predictions=["台北捷運環狀線北段動工"], references=["環狀線北段今動工"], title_min_chars=8,
                   title_max_chars=30)

``evaluate.load("rouge")`` would fetch its script from the Hub at run time; this module ships in the package, so
the eval gate, a notebook and a user's own ``Trainer`` (``compute_metrics``) score titles the same way.
"""

import datasets
import evaluate

from titlegen_assets.evaluation.metrics import score

_DESCRIPTION = __doc__
_KWARGS_DESCRIPTION = """
Args:
    predictions: generated titles. references: reference titles (one per prediction).
    title_min_chars, title_max_chars: the length bounds of a compliant title, in characters.
Returns: rouge1, rouge2, rougeL (mean F1), bleu1 (corpus, with brevity penalty), title_only_rate, length_compliance.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ZhHeadline(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references, title_min_chars, title_max_chars):
        return score(list(predictions), list(references), title_min_chars, title_max_chars)
