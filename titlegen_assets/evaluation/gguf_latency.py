"""Which certified GGUF answers fastest on this host (``gguf: fastest``): each candidate served by llama-server with
the product's settings, sent the same distinct test articles, measured in turns, and the rule that picks one.

The smallest file is not always the fastest: on a CPU without AVX-512, K-quants evaluate prompts slower than Q8_0
(issue 30: Q5_K_M p50 843 ms, Q8_0 696 ms on one 2-core AVX2 host). So the choice is measured where it is made.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from titlegen_assets.evaluation.llama_server import LlamaServer
from titlegen_assets.serving import latency

#: Articles each fresh server answers first, never measured: the model's pages are read in and the instruction every
#: request starts with enters the prompt cache, as on a server that has been up a while.
WARMUP = 1


def measure_in_turns(ggufs: dict[str, Path], warm: list[str], prompts: list[str], rounds: int, n_predict: int,
                     log: Callable[[str], None] = lambda _: None) -> dict[str, list[dict]]:
    """Client and server timings of every candidate on the same prompts, each prompt sent once to each candidate.

    The prompts are dealt into ``rounds`` turns; in each turn every candidate in turn (the first one rotating) gets a
    fresh llama-server, the ``warm`` prompts, then that turn's prompts one at a time. A change in the machine's load
    (a shared 2-core host) then falls on all candidates instead of on whichever was measured last; one server runs
    at a time, so no two models share the memory or the cores. Each sample is ``LlamaServer.timed_completion``'s,
    with the ``article`` (index into ``prompts``) and the ``round``."""
    names = list(ggufs)
    samples: dict[str, list[dict]] = {name: [] for name in names}
    turns = [turn for turn in (range(start, len(prompts), rounds) for start in range(rounds)) if turn]
    for number, articles in enumerate(turns, 1):
        first = (number - 1) % len(names)
        for name in names[first:] + names[:first]:
            with LlamaServer(ggufs[name], start_timeout_s=600) as server:
                for prompt in warm:
                    server.timed_completion(prompt, n_predict, timeout_s=600)
                samples[name] += [{**server.timed_completion(prompts[index], n_predict, timeout_s=600),
                                   "article": index, "round": number} for index in articles]
        log(f"gguf latency: round {number}/{len(turns)}: {len(articles)} articles on each of {', '.join(names)}")
    return samples


def summaries(samples: dict[str, list[dict]]) -> dict[str, dict]:
    """The serving report's summary (client wall time, prompt tokens, prompt evaluation and decoding apart) per
    candidate, held to the serving spec's defaults."""
    return {name: latency.summarize(rows, latency.SPEC_P50_MS, latency.SPEC_P95_MS) for name, rows in samples.items()}


def fastest(wall_ms: dict[str, dict[str, float]], tie: float) -> tuple[str, str]:
    """(the candidate to serve, why), from each candidate's client latency ``{"p50": ms, "p95": ms}`` in ladder
    order (smallest file first).

    The lowest median wins. Medians within ``tie`` (a share) of the lowest are a tie, measurement noise on a shared
    host: among them the lowest p95 wins, and p95s within ``tie`` of that are a tie again, which the smaller file
    wins (less memory and disk, as ``auto`` prefers)."""
    def ms(name: str) -> str:
        return f"{name} p50 {wall_ms[name]['p50']:.0f} / p95 {wall_ms[name]['p95']:.0f} ms"

    best_p50 = min(row["p50"] for row in wall_ms.values())
    tied = [name for name, row in wall_ms.items() if row["p50"] <= best_p50 * (1 + tie)]
    best_p95 = min(wall_ms[name]["p95"] for name in tied)
    close = [name for name in tied if wall_ms[name]["p95"] <= best_p95 * (1 + tie)]
    winner = close[0]
    others = "; ".join(ms(name) for name in wall_ms if name != winner)
    if len(tied) == 1:
        why = "the lowest p50"
    elif len(close) == 1:
        why = f"p50 within {tie:.0%} of {', '.join(n for n in tied if n != winner)}, and the lowest p95"
    else:
        why = f"p50 and p95 within {tie:.0%} of {', '.join(n for n in close if n != winner)}: the smaller file"
    return winner, f"{ms(winner)}: {why} (vs {others})"
