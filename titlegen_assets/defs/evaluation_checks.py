"""The eval gate: one generation pass over the test split, blocking checks on merged_hf_model, baselines beside it."""

import json
from collections.abc import Iterator
from typing import Optional

import dagster as dg
from pydantic import Field

from titlegen_assets.data.splitting import held_out_articles
from titlegen_assets.defs.resources import ArtifactStore
from titlegen_assets.deploy.gpu import GPU_OP_TAGS, GPU_POOL
from titlegen_assets.prompts import TITLE_MAX_NEW_TOKENS
from titlegen_assets.ui.tables import markdown_table
from titlegen_assets.versioning.artifacts import atomic_write_text
from titlegen_assets.versioning.code_version import EVAL_CODE
from titlegen_assets.versioning.fingerprint import fingerprint


class EvalGateConfig(dg.Config):
    """The eval gate on merged_hf_model. Thresholds default to the spec; a miss blocks publishing and serving."""

    rouge_l_min: float = Field(default=0.30, ge=0, le=1, description="Minimum character ROUGE-L F1 on the test split.")
    bleu_1_min: float = Field(default=0.45, ge=0, le=1, description="Minimum character BLEU-1 on the test split.")
    title_only_min: float = Field(default=0.98, ge=0, le=1, description="Minimum share of predictions that are only a title.")
    length_compliance_min: float = Field(
        default=0.90, ge=0, le=1, description="Share of predictions within the length bounds (a warning, not blocking)."
    )
    max_new_tokens: int = Field(default=TITLE_MAX_NEW_TOKENS, gt=0, description="Generation cap per title.")
    batch_size: int = Field(default=8, gt=0, description="Articles generated per batch.")
    max_samples: Optional[int] = Field(default=None, gt=0, description="Evaluate only the first N test rows (None: all).")
    compare_base_model: bool = Field(
        default=True, description="Also score the base model before fine-tuning, when it can be loaded."
    )


ROUGE_L, BLEU_1, TITLE_ONLY, LENGTH = "rouge_l", "bleu_1", "title_only_rate", "length_compliance"
#: check name -> (metric key in metrics.score, config field holding its threshold)
GATES = {
    ROUGE_L: ("rougeL", "rouge_l_min"),
    BLEU_1: ("bleu1", "bleu_1_min"),
    TITLE_ONLY: ("title_only_rate", "title_only_min"),
    LENGTH: ("length_compliance", "length_compliance_min"),
}


def _spec(name: str, blocking: bool, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset="merged_hf_model", blocking=blocking, description=description,
                             additional_deps=["cleaned_splits"])


def generate_for(folder: str, backend: str, contents: list[str], config: EvalGateConfig) -> list[str]:
    from titlegen_assets.evaluation.generation import generate_titles
    from titlegen_assets.training.merge import load_for_generation

    model, tokenizer = load_for_generation(folder, backend)
    return generate_titles(model, tokenizer, contents, config.max_new_tokens, config.batch_size)


def base_model_predictions(context, manifest: dict, contents: list[str], config: EvalGateConfig):
    """(titles, None) from the base model, or (None, why not) when it is switched off or cannot be loaded here."""
    if not config.compare_base_model:
        return None, "compare_base_model is false"
    try:
        return generate_for(manifest["base_model"], "trl", contents, config), None
    except Exception as error:  # e.g. an offline machine without the Hub base model cached: the baseline is optional
        reason = f"cannot load {manifest['base_model']} ({type(error).__name__}: {str(error)[:200]})"
        context.log.warning(f"base-model baseline skipped: {reason}")
        return None, reason


@dg.multi_asset_check(
    specs=[
        _spec(ROUGE_L, True, "character ROUGE-L F1 on the test split reaches the threshold"),
        _spec(BLEU_1, True, "character BLEU-1 on the test split reaches the threshold"),
        _spec(TITLE_ONLY, True, "predictions are only a title (no prefix, quotes, markdown or explanation)"),
        _spec(LENGTH, False, "predictions are within the title length bounds"),
    ],
    ins={"merged_hf_model": dg.AssetIn("merged_hf_model"), "cleaned_splits": dg.AssetIn("cleaned_splits")},
    op_tags=GPU_OP_TAGS,  # the heaviest inference step runs where the model is: GPU image, a GPU in Kubernetes
    pool=GPU_POOL,  # and never beside a training on the one GPU
)
def eval_gate(
    context: dg.AssetCheckExecutionContext, config: EvalGateConfig, artifacts: ArtifactStore,
    merged_hf_model: dict, cleaned_splits: dict,
) -> Iterator[dg.AssetCheckResult]:
    """Generate once for the test split, score the fine-tune, Lead-1 and the base model, and gate on the fine-tune."""
    import evaluate

    from titlegen_assets.evaluation import metrics
    from titlegen_assets.evaluation.metrics import ZH_HEADLINE

    rows = held_out_articles(cleaned_splits["path"])[: config.max_samples]
    contents, references = [r["content"] for r in rows], [r["title"] for r in rows]
    low, high = cleaned_splits["rules"]["title_min_chars"], cleaned_splits["rules"]["title_max_chars"]
    context.log.info(f"eval_gate: generating {len(rows)} titles with {merged_hf_model['path']}")
    predictions = generate_for(merged_hf_model["path"], merged_hf_model["backend"], contents, config)
    systems = {"fine-tuned": predictions, "lead-1": [metrics.lead_1(c, high) for c in contents]}
    base, base_skipped = base_model_predictions(context, merged_hf_model, contents, config)
    if base is not None:
        systems["base model"] = base
    metric = evaluate.load(ZH_HEADLINE)  # the shipped module: loads offline, same scores a user's Trainer gets
    scores = {name: metric.compute(predictions=preds, references=references, title_min_chars=low, title_max_chars=high)
              for name, preds in systems.items()}

    version = fingerprint(merged_hf_model["version"], cleaned_splits["version"], config.model_dump(), EVAL_CODE)
    lines = [json.dumps({"content": c, "reference": r, **{name: preds[i] for name, preds in systems.items()}},
                        ensure_ascii=False) for i, (c, r) in enumerate(zip(contents, references))]
    report = atomic_write_text(artifacts.path("reports", "eval") / f"{version}.jsonl", "\n".join(lines) + "\n")
    keys = metrics.METRIC_KEYS
    table = markdown_table(("system", *keys), [(name, *(f"{s[k]:.3f}" for k in keys)) for name, s in scores.items()])
    samples = markdown_table(("article (head)", "reference", "prediction"),
                             [(c[:40], r, p) for c, r, p in
                              zip(contents[:10], references[:10], predictions[:10])])
    shared = {"sample_size": len(rows), "baselines": dg.MetadataValue.md(table), "scores": dg.MetadataValue.json(scores),
              "base_model_baseline": "scored" if base is not None else f"skipped: {base_skipped}",
              "samples": dg.MetadataValue.md(samples), "predictions": dg.MetadataValue.path(str(report))}
    for check, (key, threshold_field) in GATES.items():
        value, threshold = scores["fine-tuned"][key], getattr(config, threshold_field)
        passed = value >= threshold
        summary = f"{key} {value:.3f} {'≥' if passed else '<'} {threshold:.3f}" + ("" if passed else f" (missed by {threshold - value:.3f})")
        yield dg.AssetCheckResult(
            check_name=check, passed=passed,
            severity=dg.AssetCheckSeverity.ERROR if check != LENGTH else dg.AssetCheckSeverity.WARN,
            description=summary,
            metadata={"score": value, "threshold": threshold, "missed_by": max(0.0, threshold - value),
                      "summary": summary, **shared},
        )


#: The checks whose failure keeps a model from being published or served (length compliance only warns).
BLOCKING_CHECKS = tuple(check for check in GATES if check != LENGTH)
MERGED = dg.AssetKey("merged_hf_model")
RUN_THE_GATE = ("materialize merged_hf_model with its checks (`dagster asset materialize --select merged_hf_model`, "
                "or 'Execute checks' on merged_hf_model in the UI)")


class GateRefused(Exception):
    """The eval gate did not pass on the merged model a consumer was about to publish or serve."""


def passed_gate(instance: dg.DagsterInstance, merged_hf_model: dict, consumer: str) -> dict[str, dg.AssetCheckEvaluation]:
    """The gate's evaluations of the merged model this step loaded, read from Dagster's own check records.

    Raises ``GateRefused`` (with which metric missed and by how much, or what to run) unless every blocking check
    evaluated *that* materialization of merged_hf_model and passed, in this run or any earlier one.
    """
    [record] = instance.fetch_materializations(MERGED, limit=1).records or [None]
    if record is None:
        raise GateRefused(f"{consumer}: merged_hf_model was never materialized; {RUN_THE_GATE}")
    materialized_version = record.asset_materialization.tags.get("dagster/data_version")
    if materialized_version != merged_hf_model["version"]:
        raise GateRefused(f"{consumer}: the merged model loaded ({merged_hf_model['version']}) is not the latest "
                          f"materialization of merged_hf_model ({materialized_version}); {RUN_THE_GATE}")
    keys = [dg.AssetCheckKey(MERGED, name) for name in BLOCKING_CHECKS]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    evaluations, problems = {}, []
    for key in keys:
        execution = latest.get(key)
        evaluation = execution.event.asset_check_evaluation if execution and execution.event else None
        target = evaluation.target_materialization_data if evaluation else None
        if evaluation is None or target is None or target.storage_id != record.storage_id:
            problems.append(f"{key.name} never ran on this materialization (run {record.run_id[:8]})")
        elif not evaluation.passed:
            problems.append(f"{key.name} failed: {evaluation.description}")
        evaluations[key.name] = evaluation
    if problems:
        fix = RUN_THE_GATE if any("never ran" in p for p in problems) else (
            "improve the model, or deliberately change the thresholds in eval_gate's config")
        raise GateRefused(f"{consumer}: refusing merged_hf_model {merged_hf_model['version']} because the eval gate "
                          f"did not pass ({'; '.join(problems)}). To go on: {fix}")
    return evaluations
