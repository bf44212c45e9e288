"""CPU training throughput and peak memory of the smoke run (TRL + PEFT backend, bundled sample, demo settings).

    python benchmarks/train_tiny.py [--steps 30]

Prints one JSON line: steps, tokens seen, tokens/s, wall seconds, peak process RSS. Results go in RESULTS.md.
"""

import argparse
import json
import tempfile
from pathlib import Path

import datasets

from titlegen_assets.data.cleaning import CleaningRules, clean_rows
from titlegen_assets.data.sources import load_file, sample_path
from titlegen_assets.data.splitting import split_rows
from titlegen_assets.training.base_model import resolve_base_model
from titlegen_assets.training.lora import train_lora
from titlegen_assets.training.settings import LoraSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    steps = parser.parse_args().steps
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = clean_rows(load_file(sample_path(), "content", "title").rows, CleaningRules(content_max_chars=300)).kept
        splits = split_rows(rows, 42, 0.1, 0.1)
        datasets.DatasetDict({k: datasets.Dataset.from_list([{"content": r["content"], "title": r["title"]} for r in v])
                              for k, v in splits.items()}).save_to_disk(str(root / "splits"))
        config = LoraSettings(base_model="titlegen/smoke-gemma3n-tiny", backend="trl", max_steps=steps,
                                per_device_train_batch_size=8, gradient_accumulation_steps=1, learning_rate=2e-3,
                                max_seq_length=512, checkpoint_steps=10, gradient_checkpointing=False)
        base = resolve_base_model(config.base_model, root)
        result = train_lora(config, str(root / "splits"), base, root / "adapter", root / "work", lambda _: None)
    print(json.dumps({"steps": result.global_step, "tokens_seen": result.tokens_seen,
                      "tokens_per_second": result.tokens_per_second, "wall_seconds": result.wall_seconds,
                      **result.peak_memory, "device": result.device}))


if __name__ == "__main__":
    main()
