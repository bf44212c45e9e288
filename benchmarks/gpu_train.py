"""Unsloth vs TRL + PEFT, side by side: LoRA training on the real Gemma 3n E4B architecture with random weights.

    python benchmarks/gpu_train.py [--steps 30]          # on an NVIDIA GPU; appends to benchmarks/RESULTS.md
    python benchmarks/gpu_train.py --dry-run             # CPU-sized (CI): tiny dimensions, TRL only, 3 steps

The model is ``Gemma3nForConditionalGeneration`` built from google/gemma-3n-E4B-it's published text config
(``gemma3n_e4b_text_config.json``; vision and audio towers at transformers' defaults, which are the E4B's) with random
weights, saved once in bf16 with the smoke tokenizer in a real Gemma 3n processor: no download. Each backend then
trains through the product's own ``train_lora`` at the production settings (batch 4 x 8, LoRA r 16, max length 2048,
gradient checkpointing, bf16; Unsloth in 4 bit) on the bundled sample, each in its own process so that peak VRAM
and Unsloth's patches do not leak between them. Reported: tokens/s, peak VRAM (``torch.cuda.max_memory_allocated``),
the loss after N steps. The training time includes the one evaluation and checkpoint at step N, as in the pipeline.
The titles are noise; this measures speed and memory, not quality.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
E4B_TEXT_CONFIG = HERE / "gemma3n_e4b_text_config.json"
RESULTS = HERE / "RESULTS.md"


def e4b_config():
    """Gemma3nConfig with the published E4B text config; the vision and audio configs are transformers' defaults."""
    from transformers import Gemma3nConfig

    text = {k: v for k, v in json.loads(E4B_TEXT_CONFIG.read_text()).items() if not k.startswith("_")}
    config = Gemma3nConfig(text_config=text)
    config.architectures = ["Gemma3nForConditionalGeneration"]
    return config


def build_e4b(target: Path) -> None:
    """Random-weight E4B in bf16, built on the GPU and saved with a Gemma 3n processor around the smoke tokenizer."""
    import torch
    from transformers import Gemma3nForConditionalGeneration

    from titlegen_assets.training.smoke import multimodal_processor

    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Gemma3nForConditionalGeneration._from_config(e4b_config(), dtype=torch.bfloat16)
    model.save_pretrained(target)
    multimodal_processor().save_pretrained(target)


def write_splits(target: Path, content_max_chars: int) -> None:
    """The bundled sample, cleaned and split as the pipeline does."""
    import datasets

    from titlegen_assets.data.cleaning import CleaningRules, clean_rows
    from titlegen_assets.data.sources import load_file, sample_path
    from titlegen_assets.data.splitting import split_rows

    rows = clean_rows(load_file(sample_path(), "content", "title").rows,
                      CleaningRules(content_max_chars=content_max_chars)).kept
    splits = split_rows(rows, 42, 0.1, 0.1)
    datasets.DatasetDict({name: datasets.Dataset.from_list([{"content": r["content"], "title": r["title"]} for r in splits[name]])
                          for name in ("train", "validation")}).save_to_disk(str(target))


def train_one(backend: str, base: str, splits: str, steps: int, dry_run: bool) -> dict:
    """One backend through the product's train_lora; the caller runs this in a fresh process."""
    from titlegen_assets.training.lora import train_lora
    from titlegen_assets.training.settings import LoraSettings

    settings = dict(per_device_train_batch_size=2, gradient_accumulation_steps=1, max_seq_length=512,
                    gradient_checkpointing=False) if dry_run else {}
    config = LoraSettings(base_model=base, backend=backend, max_steps=steps, checkpoint_steps=steps, logging_steps=1,
                            **settings)
    with tempfile.TemporaryDirectory() as tmp:
        result = train_lora(config, splits, base, Path(tmp) / "adapter", Path(tmp) / "work", lambda _: None)
    losses = [entry["loss"] for entry in result.log_history if "loss" in entry]
    return {"backend": backend, "steps": result.global_step, "precision": result.precision,
            "tokens_per_second": result.tokens_per_second, "tokens_seen": result.tokens_seen,
            "wall_seconds": result.wall_seconds, "loss_after_steps": losses[-1] if losses else None,
            "peak_vram_mib": result.peak_memory.get("gpu_peak_allocated_mb"),
            "peak_rss_mib": result.peak_memory["process_peak_rss_mb"], "environment": result.environment}


def in_own_process(*args: str) -> str:
    """This script with ``args`` in a fresh Python: its last line of output."""
    completed = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed:\n{completed.stderr[-3000:]}")
    return completed.stdout.strip().splitlines()[-1]


def gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"


def markdown(results: list[dict], heading: str, machine: str) -> str:
    env = results[0]["environment"]
    lines = [f"\n## {heading}\n",
             f"{machine}; torch {env['torch']} (CUDA {env['cuda']}), transformers {env['transformers']}, "
             f"trl {env['trl']}, peft {env['peft']}, unsloth {results[-1]['environment'].get('unsloth', '-')}; "
             f"{datetime.date.today().isoformat()}. Random weights, bundled sample.\n",
             "| backend | precision | tokens/s | peak VRAM (MiB) | loss after N steps | tokens seen | train wall (s) |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['backend']} | {r['precision']} | {r['tokens_per_second']:,.0f} | {r['peak_vram_mib']} | "
                     f"{r['loss_after_steps']:.3f} | {r['tokens_seen']:,} | {r['wall_seconds']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--backends", default="unsloth,trl")
    parser.add_argument("--dry-run", action="store_true", help="CPU-sized: smoke dimensions, TRL only, 3 steps")
    parser.add_argument("--results", type=Path, help="markdown file to append to (default: RESULTS.md on a GPU run)")
    parser.add_argument("--worker", nargs=3, metavar=("BACKEND", "BASE", "SPLITS"), help=argparse.SUPPRESS)
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(train_one(*args.worker, args.steps, args.dry_run)))
        return
    if args.build:
        build_e4b(args.build)
        return

    from titlegen_assets.training import smoke

    e4b_config()  # the published config still builds with this transformers, in the dry run too
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_splits(root / "splits", content_max_chars=300 if args.dry_run else 1200)
        if args.dry_run:
            base, backends, steps = smoke.build(root / "smoke"), ["trl"], min(args.steps, 3)
        else:
            if gpu_name() == "none":
                sys.exit("no CUDA GPU here: run with --dry-run, or on an NVIDIA machine")
            base, backends, steps = root / "e4b", args.backends.split(","), args.steps
            in_own_process("--build", str(base))  # frees the GPU before the first backend loads the model
        flags = ["--steps", str(steps)] + (["--dry-run"] if args.dry_run else [])
        results = [json.loads(in_own_process("--worker", backend, str(base), str(root / "splits"), *flags))
                   for backend in backends]
    for result in results:
        print(json.dumps({k: v for k, v in result.items() if k != "environment"}))
    target = args.results or (None if args.dry_run else RESULTS)
    if target:
        with target.open("a") as out:
            if args.dry_run:
                out.write(markdown(results, f"CPU dry run of `benchmarks/gpu_train.py` (smoke dimensions, {steps} steps)",
                                   "This machine's CPU"))
            else:
                out.write(markdown(results, f"GPU: Unsloth vs TRL + PEFT on the Gemma 3n E4B architecture "
                                   f"(`benchmarks/gpu_train.py --steps {steps}`, production batch settings)",
                                   f"One {gpu_name()}"))
        print(f"appended to {target}")


if __name__ == "__main__":
    main()
