"""One script for a rented NVIDIA GPU (no network needed): preflight in the first minute, then what can run there.

    python benchmarks/gpu_check.py                 # on the GPU machine; appends its results to benchmarks/RESULTS.md
    python benchmarks/gpu_check.py --dry-run       # CPU-sized (CI): same steps, smoke dimensions, nothing appended

1. Preflight (fails at once, before any training): CUDA visible, bf16 supported, the NVIDIA driver new enough for the
   CUDA 13 torch wheel of constraints/gpu.txt (580+), free disk, the base model reachable offline (a local folder or
   the Hugging Face cache).
2. Unsloth vs TRL + PEFT on the Gemma 3n E4B architecture with random weights (``benchmarks/gpu_train.py``).
3. The gate's generation speed: titles per second over test articles (the eval gate's ``generate_titles``).
4. The CUDA path on the smoke model: ``lora_adapter`` -> ``merged_hf_model`` (+ eval gate) -> GGUF (llama.cpp).
Each step's outcome (ran, failed with why, or not run with why) goes into the results, in RESULTS.md's form.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
MIN_DRIVER = 580  # CUDA 13.0 wheels (torch 2.13.0 from PyPI) need an R580 driver
MIN_FREE_GB = 40


def preflight(base_model: str, dry_run: bool) -> list[tuple[str, bool, str]]:
    """(check, passed, detail) for each thing a GPU run needs; all of it takes seconds."""
    import torch

    checks = []
    cuda = torch.cuda.is_available()
    checks.append(("CUDA visible to torch", cuda, torch.cuda.get_device_name(0) if cuda else
                   f"torch {torch.__version__} sees no GPU (CUDA build: {torch.version.cuda or 'none'})"))
    checks.append(("bf16 supported", cuda and torch.cuda.is_bf16_supported(), "" if cuda else "no GPU"))
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30).stdout.split()[0]
        checks.append((f"NVIDIA driver >= {MIN_DRIVER} (CUDA 13 wheels)", int(driver.split(".")[0]) >= MIN_DRIVER, driver))
    except (OSError, IndexError, ValueError, subprocess.TimeoutExpired) as error:
        checks.append((f"NVIDIA driver >= {MIN_DRIVER} (CUDA 13 wheels)", False, f"nvidia-smi: {error or 'no output'}"))
    free = shutil.disk_usage(os.environ.get("TITLEGEN_HOME", Path.home())).free / 2**30
    checks.append((f"free disk >= {MIN_FREE_GB} GiB", free >= MIN_FREE_GB, f"{free:.0f} GiB"))
    checks.append(("base model reachable offline", *base_model_reachable(base_model)))
    return checks


def base_model_reachable(name: str) -> tuple[bool, str]:
    if Path(name).expanduser().is_dir():
        return (Path(name).expanduser() / "config.json").is_file(), f"local folder {name}"
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(name, "config.json")
    return isinstance(cached, str), f"{name}: {'in the Hugging Face cache' if isinstance(cached, str) else 'not cached; download it first (no network on the GPU machine)'}"


def gate_speed(base: str, articles: list[str], max_new_tokens: int) -> str:
    from titlegen_assets.evaluation.generation import generate_titles
    from titlegen_assets.training.merge import load_for_generation

    model, tokenizer = load_for_generation(base)
    started = time.perf_counter()
    titles = generate_titles(model, tokenizer, articles, max_new_tokens)
    wall = time.perf_counter() - started
    return f"{len(titles)} titles in {wall:.1f} s ({len(titles) / wall:.2f} titles/s, max {max_new_tokens} new tokens)"


def cuda_path(root: Path) -> str:
    """lora_adapter -> merged_hf_model (with the eval gate) -> GGUF, on the smoke model, backend auto."""
    import dagster as dg

    from titlegen_assets.definitions import defs
    from titlegen_assets.defs.data_assets import cleaned_splits, cleaned_splits_checks, raw_dataset
    from titlegen_assets.defs.evaluation_checks import eval_gate
    from titlegen_assets.defs.training_assets import lora_adapter, merged_hf_model

    os.environ["TITLEGEN_HOME"] = str(root)
    run_config = {"ops": {
        "raw_dataset": {"config": {"source": "sample"}}, "cleaned_splits": {"config": {"content_max_chars": 300}},
        "lora_adapter": {"config": dict(base_model="titlegen/smoke-gemma3n-tiny", max_steps=4, checkpoint_steps=4,
                                        per_device_train_batch_size=2, gradient_accumulation_steps=1,
                                        max_seq_length=512, gradient_checkpointing=False, load_in_4bit=False)},
        "merged_hf_model": {"config": {"gguf": "BF16"}},  # k-quants need real dimensions; the smoke model's are toy
        "eval_gate": {"config": {"rouge_l_min": 0.0, "bleu_1_min": 0.0, "title_only_min": 0.0,
                                 "length_compliance_min": 0.0, "stop_rate_min": 0.0, "max_new_tokens": 8,
                                 "max_samples": 8, "compare_base_model": False}}}}
    result = dg.materialize([raw_dataset, cleaned_splits, cleaned_splits_checks, lora_adapter, merged_hf_model,
                             eval_gate],
                            run_config=run_config, resources=dict(defs.resources))
    if not result.success:
        raise RuntimeError("the run failed; its step logs are above")
    backend = result.asset_materializations_for_node("lora_adapter")[0].metadata["backend"].value
    gguf = result.output_for_node("merged_hf_model")["gguf"]
    if gguf["skipped"]:
        return f"backend {backend}: trained, merged, gated; GGUF not made: {gguf['skipped']}"
    made = ", ".join(f"{q} {f['mib']} MiB" for q, f in gguf["files"].items())
    return f"backend {backend}: trained, merged, GGUF made ({made}) and gated through llama-server"


def step(results: list[tuple[str, str, str]], name: str, run) -> None:
    started = time.perf_counter()
    try:
        detail = run()
        results.append((name, "ran", f"{detail} ({time.perf_counter() - started:.0f} s)"))
    except Exception as error:  # each step's failure is reported with its cause, and the next step still runs
        results.append((name, "failed", f"{type(error).__name__}: {str(error)[-400:]}"))
    print(f"{name}: {results[-1][1]}: {results[-1][2]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU-sized: smoke dimensions; preflight only reported")
    parser.add_argument("--base-model", default="unsloth/gemma-3n-E4B-it", help="what the real run will train")
    parser.add_argument("--steps", type=int, default=30, help="benchmark steps per backend (GPU)")
    parser.add_argument("--results", type=Path, help="markdown file to append to (default: RESULTS.md on a GPU)")
    args = parser.parse_args()
    started = time.perf_counter()
    checks = preflight(args.base_model, args.dry_run)
    for name, passed, detail in checks:
        print(f"preflight: {'ok  ' if passed else 'FAIL'} {name}: {detail}", flush=True)
    failed = [name for name, passed, _ in checks if not passed]
    if failed and not args.dry_run:
        sys.exit(f"preflight failed ({', '.join(failed)}) after {time.perf_counter() - started:.0f} s: fix it before "
                 "renting GPU time for a run")

    from titlegen_assets.data.sources import load_file, sample_path
    from titlegen_assets.training import smoke

    results: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench = [sys.executable, str(HERE / "gpu_train.py"), "--results", str(root / "bench.md")]
        bench += ["--dry-run"] if args.dry_run else ["--steps", str(args.steps)]
        step(results, "Unsloth vs TRL + PEFT, E4B architecture" + (" (dry: smoke, TRL only)" if args.dry_run else ""),
             lambda: subprocess.run(bench, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-2])
        # first in this process: on CUDA, lora_adapter imports unsloth before transformers (the steps below load it)
        step(results, "lora_adapter -> merged_hf_model -> GGUF (smoke model)", lambda: cuda_path(root / "home"))
        articles = [row["content"][:300] for row in load_file(sample_path(), "content", "title").rows[:8 if args.dry_run else 64]]
        base = smoke.build(root / "smoke")
        step(results, "gate generation speed (smoke model)", lambda: gate_speed(str(base), articles, 8 if args.dry_run else 48))
        bench_md = (root / "bench.md").read_text() if (root / "bench.md").is_file() else ""
    import torch

    where = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "this machine's CPU (dry run)"
    lines = [f"\n## `benchmarks/gpu_check.py`{' --dry-run' if args.dry_run else ''}: {where}, "
             f"{datetime.date.today().isoformat()}\n", "| preflight | result | detail |", "|---|---|---|"]
    lines += [f"| {name} | {'ok' if passed else 'FAILED'} | {detail} |" for name, passed, detail in checks]
    lines += ["", "| step | outcome | detail |", "|---|---|---|"]
    lines += [f"| {name} | {outcome} | {detail} |" for name, outcome, detail in results]
    report = "\n".join(lines) + "\n" + bench_md
    print(report)
    target = args.results or (None if args.dry_run else RESULTS)
    if target:
        with target.open("a") as out:
            out.write(report)
        print(f"appended to {target}")
    if any(outcome != "ran" for _, outcome, _ in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
