"""Latency statistics for the serving report: percentiles, throughput and the spec verdict. Pure functions."""

from __future__ import annotations

NS = 1e9
#: The serving spec: client latency at the median and the 95th percentile, milliseconds (LatencyConfig's defaults,
#: the latency_spec check's description and the README all read these).
SPEC_P50_MS, SPEC_P95_MS = 500, 1000


def spec_in_words(p50_max_ms: float = SPEC_P50_MS, p95_max_ms: float = SPEC_P95_MS) -> str:
    return f"client latency p50 ≤ {p50_max_ms:g} ms and p95 ≤ {p95_max_ms:g} ms"


def distinct_articles(contents: list[str], requests: int, warmup: int) -> tuple[list[str], list[str]]:
    """The warm-up and the measured articles, every one sent once: a server answers a repeated article from its
    prompt cache (the whole prompt already evaluated), which no new article a user sends ever is. Warm-ups are never
    measured; with fewer distinct articles than asked, fewer requests are measured (at least one) and the report
    says how many were available."""
    unique = list(dict.fromkeys(contents))
    warm = unique[:min(warmup, max(len(unique) - 1, 0))]
    return warm, unique[len(warm):len(warm) + requests]


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p95/p99 (linear interpolation, numpy's default), in the unit given."""
    import numpy as np  # not at module level: the code location's import stays light

    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    p50, p95, p99 = np.percentile(np.asarray(values, dtype=float), [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}


def summarize(samples: list[dict], p50_max_ms: float, p95_max_ms: float) -> dict:
    """Client wall time, time to first token, the server's own durations, tokens/s, and pass/fail vs the spec.

    Each sample: ``wall_ms``, ``ttft_ms`` and the final response's ``total_duration``, ``load_duration``,
    ``prompt_eval_duration``, ``eval_duration`` (nanoseconds), ``prompt_eval_count`` and ``eval_count``. Prompt
    evaluation (compute-bound, grows with the article) and decoding (memory-bound, per generated token) are reported
    apart: they answer to different levers.
    """
    wall = percentiles([s["wall_ms"] for s in samples])
    eval_seconds = sum(s["eval_duration"] for s in samples) / NS
    summary = {
        "requests": len(samples),
        "wall_ms": wall,
        "ttft_ms": percentiles([s["ttft_ms"] for s in samples]),
        "server_total_ms": percentiles([s["total_duration"] / 1e6 for s in samples]),
        "server_load_ms": percentiles([s["load_duration"] / 1e6 for s in samples]),
        "server_prompt_eval_ms": percentiles([s["prompt_eval_duration"] / 1e6 for s in samples]),
        "server_eval_ms": percentiles([s["eval_duration"] / 1e6 for s in samples]),
        "prompt_tokens": percentiles([s["prompt_eval_count"] for s in samples]),
        "eval_tokens": sum(s["eval_count"] for s in samples),
        "tokens_per_second": round(sum(s["eval_count"] for s in samples) / eval_seconds, 1) if eval_seconds else 0.0,
        "spec": {"p50_max_ms": p50_max_ms, "p95_max_ms": p95_max_ms},
    }
    summary["passed"] = bool(wall["p50"] <= p50_max_ms and wall["p95"] <= p95_max_ms)
    return summary
