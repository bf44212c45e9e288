"""CPU training throughput and peak memory of the TRL + PEFT backend on the bundled sample, with the demo's settings.

    python benchmarks/train_tiny.py [--steps 30]
    python benchmarks/train_tiny.py --base-model DEQUANTIZED_270M_FOLDER --steps 8 --precision bf16 fp32 --rounds 2

Prints one JSON line per run: precision, steps, tokens seen, tokens/s, wall seconds, load average, and the process's
peak RSS so far (with several runs only the first line's is that run's own).
The settings are a shipped config's ``lora_adapter`` (``--config``: ``smoke.yaml``, the smoke model, by default;
``demo.yaml`` for the real Gemma 3 270M, with ``--base-model`` naming its de-quantized folder, e.g.
``$TITLEGEN_HOME/base_models/gguf-…``, so it is not de-quantized again). Several ``--precision`` values are
measured side by side, alternating for ``--rounds`` rounds so a change in the machine's load falls on all of them.
Results go in RESULTS.md.
"""

import argparse
import json
import os
import tempfile
from importlib import resources
from pathlib import Path

import datasets
import yaml

from titlegen_assets.data.cleaning import CleaningRules, clean_rows
from titlegen_assets.data.sources import load_file, sample_path
from titlegen_assets.data.splitting import split_rows
from titlegen_assets.training.base_model import resolve_base_model
from titlegen_assets.training.environment import cpu_flags
from titlegen_assets.training.lora import train_lora
from titlegen_assets.training.settings import LoraSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--config", default="smoke.yaml", help="the shipped config whose lora_adapter settings to use")
    parser.add_argument("--base-model", help="instead of the config's base_model")
    parser.add_argument("--precision", nargs="+", help="instead of the config's precision (several: side by side)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    shipped = yaml.safe_load((resources.files("titlegen_assets") / "configs" / args.config).read_text())
    settings = shipped["ops"]["lora_adapter"]["config"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = clean_rows(load_file(sample_path(), "content", "title").rows, CleaningRules(content_max_chars=300)).kept
        splits = split_rows(rows, 42, 0.1, 0.1)
        datasets.DatasetDict({k: datasets.Dataset.from_list([{"content": r["content"], "title": r["title"]} for r in v])
                              for k, v in splits.items()}).save_to_disk(str(root / "splits"))
        for round_ in range(1, args.rounds + 1):
            for precision in args.precision or [settings.get("precision", "auto")]:
                config = LoraSettings(**{**settings, "base_model": args.base_model or settings["base_model"],
                                         "max_steps": args.steps, "precision": precision,
                                         "checkpoint_steps": min(settings["checkpoint_steps"], args.steps)})
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
