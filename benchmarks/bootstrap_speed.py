"""How long the eval gate's bootstrap takes (3 systems × 150 articles × 1000 resamples), and how wide its intervals
are on 15 and on 150 articles. Predictions are the bundled sample's reference titles with characters dropped (a
stand-in for a model), Lead-1 from the article.

    python benchmarks/bootstrap_speed.py [--repeats 5]
"""

import argparse
import random
import statistics
import time

from titlegen_assets.data.cleaning import CleaningRules
from titlegen_assets.data.sources import load_file, sample_path
from titlegen_assets.evaluation import intervals, metrics
from titlegen_assets.ui.tables import differences_table, scores_table

LOW, HIGH = CleaningRules().title_min_chars, CleaningRules().title_max_chars


def dropped(titles: list[str], drop: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(c for c in title if rng.random() >= drop) for title in titles]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = [r for r in load_file(sample_path(), "content", "title").rows if isinstance(r["title"], str)][:150]
    references = [r["title"] for r in rows]
    systems = {"fine-tuned": dropped(references, 0.3, 0), "base model": dropped(references, 0.6, 1),
               "lead-1": [metrics.lead_1(r["content"], HIGH) for r in rows]}

    def timed(call) -> float:
        call()  # warm-up: imports, rouge_score's first scorer
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    whole = timed(lambda: intervals.bootstrap_scores(systems, references, LOW, HIGH))
    points = timed(lambda: [metrics.score(p, references, LOW, HIGH) for p in systems.values()])
    print(f"bootstrap_scores, 3 systems × {len(references)} articles × 1000 resamples: median {whole:.3f} s "
          f"(of which metrics.score for the point scores {points:.3f} s), {args.repeats} runs")
    for n in (15, 150):
        scores = intervals.bootstrap_scores({k: v[:n] for k, v in systems.items()}, references[:n], LOW, HIGH)
        print(f"\n{n} articles\n\n{scores_table(scores.summary())}\n")
        print(differences_table("fine-tuned", intervals.paired_differences(scores, "fine-tuned", ["lead-1", "base model"])))


if __name__ == "__main__":
    main()
