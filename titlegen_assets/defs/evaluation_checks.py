"""The eval gate: one generation pass over the test split, blocking checks on merged_hf_model.

The same pass scores the baselines (Lead-1, the base model), the model in service (the champion) and each GGUF file
through llama-server, with 95 % bootstrap intervals over the test articles and paired differences. What was
generated is kept under ``reports/eval/<version>.json``, so re-running the gate on an unchanged model, test split,
config, code and champion generates nothing again.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, Optional

import dagster as dg
from pydantic import Field

from titlegen_assets.defs.guard import ChecksRefused, evaluated, materialization_of, require_passed_checks
from titlegen_assets.defs.lineage import own_test_articles
from titlegen_assets.defs.io_manager import ManifestIOManager
from titlegen_assets.defs.resources import ArtifactStore
from titlegen_assets.deploy.gpu import GPU_OP_TAGS, GPU_POOL
from titlegen_assets.prompts import TITLE_MAX_NEW_TOKENS
from titlegen_assets.ui.tables import differences_table, markdown_table, scores_table
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
    gate_on: Literal["score", "lower_bound"] = Field(
        default="score",
        description="score: a metric passes when its point score reaches the threshold; lower_bound: when the lower "
        "end of its 95 % bootstrap interval does (stricter; wants a test split of a few hundred articles).",
    )
    max_new_tokens: int = Field(default=TITLE_MAX_NEW_TOKENS, gt=0, description="Generation cap per title.")
    batch_size: int = Field(default=8, gt=0, description="Articles generated per batch.")
    max_samples: Optional[int] = Field(default=None, gt=0, description="Evaluate only the first N test rows (None: all).")
    compare_base_model: bool = Field(
        default=True, description="Also score the base model before fine-tuning, when it can be loaded."
    )
    stop_rate_min: float = Field(
        default=0.98, ge=0, le=1,
        description="Minimum share of a GGUF's answers that end at <end_of_turn> before max_new_tokens (llama-server).",
    )
    champion_margin: float = Field(
        default=0.02, ge=0, le=1,
        description="A retrained model ships only if, on each gate metric, it is not worse than the model in service "
        "by more than this (paired difference on the same articles; at the interval's lower bound with "
        "gate_on: lower_bound).",
    )
    bootstrap_samples: int = Field(default=1000, ge=100, description="Bootstrap resamples of the test articles.")
    latency_requests: int = Field(
        default=30, gt=0, description="With merged_hf_model's gguf: fastest, requests measured on llama-server per "
        "GGUF that passed, one per distinct test article, the same articles for each (fewer when the test split has "
        "fewer; one more article warms each server up and is not measured).")
    latency_rounds: int = Field(
        default=3, gt=0, description="With gguf: fastest, the GGUFs are measured in turn this many times (a fresh "
        "server each turn, a share of the articles each), so a change in the machine's load falls on all of them.")
    latency_tie: float = Field(
        default=0.05, ge=0, le=1, description="With gguf: fastest, the lowest median client latency wins; medians "
        "within this share of it are a tie, which the lowest p95 breaks (within the same share), then the smaller "
        "file.")


ROUGE_L, BLEU_1, TITLE_ONLY, LENGTH = "rouge_l", "bleu_1", "title_only_rate", "length_compliance"
GGUF_CERTIFIED, CHAMPION = "gguf_certified", "not_worse_than_champion"
#: check name -> (metric key in metrics.score, config field holding its threshold)
GATES = {
    ROUGE_L: ("rougeL", "rouge_l_min"),
    BLEU_1: ("bleu1", "bleu_1_min"),
    TITLE_ONLY: ("title_only_rate", "title_only_min"),
    LENGTH: ("length_compliance", "length_compliance_min"),
}
#: The metrics a model must hold against its thresholds, the champion and in each GGUF (length only warns).
BLOCKING_METRICS = tuple(key for check, (key, _) in GATES.items() if check != LENGTH)
FINE_TUNED, LEAD_1, BASE_MODEL, IN_SERVICE = "fine-tuned", "lead-1", "base model", "in service"
MERGED = dg.AssetKey("merged_hf_model")
#: The assets that put a merged model in service; each records the merged version it took as ``merged_version``.
IN_SERVICE_BY = (dg.AssetKey("ollama_model"), dg.AssetKey("hf_repo"))
#: What the champion check records when there was no other model in service to compare with.
NO_CHAMPION = "none"
RUN_THE_GATE = ("materialize merged_hf_model with its checks (`dagster asset materialize --select merged_hf_model`, "
                "or 'Execute checks' on merged_hf_model in the UI)")


def _spec(name: str, blocking: bool, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset="merged_hf_model", blocking=blocking, description=description)


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


def in_service(instance: dg.DagsterInstance) -> Optional[tuple[str, str]]:
    """(merged version, the asset serving it) of the model now served or published: the newer of the last
    ollama_model and hf_repo materializations, both of which only ever take a model whose gate passed. None before
    the first model ships."""
    latest = []
    for key in IN_SERVICE_BY:
        records = instance.fetch_materializations(key, limit=1).records
        if records and "merged_version" not in records[0].asset_materialization.metadata:
            raise ChecksRefused(f"the latest {key.to_user_string()} materialization (run {records[0].run_id[:8]}) "
                                "does not record the merged model it put in service (merged_version), so the model "
                                f"in service is unknown: re-materialize {key.to_user_string()}, then run this again")
        latest += records
    if not latest:
        return None
    newest = max(latest, key=lambda record: record.storage_id)
    return (newest.asset_materialization.metadata["merged_version"].value,
            newest.asset_materialization.asset_key.to_user_string())


def model_in_service(instance: dg.DagsterInstance, artifacts: ArtifactStore, challenger: dict) -> Optional[dict]:
    """The model in service as the gate compares with it: its version, folder, backend and who serves it, or with
    ``missing`` saying why it cannot be loaded (the champion check then fails closed). None for the first model,
    or when the challenger is that model."""
    current = in_service(instance)
    if current is None or current[0] == challenger["version"]:
        return None
    version, served_by = current
    folder = artifacts.path("merged", version)
    champion = {"version": version, "path": str(folder), "served_by": served_by}
    record = materialization_of(instance, MERGED, version)
    if record is None or not folder.is_dir():
        where = f"no folder at {folder}" if record else "no merged_hf_model materialization in this Dagster instance"
        return {**champion, "missing": where}
    manifest = ManifestIOManager(artifacts=artifacts).manifest_path(MERGED, record.run_id)
    backend = json.loads(manifest.read_text())["backend"] if manifest.is_file() else challenger["backend"]
    return {**champion, "backend": backend}


def verdict(scores: dict[str, dict[str, float]], stopped: list[bool], rules: dict) -> list[str]:
    """What keeps a file's answers (through llama-server, or as Ollama serves it) from certification: each blocking
    metric whose gated value (point score or interval lower bound) is below its threshold, and a stop rate below
    the minimum. ``rules``: ``served_rules`` of the gate."""
    bound = "score" if rules["gate_on"] == "score" else "low"
    problems = [f"{key} {scores[key][bound]:.3f} < {minimum:.3f}" for key, minimum in rules["thresholds"].items()
                if scores[key][bound] < minimum]
    if sum(stopped) < rules["stop_rate_min"] * len(stopped):
        problems.append(f"{sum(stopped)}/{len(stopped)} answers stopped at <end_of_turn> (stop rate "
                        f"{sum(stopped) / len(stopped):.2f} < {rules['stop_rate_min']:.2f})")
    return problems


def generate(context, config: EvalGateConfig, merged_hf_model: dict, champion: Optional[dict], contents: list[str],
             passes) -> dict:
    """Everything the gate scores, generated once: each system's titles, each GGUF's answers (smallest first,
    ``auto`` stopping at the first that ``passes``) and, with ``fastest``, the latency of each GGUF that passes."""
    from titlegen_assets.evaluation.gguf_scoring import gguf_answers

    context.log.info(f"eval_gate: generating {len(contents)} titles with {merged_hf_model['path']}")
    systems = {FINE_TUNED: generate_for(merged_hf_model["path"], merged_hf_model["backend"], contents, config)}
    base, base_skipped = base_model_predictions(context, merged_hf_model, contents, config)
    if base is not None:
        systems[BASE_MODEL] = base
    if champion and "missing" not in champion:
        context.log.info(f"eval_gate: scoring the model in service ({champion['version']}) on the same articles")
        systems[IN_SERVICE] = generate_for(champion["path"], champion["backend"], contents, config)
    ggufs = {}
    for quantization, file in merged_hf_model["gguf"]["files"].items():
        context.log.info(f"eval_gate: scoring {quantization} through llama-server on {len(contents)} articles")
        answers = gguf_answers(Path(file["path"]), Path(merged_hf_model["path"]), contents, config.max_new_tokens,
                               context.log.info)
        ggufs[quantization] = {"titles": answers.titles, "stopped": answers.stopped}
        if merged_hf_model["gguf"]["mode"] == "auto" and passes(quantization, ggufs[quantization]):
            break
    measured = {}
    if merged_hf_model["gguf"]["mode"] == "fastest":
        candidates = [quantization for quantization, answers in ggufs.items() if passes(quantization, answers)]
        if len(candidates) > 1:
            measured = gguf_latency_samples(context, config, merged_hf_model, candidates, contents)
    return {"systems": systems, "base_skipped": base_skipped, "ggufs": ggufs, "latency": measured}


def gguf_latency_samples(context, config: EvalGateConfig, merged_hf_model: dict, candidates: list[str],
                         contents: list[str]) -> dict[str, list[dict]]:
    """Each candidate GGUF's timings on llama-server (the product's settings, the training prompt), the same distinct
    test articles sent once to each, measured in turns (``gguf_latency.measure_in_turns``)."""
    from titlegen_assets.evaluation import gguf_latency
    from titlegen_assets.evaluation.llama_server import training_prompts
    from titlegen_assets.serving.latency import distinct_articles

    warm, measured = distinct_articles(contents, config.latency_requests, gguf_latency.WARMUP)
    context.log.info(f"eval_gate: gguf: fastest: measuring {', '.join(candidates)} on llama-server, {len(measured)} "
                     f"distinct test articles each (of {len(set(contents))} available, {len(warm)} for warm-up), "
                     f"in {config.latency_rounds} rounds")
    files = {quantization: Path(merged_hf_model["gguf"]["files"][quantization]["path"]) for quantization in candidates}
    model_dir = Path(merged_hf_model["path"])
    warm, measured = training_prompts(model_dir, warm), training_prompts(model_dir, measured)
    return gguf_latency.measure_in_turns(files, warm, measured, config.latency_rounds, config.max_new_tokens,
                                         context.log.info)


@dg.multi_asset_check(
    specs=[
        _spec(ROUGE_L, True, "character ROUGE-L F1 on the test split reaches the threshold"),
        _spec(BLEU_1, True, "character BLEU-1 on the test split reaches the threshold"),
        _spec(TITLE_ONLY, True, "predictions are only a title (no prefix, quotes, markdown or explanation)"),
        _spec(LENGTH, False, "predictions are within the title length bounds"),
        _spec(GGUF_CERTIFIED, True, "each GGUF that ships scores like the 16-bit model through llama-server (same "
              "prompt, metric and thresholds) and stops at <end_of_turn>; a quantization that fails is not shipped"),
        _spec(CHAMPION, True, "a retrained model is not worse than the model in service by more than the margin, on "
              "the same articles (the first model is judged on thresholds alone)"),
    ],
    ins={"merged_hf_model": dg.AssetIn("merged_hf_model")},
    op_tags=GPU_OP_TAGS,  # the heaviest inference step runs where the model is: GPU image, a GPU in Kubernetes
    pool=GPU_POOL,  # and never beside a training on the one GPU
)
def eval_gate(
    context: dg.AssetCheckExecutionContext, config: EvalGateConfig, artifacts: ArtifactStore,
    merged_hf_model: dict,
) -> Iterator[dg.AssetCheckResult]:
    """Generate once for the model's own test split; score the fine-tune, the baselines, the champion and each GGUF
    with intervals; gate on the fine-tune's thresholds, its GGUFs and the champion. Every result records the merged
    version it scored (the guard reads that, not Dagster's link to the latest materialization)."""
    if merged_hf_model["backend"] == "unsloth":  # before anything below imports trl, transformers or peft
        from titlegen_assets.training.unsloth_backend import import_unsloth_first

        import_unsloth_first(context.log.warning)
    from titlegen_assets.evaluation import intervals, metrics

    rows = own_test_articles(context, artifacts, merged_hf_model, "eval_gate")[: config.max_samples]
    contents, references = [r["content"] for r in rows], [r["title"] for r in rows]
    low, high = merged_hf_model["rules"]["title_min_chars"], merged_hf_model["rules"]["title_max_chars"]
    champion = model_in_service(context.instance, artifacts, merged_hf_model)
    rules = served_rules(config, len(rows))

    def bootstrap(systems: dict[str, list[str]]) -> intervals.Bootstrap:
        return intervals.bootstrap_scores(systems, references, low, high, samples=config.bootstrap_samples)

    def gguf_verdict(quantization: str, answers: dict) -> list[str]:
        return verdict(bootstrap({quantization: answers["titles"]}).summary()[quantization], answers["stopped"], rules)

    shas = {quantization: file["sha256"] for quantization, file in merged_hf_model["gguf"]["files"].items()}
    version = fingerprint(merged_hf_model["version"], merged_hf_model["inputs"]["cleaned_splits"], config.model_dump(),
                          shas, merged_hf_model["gguf"]["mode"], champion and champion["version"],
                          bool(champion and "missing" in champion), EVAL_CODE)
    report = artifacts.path("reports", "eval") / f"{version}.json"
    if report.is_file():
        context.log.info(f"eval_gate: {version} already generated at {report}; scoring it again, generating nothing")
        generated = json.loads(report.read_text(encoding="utf-8"))
    else:
        generated = generate(context, config, merged_hf_model, champion, contents,
                             lambda quantization, answers: not gguf_verdict(quantization, answers))
        atomic_write_text(report, json.dumps({"contents": contents, "references": references, **generated},
                                             ensure_ascii=False, indent=1))
    systems = {**generated["systems"], LEAD_1: [metrics.lead_1(c, high) for c in contents]}
    scored = bootstrap(systems)
    summary = scored.summary()
    baselines = [name for name in (LEAD_1, BASE_MODEL, IN_SERVICE) if name in systems]
    differences = intervals.paired_differences(scored, FINE_TUNED, baselines)
    predictions = systems[FINE_TUNED]
    samples = markdown_table(("article (head)", "reference", "prediction"),
                             [(c[:40], r, p) for c, r, p in zip(contents[:10], references[:10], predictions[:10])])
    shared = {"sample_size": len(rows), "baselines": dg.MetadataValue.md(scores_table(summary)),
              "paired_differences": dg.MetadataValue.md(differences_table(FINE_TUNED, differences)),
              "scores": dg.MetadataValue.json({name: {k: v["score"] for k, v in row.items()}
                                               for name, row in summary.items()}),
              "intervals": dg.MetadataValue.json(summary), "differences": dg.MetadataValue.json(differences),
              "base_model_baseline": "scored" if BASE_MODEL in systems else f"skipped: {generated['base_skipped']}",
              "samples": dg.MetadataValue.md(samples), "predictions": dg.MetadataValue.path(str(report)),
              "served_rules": dg.MetadataValue.json(rules),
              **evaluated(merged_hf_model["version"])}
    for check, (key, threshold_field) in GATES.items():
        cell, threshold = summary[FINE_TUNED][key], getattr(config, threshold_field)
        value = cell["score"] if config.gate_on == "score" else cell["low"]
        passed = value >= threshold
        what = key if config.gate_on == "score" else f"{key} lower bound"
        summary_line = (f"{what} {value:.3f} {'≥' if passed else '<'} {threshold:.3f} (score {cell['score']:.3f} "
                        f"[{cell['low']:.3f}, {cell['high']:.3f}])" + ("" if passed else f", missed by {threshold - value:.3f}"))
        yield dg.AssetCheckResult(
            check_name=check, passed=passed,
            severity=dg.AssetCheckSeverity.ERROR if check != LENGTH else dg.AssetCheckSeverity.WARN,
            description=summary_line,
            metadata={"score": cell["score"], "interval_low": cell["low"], "interval_high": cell["high"],
                      "threshold": threshold, "missed_by": max(0.0, threshold - value), "summary": summary_line,
                      **shared},
        )
    for result in (certify_ggufs(merged_hf_model, generated["ggufs"], gguf_verdict, generated["latency"],
                                 config.latency_tie),
                   against_champion(config, scored, champion)):
        yield dg.AssetCheckResult(check_name=result.check_name, passed=result.passed, description=result.description,
                                  metadata={**result.metadata, **evaluated(merged_hf_model["version"])})


def served_rules(config: EvalGateConfig, sample_size: int) -> dict:
    """What a server must hold the certified file to, where it is served: the gate's thresholds, bound, stop rate,
    token cap and test articles (ollama_model's served check and its Modelfile read these)."""
    return {"thresholds": {key: getattr(config, field) for check, (key, field) in GATES.items() if check != LENGTH},
            "gate_on": config.gate_on, "stop_rate_min": config.stop_rate_min,
            "max_new_tokens": config.max_new_tokens, "sample_size": sample_size,
            "bootstrap_samples": config.bootstrap_samples}


def certify_ggufs(merged_hf_model: dict, answers: dict[str, dict], verdict, latency_samples: dict[str, list[dict]],
                  tie: float) -> dg.AssetCheckResult:
    """Certify each GGUF whose answers pass the 16-bit model's thresholds and stop rate, named with its sha256 in
    ladder order (smallest first), and name the one ollama_model serves (``chosen``, with its sha256 and why)."""
    gguf = merged_hf_model["gguf"]
    if gguf["skipped"]:
        return dg.AssetCheckResult(check_name=GGUF_CERTIFIED, passed=True,
                                   description=f"no GGUF to certify, none will ship: {gguf['skipped']}",
                                   metadata={"certified": dg.MetadataValue.json({}), "skipped": gguf["skipped"]})
    rows, certified, refused = [], {}, []
    for quantization, file in gguf["files"].items():
        if quantization not in answers:
            rows.append((quantization, file["mib"], "–", "not scored: a smaller type passed"))
            continue
        problems = verdict(quantization, answers[quantization])
        stopped = f"{sum(answers[quantization]['stopped'])}/{len(answers[quantization]['stopped'])}"
        if problems:
            refused.append(f"{quantization}: {'; '.join(problems)}")
        else:
            certified[quantization] = file["sha256"]
        rows.append((quantization, file["mib"], stopped, "refused: " + "; ".join(problems) if problems else
                     f"certified (sha256 {file['sha256'][:12]}…)"))
    chosen, why, measured = served_choice(gguf["mode"], list(certified), latency_samples, tie)
    description = (f"certified {', '.join(certified)}; serves {chosen}: {why}" if certified else "no GGUF passed") + (
        f"; refused {' | '.join(refused)}" if refused else "")
    latency = {"latency": dg.MetadataValue.json(measured),
               "latency_table": dg.MetadataValue.md(latency_table(measured))} if measured else {}
    return dg.AssetCheckResult(
        check_name=GGUF_CERTIFIED, passed=bool(certified), description=description,
        metadata={"certified": dg.MetadataValue.json(certified), "chosen": chosen,
                  "chosen_sha256": certified.get(chosen, "none"), "choice": why, "mode": gguf["mode"],
                  "ggufs": dg.MetadataValue.md(markdown_table(("GGUF", "MiB", "stopped", "verdict"), rows)),
                  **latency},
    )


def served_choice(mode: str, certified: list[str], latency_samples: dict[str, list[dict]],
                  tie: float) -> tuple[str, str, dict[str, dict]]:
    """(the certified GGUF type ollama_model serves, why, each measured candidate's latency summary): with
    ``fastest``, the rule of ``gguf_latency.fastest`` on the latency measured in this gate; otherwise the first
    certified, which is the smallest (``auto``) or the one type configured."""
    if not certified:
        return "none", "no GGUF passed", {}
    if mode == "fastest" and latency_samples:
        from titlegen_assets.evaluation import gguf_latency

        measured = gguf_latency.summaries({quantization: latency_samples[quantization] for quantization in certified})
        chosen, why = gguf_latency.fastest({name: summary["wall_ms"] for name, summary in measured.items()}, tie)
        return chosen, f"the fastest on this host's llama-server, {why}", measured
    return certified[0], {"auto": "the smallest certified file (gguf: auto)",
                          "fastest": "the only certified file (gguf: fastest; nothing to compare, so not measured)",
                          "fixed": "the one type configured"}[mode], {}


def latency_table(measured: dict[str, dict]) -> str:
    """Each measured GGUF's client latency and, apart, what the server spent evaluating the prompt and decoding."""
    return markdown_table(
        ("GGUF", "requests", "p50 ms", "p95 ms", "prompt tokens p50", "prompt eval p50 ms", "decode p50 ms",
         "tokens/s"),
        [(name, s["requests"], f"{s['wall_ms']['p50']:.0f}", f"{s['wall_ms']['p95']:.0f}",
          f"{s['prompt_tokens']['p50']:.0f}", f"{s['server_prompt_eval_ms']['p50']:.0f}",
          f"{s['server_eval_ms']['p50']:.0f}", s["tokens_per_second"]) for name, s in measured.items()])


def against_champion(config: EvalGateConfig, scored, champion: Optional[dict]) -> dg.AssetCheckResult:
    """The challenger against the model in service on the same articles: passes when no gate metric is worse by
    more than the margin (the first model has no champion and passes here). A model in service whose files are
    gone fails closed: it cannot be compared, so nothing may replace it unseen."""
    from titlegen_assets.evaluation import intervals

    if champion is None:
        return dg.AssetCheckResult(check_name=CHAMPION, passed=True,
                                   description="no other model in service: judged on the thresholds alone",
                                   metadata={"champion_version": NO_CHAMPION})
    if "missing" in champion:
        return dg.AssetCheckResult(
            check_name=CHAMPION, passed=False,
            description=f"the model in service, merged_hf_model {champion['version']} (served by "
            f"{champion['served_by']}), cannot be compared: {champion['missing']}. Restore it (re-materialize "
            "merged_hf_model with the config that made it, from its adapter), then re-run this gate; to replace it "
            "without a comparison, take it out of service first",
            metadata={"champion_version": champion["version"], "missing": champion["missing"]})
    comparison = intervals.champion_comparison(scored, FINE_TUNED, IN_SERVICE, BLOCKING_METRICS,
                                               config.champion_margin, on_lower_bound=config.gate_on == "lower_bound")
    worse = [row["reason"] for row in comparison.values() if not row["passed"]]
    return dg.AssetCheckResult(
        check_name=CHAMPION, passed=not worse,
        description="; ".join(worse) if worse else f"not worse than {champion['version']} "
        f"(served by {champion['served_by']}) by more than {config.champion_margin:g}",
        metadata={"champion_version": champion["version"], "margin": config.champion_margin,
                  "comparison": dg.MetadataValue.json(comparison),
                  "table": dg.MetadataValue.md(markdown_table(("metric", "reason"),
                                                              [(k, row["reason"]) for k, row in comparison.items()]))},
    )


def passed_gate(context: dg.AssetExecutionContext, merged_hf_model: dict,
                consumer: str) -> dict[str, dg.AssetCheckEvaluation]:
    """The gate's evaluations of the merged version this step loaded; refuses it (``ChecksRefused``) unless every
    blocking check passed on that version, in this run or an earlier one."""
    return require_passed_checks(context, MERGED, merged_hf_model["version"], consumer, RUN_THE_GATE)


def require_same_champion(context: dg.AssetExecutionContext, evaluations: dict[str, dg.AssetCheckEvaluation],
                          merged_hf_model: dict, consumer: str) -> None:
    """Refuse to ship unless the model in service now is the one the gate compared against (or this model itself):
    a verdict against a champion that has since been replaced says nothing about the model in service now."""
    compared = evaluations[CHAMPION].metadata["champion_version"].value
    current = in_service(context.instance)
    now = current[0] if current else NO_CHAMPION
    if now in (compared, merged_hf_model["version"]):
        return
    was = "no model in service" if compared == NO_CHAMPION else f"merged_hf_model {compared}"
    is_now = f"{now} (by {current[1]})" if current else "none (no ollama_model or hf_repo materialization)"
    raise ChecksRefused(
        f"{consumer}: the gate of merged_hf_model {merged_hf_model['version']} compared it with {was}, but the model "
        f"in service is now {is_now}. To go on: re-run the gate so it compares with the model in service: "
        f"{RUN_THE_GATE}")


def certified_ggufs(evaluations: dict[str, dg.AssetCheckEvaluation]) -> dict[str, str]:
    """GGUF type -> sha256 of each file the gate certified, smallest first (empty when none was made)."""
    return evaluations[GGUF_CERTIFIED].metadata["certified"].value


def chosen_gguf(evaluations: dict[str, dg.AssetCheckEvaluation]) -> tuple[str, str]:
    """(type, sha256) of the certified GGUF the gate chose to serve: the smallest with ``gguf: auto``, the one
    measured fastest with ``gguf: fastest``. Call only when ``certified_ggufs`` is not empty."""
    chosen = evaluations[GGUF_CERTIFIED].metadata["chosen"].value
    return chosen, certified_ggufs(evaluations)[chosen]
