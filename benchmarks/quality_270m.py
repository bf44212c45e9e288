"""Quality of the real Gemma 3 270M fine-tune on the bundled sample, scored by the product's own eval gate.

    python benchmarks/quality_270m.py [--set lora_adapter.num_train_epochs=3 ...] [--home DIR] [--base-models DIR]

Materializes raw_dataset → merged_hf_model and the eval gate with ``configs/demo.yaml`` (``--set`` overrides any
op's config field) in a fresh artifact root, then prints a markdown table — ROUGE-1/2/L, BLEU-1, title-only rate and
length compliance on the test split for the base model, Lead-1 and the fine-tune — from the gate's own predictions
file, with the training config, the gate's verdicts, each step's wall time, the CPU's bf16/AVX flags and the load
average before and after (the machine may be shared). ``--base-models`` reuses a folder of de-quantized base models
(``<root>/base_models`` of an earlier run) instead of de-quantizing again. Results go in RESULTS.md.
"""

import argparse
import json
import os
import tempfile
import time
from importlib import resources
from pathlib import Path

import dagster as dg
import yaml

from titlegen_assets.definitions import defs
from titlegen_assets.evaluation import metrics
from titlegen_assets.training.environment import cpu_flags

THROUGH_GATE = ["raw_dataset", "cleaned_splits", "lora_adapter", "merged_hf_model"]
KEYS = ("rouge1", "rouge2", "rougeL", "bleu1", "title_only_rate", "length_compliance")


def run_config(overrides: list[str]) -> dict:
    config = yaml.safe_load((resources.files("titlegen_assets") / "configs" / "demo.yaml").read_text())
    for op in ("hf_repo", "ollama_model", "latency_report"):  # not selected, so they take no config
        config["ops"].pop(op)
    for item in overrides:
        path, value = item.split("=", 1)
        op, field = path.split(".", 1)
        config["ops"].setdefault(op, {"config": {}})["config"][field] = yaml.safe_load(value)
    return config


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", action="append", default=[], metavar="OP.FIELD=VALUE")
    parser.add_argument("--home", help="artifact root to use (and keep); a temporary one by default")
    parser.add_argument("--base-models", type=Path, help="a base_models folder to reuse (linked into the root)")
    args = parser.parse_args()
    config = run_config(args.set)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.home or tmp)
        if args.base_models:
            root.mkdir(parents=True, exist_ok=True)
            (root / "base_models").symlink_to(args.base_models.resolve(), target_is_directory=True)
        instance = dg.DagsterInstance.ephemeral()
        os.environ["TITLEGEN_HOME"] = str(root)  # the artifact root is the deployment's: TITLEGEN_HOME, not config
        started = time.perf_counter()
        result = dg.materialize([*defs.assets, *defs.asset_checks], selection=THROUGH_GATE, run_config=config,
                                resources=defs.resources, instance=instance, raise_on_error=False)
        wall = time.perf_counter() - started
        steps = {s.step_key: round(s.end_time - s.start_time, 1) for s in instance.get_run_step_stats(result.run_id)}
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        [report] = sorted((root / "reports" / "eval").glob("*.jsonl"), key=lambda p: p.stat().st_mtime)[-1:]
        rows = [json.loads(line) for line in report.read_text().splitlines()]
        trained = json.loads(next((root / "adapters").glob("*/train_result.json")).read_text())
    references = [r["reference"] for r in rows]
    gate = config["ops"]["eval_gate"]["config"]
    low, high = gate.get("title_min_chars", 8), gate.get("title_max_chars", 30)
    print(f"| system | {' | '.join(KEYS)} |\n|---|{'---|' * len(KEYS)}")
    for system in ("base model", "lead-1", "fine-tuned"):
        if system in rows[0]:
            score = metrics.score([r[system] for r in rows], references, low, high)
            print(f"| {system} | {' | '.join(f'{score[k]:.3f}' for k in KEYS)} |")
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})
    print(json.dumps({"test_rows": len(rows), "cpu_flags": flags, "cpus": os.cpu_count(),
                      "load_before": [round(x, 2) for x in load_before],
                      "load_after": [round(x, 2) for x in os.getloadavg()], "gate": checks, "success": result.success, "wall_seconds": round(wall, 1),
                      "steps_seconds": steps, "precision": trained["precision"], "tokens_seen": trained["tokens_seen"],
                      "tokens_per_second": trained["tokens_per_second"], "train_seconds": trained["wall_seconds"],
                      "train_loss": trained["train_loss"], "eval_loss": trained["eval_loss"],
                      "lora_adapter": config["ops"]["lora_adapter"]["config"],
                      "cleaned_splits": config["ops"]["cleaned_splits"]["config"]}, ensure_ascii=False))
    for row in rows[:10]:
        print(f"| {row['reference']} | {row['fine-tuned']} |")


if __name__ == "__main__":
    main()
