"""Serving latency of the fine-tuned model's Q4_K_M GGUF on llama.cpp's llama-server (the runtime Ollama uses for
GGUF models), on 127.0.0.1 only, with the exact prompt training used, at concurrency 1 and 2.

    python benchmarks/serve_latency.py MERGED_MODEL_DIR [--requests 30] [--warmup 2] [--time-limit-s 240]
        [--variant "old=" --variant "new=-t 2 -tb 2 -ub 128" --rounds 3]
        [--gguf A.gguf B.gguf ...]

The GGUF is exported by llama.cpp into ``<MERGED_MODEL_DIR>.gguf/`` (reused when there). For each concurrency a
fresh server is started with that many slots, warmed up (not counted), and sent at most ``--requests`` requests, one
per distinct test article of the sample (a repeated article is answered from llama-server's prompt cache, which no
user's new article is; the first line says how many were available), stopping early at ``--time-limit-s``; then it
is stopped by its pid. Prints one JSON line per concurrency with the product's latency summary
(``titlegen_assets/serving/latency.py``: client wall time, prompt tokens, prompt evaluation and decoding apart)
against the spec (LatencyConfig: p50 ≤ 500 ms, p95 ≤ 1 s). ``--variant NAME=ARGS`` (repeatable) adds llama-server
arguments; the variants are measured side by side, alternating for ``--rounds`` rounds so that a change in the
machine's load falls on all of them, and each line carries the load average. ``--gguf`` serves files already made
(e.g. a mixed ``llama-quantize`` recipe) instead of exporting ``--quantization``; several alternate the same way.
Results go in RESULTS.md.
"""

import argparse
import itertools
import json
import os
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sample_split import sample_test_rows
from transformers import AutoTokenizer

from titlegen_assets.defs.serving_assets import LatencyConfig
from titlegen_assets.evaluation.llama_server import PREFIX_CACHE_ARGS, LlamaServer, training_prompt
from titlegen_assets.export import gguf_export
from titlegen_assets.serving import latency


def run(gguf: Path, warm: list[str], prompts: list[str], concurrency: int, time_limit_s: float, n_predict: int,
        threads: int | None, extra_args: tuple[str, ...] = ()) -> dict:
    with LlamaServer(gguf, parallel=concurrency, threads=threads, extra_args=extra_args) as server:
        for prompt in warm:
            server.timed_completion(prompt, n_predict)
        deadline = time.monotonic() + time_limit_s

        def bounded(prompt: str) -> dict | None:  # requests not yet started at the deadline are not sent
            return server.timed_completion(prompt, n_predict) if time.monotonic() < deadline else None

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            samples = [s for s in pool.map(bounded, prompts) if s is not None]
        wall_s = time.perf_counter() - started
    spec = LatencyConfig()
    summary = latency.summarize(samples, spec.p50_max_ms, spec.p95_max_ms)
    summary.update(concurrency=concurrency, run_wall_s=round(wall_s, 1),
                   aggregate_tokens_per_second=round(summary["eval_tokens"] / wall_s, 1),
                   mean_generated_tokens=round(summary["eval_tokens"] / len(samples), 1),
                   stopped_at_end_of_turn=sum(s["stop_type"] == "eos" for s in samples) / len(samples),
                   example=samples[0]["response"])
    return summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--quantization", default="Q4_K_M")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--time-limit-s", type=float, default=240)
    parser.add_argument("--n-predict", type=int, default=48)
    parser.add_argument("--content-max-chars", type=int, default=300)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=None, help="llama-server threads (default: its own, the cores)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=ARGS",
                        help="llama-server arguments to compare (repeatable); default: one variant with none")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the variants this many times")
    parser.add_argument("--gguf", type=Path, nargs="+", help="serve these GGUF files instead of exporting one")
    args = parser.parse_args()
    variants = [(name, tuple(shlex.split(extra))) for name, extra in (v.split("=", 1) for v in args.variant)]
    variants = variants or [("product", PREFIX_CACHE_ARGS)]
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    contents = [row["content"] for row in sample_test_rows(args.content_max_chars)]
    warm, measured = latency.distinct_articles(contents, args.requests, args.warmup)
    warm, prompts = ([training_prompt(tokenizer, content) for content in part] for part in (warm, measured))
    print(json.dumps({"requests_asked": args.requests, "requests": len(prompts), "warmup": len(warm),
                      "articles_available": len(set(contents)), "each_article_sent_once": True}), flush=True)
    if args.gguf:
        ggufs = args.gguf
    else:
        made = gguf_export.exported_files(args.model_dir, Path(f"{args.model_dir}.gguf"), [args.quantization.upper()])
        ggufs = [Path(made["files"][args.quantization.upper()]["path"])]
    for round_ in range(1, args.rounds + 1):
        for concurrency in args.concurrency:
            for gguf, (name, extra) in itertools.product(ggufs, variants):
                load = os.getloadavg()
                summary = run(gguf, warm, prompts, concurrency, args.time_limit_s, args.n_predict, args.threads,
                              extra)
                print(json.dumps({"variant": name, "server_args": " ".join(extra), "round": round_, "gguf": gguf.name,
                                  "cpus": os.cpu_count(), "threads": args.threads or "default",
                                  "load_before": [round(x, 2) for x in load], **summary}, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
