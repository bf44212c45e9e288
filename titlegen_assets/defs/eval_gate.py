"""The eval gate: one generation pass over the test split, blocking checks on merged_hf_model, baselines beside it."""

import json
from collections.abc import Iterator

import dagster as dg

from titlegen_assets.artifacts import atomic_write_text
from titlegen_assets.config import EvalGateConfig
from titlegen_assets.defs.data import held_out_articles, markdown_table
from titlegen_assets.defs.publish import eval_summary_path
from titlegen_assets.fingerprint import fingerprint
from titlegen_assets.resources import ArtifactStore

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
    from titlegen_assets.generation import generate_titles
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
)
def eval_gate(
    context: dg.AssetCheckExecutionContext, config: EvalGateConfig, artifacts: ArtifactStore,
    merged_hf_model: dict, cleaned_splits: dict,
) -> Iterator[dg.AssetCheckResult]:
    """Generate once for the test split, score the fine-tune, Lead-1 and the base model, and gate on the fine-tune."""
    from titlegen_assets import metrics

    rows = held_out_articles(cleaned_splits)[: config.max_samples]
    contents, references = [r["content"] for r in rows], [r["title"] for r in rows]
    low, high = config.title_min_chars, config.title_max_chars
    context.log.info(f"eval_gate: generating {len(rows)} titles with {merged_hf_model['path']}")
    predictions = generate_for(merged_hf_model["path"], merged_hf_model["backend"], contents, config)
    systems = {"fine-tuned": predictions, "lead-1": [metrics.lead_1(c, high) for c in contents]}
    base, base_skipped = base_model_predictions(context, merged_hf_model, contents, config)
    if base is not None:
        systems["base model"] = base
    scores = {name: metrics.score(preds, references, low, high) for name, preds in systems.items()}

    version = fingerprint(merged_hf_model["version"], cleaned_splits["version"], config.model_dump())
    lines = [json.dumps({"content": c, "reference": r, **{name: preds[i] for name, preds in systems.items()}},
                        ensure_ascii=False) for i, (c, r) in enumerate(zip(contents, references))]
    report = atomic_write_text(artifacts.path("reports", "eval") / f"{version}.jsonl", "\n".join(lines) + "\n")
    misses = [f"{key} {scores['fine-tuned'][key]:.3f} < {getattr(config, field):.3f}"
              for check, (key, field) in GATES.items() if check != LENGTH and scores["fine-tuned"][key] < getattr(config, field)]
    summary = {"scores": scores, "sample_size": len(rows), "predictions": str(report), "config": config.model_dump(),
               "passed": not misses, "misses": misses}
    atomic_write_text(eval_summary_path(artifacts, merged_hf_model["version"]), json.dumps(summary, indent=2))

    keys = ("rouge1", "rouge2", "rougeL", "bleu1", "title_only_rate", "length_compliance")
    table = markdown_table(("system", *keys), [(name, *(f"{s[k]:.3f}" for k in keys)) for name, s in scores.items()])
    samples = markdown_table(("article (head)", "reference", "prediction"),
                             [(c[:40].replace("|", "｜"), r, p.replace("|", "｜")) for c, r, p in
                              zip(contents[:10], references[:10], predictions[:10])])
    shared = {"sample_size": len(rows), "baselines": dg.MetadataValue.md(table),
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
