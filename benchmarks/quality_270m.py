"""Quality of the real Gemma 3 270M fine-tune on the bundled sample, scored by the product's own eval gate.

    python benchmarks/quality_270m.py [--set lora_adapter.num_train_epochs=3 ...] [--home DIR]

Materializes raw_dataset → merged_hf_model and the eval gate with ``configs/demo.yaml`` (``--set`` overrides any
op's config field) in a fresh artifact root, then prints a markdown table — ROUGE-1/2/L, BLEU-1, title-only rate and
length compliance on the test split for the base model, Lead-1 and the fine-tune — from the gate's own predictions
file, with the training config, the gate's verdicts and each step's wall time. Results go in RESULTS.md.
"""

import argparse
import json
import tempfile
import time
from importlib import resources
from pathlib import Path

import dagster as dg
import yaml

from titlegen_assets.definitions import defs
from titlegen_assets.defs.resources import ArtifactStore
from titlegen_assets.evaluation import metrics

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
    args = parser.parse_args()
    config = run_config(args.set)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.home or tmp)
        instance = dg.DagsterInstance.ephemeral()
        started = time.perf_counter()
        result = dg.materialize([*defs.assets, *defs.asset_checks], selection=THROUGH_GATE, run_config=config,
                                resources={**defs.resources, "artifacts": ArtifactStore(root=str(root))}, instance=instance,
                                raise_on_error=False)
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
    print(json.dumps({"test_rows": len(rows), "gate": checks, "success": result.success, "wall_seconds": round(wall, 1),
                      "steps_seconds": steps, "precision": trained["precision"], "tokens_seen": trained["tokens_seen"],
                      "tokens_per_second": trained["tokens_per_second"], "train_seconds": trained["wall_seconds"],
                      "train_loss": trained["train_loss"], "eval_loss": trained["eval_loss"],
                      "lora_adapter": config["ops"]["lora_adapter"]["config"],
                      "cleaned_splits": config["ops"]["cleaned_splits"]["config"]}, ensure_ascii=False))
    for row in rows[:10]:
        print(f"| {row['reference']} | {row['fine-tuned']} |")


if __name__ == "__main__":
    main()
