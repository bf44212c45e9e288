"""CPU training throughput and peak memory of the TRL + PEFT backend on the bundled sample, with the demo's settings.

    python benchmarks/train_tiny.py [--steps 30]
    python benchmarks/train_tiny.py --base-model DEQUANTIZED_270M_FOLDER --steps 8 --precision bf16 fp32 --rounds 2

Prints one JSON line per run: precision, steps, tokens seen, tokens/s, wall seconds, load average, and the process's
peak RSS so far (with several runs only the first line's is that run's own).
The default base is the smoke model; ``--base-model`` takes the real Gemma 3 270M (a de-quantized folder, e.g.
``$TITLEGEN_HOME/base_models/gguf-…``) with the demo's two turn-token rows trained. Several ``--precision`` values are
measured side by side, alternating for ``--rounds`` rounds so a change in the machine's load falls on all of them.
Results go in RESULTS.md.
"""

import argparse
import json
import os
import tempfile
from pathlib import Path

import datasets

from titlegen_assets.data.cleaning import CleaningRules, clean_rows
from titlegen_assets.data.sources import load_file, sample_path
from titlegen_assets.data.splitting import split_rows
from titlegen_assets.training.base_model import resolve_base_model
from titlegen_assets.training.environment import cpu_flags
from titlegen_assets.training.lora import train_lora
from titlegen_assets.training.settings import LoraSettings
from titlegen_assets.training.smoke import SMOKE_MODEL_ID


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--base-model", default=SMOKE_MODEL_ID)
    parser.add_argument("--precision", nargs="+", default=["auto"])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    real = args.base_model != SMOKE_MODEL_ID
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = clean_rows(load_file(sample_path(), "content", "title").rows, CleaningRules(content_max_chars=300)).kept
        splits = split_rows(rows, 42, 0.1, 0.1)
        datasets.DatasetDict({k: datasets.Dataset.from_list([{"content": r["content"], "title": r["title"]} for r in v])
                              for k, v in splits.items()}).save_to_disk(str(root / "splits"))
        for round_ in range(1, args.rounds + 1):
            for precision in args.precision:
                config = LoraSettings(
                    base_model=args.base_model, backend="trl", max_steps=args.steps, per_device_train_batch_size=8,
                    gradient_accumulation_steps=1, learning_rate=1e-3 if real else 2e-3, max_seq_length=512,
                    checkpoint_steps=args.steps if real else 10, gradient_checkpointing=False, precision=precision,
                    train_tokens=["<start_of_turn>", "<end_of_turn>"] if real else [])
                base = resolve_base_model(config.base_model, root)
                load = os.getloadavg()
                result = train_lora(config, str(root / "splits"), base, root / f"adapter-{round_}-{precision}",
                                    root / f"work-{round_}-{precision}", lambda _: None)
                print(json.dumps({"round": round_, "precision": result.precision, "steps": result.global_step,
                                  "tokens_seen": result.tokens_seen, "tokens_per_second": result.tokens_per_second,
                                  "wall_seconds": result.wall_seconds, **result.peak_memory, "device": result.device,
                                  "cpu_flags": sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}),
                                  "aten_cpu_capability": os.environ.get("ATEN_CPU_CAPABILITY", "default"),
                                  "load_before": [round(x, 2) for x in load]}), flush=True)


if __name__ == "__main__":
    main()
