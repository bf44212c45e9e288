"""How much Q4_K_M changes the titles: a merged model exported by llama.cpp at BF16 and at Q4_K_M, both served by
llama-server, greedy titles for the sample's test split from the training prompt.

    python benchmarks/gguf_agreement.py MERGED_MODEL_DIR [--content-max-chars 300] [--n-predict 48] [--articles N]
        [--quantizations BF16 Q4_K_M Q5_K_M ...]

Prints one JSON line: for each quantization after the first (the reference, BF16 by default) the share of its titles
equal to the reference's and their mean character ROUGE-L against them; for each, its ROUGE-L against the reference
titles, how often it stopped at <end_of_turn>, its file size; and the titles themselves. The GGUFs are
kept beside the model under ``<MERGED_MODEL_DIR>.gguf/``. Results go in RESULTS.md.
"""

import argparse
import json
import time
from pathlib import Path

from sample_split import sample_test_rows
from transformers import AutoTokenizer

from titlegen_assets.evaluation import metrics
from titlegen_assets.evaluation.llama_server import LlamaServer, training_prompt
from titlegen_assets.export import gguf_export


def titles(gguf: Path, prompts: list[str], n_predict: int) -> tuple[list[str], list[str]]:
    """Greedy titles and why each stopped (``eos``: at <end_of_turn>/<eos>; ``limit``: ran out of n_predict)."""
    with LlamaServer(gguf, threads=1) as server:  # one thread: speed is not measured here, and it suits a shared machine
        answers = [server.complete(prompt, n_predict, timeout_s=600) for prompt in prompts]
    return [a["content"].strip() for a in answers], [a["stop_type"] for a in answers]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--content-max-chars", type=int, default=300)
    parser.add_argument("--n-predict", type=int, default=48)
    parser.add_argument("--articles", type=int, default=None, help="only the first N test articles (default: all)")
    parser.add_argument("--quantizations", nargs="+", default=["BF16", "Q4_K_M"])
    args = parser.parse_args()
    rows = sample_test_rows(args.content_max_chars)[: args.articles]
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    prompts = [training_prompt(tokenizer, row["content"]) for row in rows]
    references = [row["title"] for row in rows]
    result = {"model": str(args.model_dir), "articles": len(rows)}
    outputs = {}
    for quantization in args.quantizations:
        started = time.perf_counter()
        made = gguf_export.exported_files(args.model_dir, Path(f"{args.model_dir}.gguf"), [quantization.upper()])
        gguf = Path(made["files"][quantization.upper()]["path"])
        exported_s = time.perf_counter() - started
        outputs[quantization], stops = titles(gguf, prompts, args.n_predict)
        result[quantization] = {
            "file_mib": round(gguf.stat().st_size / 2**20, 1), "export_and_generate_s": round(time.perf_counter() - started, 1),
            "export_s": round(exported_s, 1), "stopped_at_end_of_turn": stops.count("eos") / len(rows),
            "rouge_l_vs_reference": round(metrics.rouge(outputs[quantization], references)["rougeL"], 3),
        }
    first, *others = args.quantizations
    for quantization in others:
        result[quantization]["equal_to_" + first] = sum(
            a == b for a, b in zip(outputs[quantization], outputs[first])) / len(rows)
        result[quantization]["rouge_l_vs_" + first] = round(metrics.rouge(outputs[quantization], outputs[first])["rougeL"], 3)
    result["titles"] = [{"reference": r, **{q: outputs[q][i] for q in args.quantizations}}
                        for i, r in enumerate(references)]
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
