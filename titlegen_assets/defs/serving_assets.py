"""Serve stage: ollama_model (created from the certified GGUF with the training prompt and the gate's decoding),
its served check (the gate's test, scored through Ollama itself) and latency_report."""

import json
from pathlib import Path
from typing import Optional

import dagster as dg
from pydantic import Field

from titlegen_assets.defs.conditions import ON_NEW_INPUTS
from titlegen_assets.defs.evaluation_checks import (GGUF_CERTIFIED, ROUGE_L, certified_ggufs, chosen_gguf,
                                                    passed_gate, require_same_champion, verdict)
from titlegen_assets.defs.guard import ChecksRefused, evaluated, latest_if_version, require_passed_checks
from titlegen_assets.defs.lineage import own_test_articles
from titlegen_assets.defs.resources import ArtifactStore, OllamaServer
from titlegen_assets.export.gguf_export import require_certified
from titlegen_assets.export.model_card import model_name_for
from titlegen_assets.serving import latency, modelfile, ollama_client
from titlegen_assets.ui.plots import histograms_png, markdown_image
from titlegen_assets.ui.tables import markdown_table
from titlegen_assets.versioning.artifacts import atomic_write_text
from titlegen_assets.versioning.code_version import SERVING_CODE
from titlegen_assets.versioning.fingerprint import fingerprint

OLLAMA_MODEL = dg.AssetKey("ollama_model")
SERVED_AS_CERTIFIED = "served_as_certified"
RUN_THE_SERVED_CHECK = ("materialize ollama_model with its checks (`dagster asset materialize --select ollama_model`) "
                        "where the Ollama server answers")


class OllamaModelConfig(dg.Config):
    """The Ollama model created from the certified GGUF file the eval gate chose (merged_hf_model's gguf setting)."""

    model_name: Optional[str] = Field(
        default=None, description="Ollama model name; default derived from the base model (e.g. "
        "titlegen-gemma-3n-e4b-it-zh-tw), so a fine-tune of one base never takes another's name.")
    tag: str = Field(default="latest", description="Ollama model tag. Decoding is not config: the model is served "
                     "with the eval gate's (greedy, stop at <end_of_turn>, the gate's token cap).")
    keep_alive: str = Field(default="30m", description="How long Ollama keeps the model loaded after a request.")
    num_thread: Optional[int] = Field(
        default=None, gt=0, description="Runner threads (llama.cpp -t); null: Ollama's default (the physical cores).")
    num_batch: Optional[int] = Field(
        default=None, gt=0, description="Prompt tokens evaluated per batch (llama.cpp -b/-ub); null: Ollama's default.")
    num_ctx: Optional[int] = Field(
        default=None, gt=0, description="Context window per request in tokens; null: Ollama's default. A title's "
        "prompt and answer need a few hundred.")

    def name(self, base_model_name: str) -> str:
        return f"{self.model_name or model_name_for(base_model_name)}:{self.tag}"

    def runtime_options(self) -> dict:
        """The runner options this config sets, as Modelfile parameters (unset ones keep Ollama's defaults)."""
        return {"num_thread": self.num_thread, "num_batch": self.num_batch, "num_ctx": self.num_ctx}


class LatencyConfig(dg.Config):
    """The latency measurement against the spec (``serving.latency.SPEC_P50_MS`` / ``SPEC_P95_MS``)."""

    requests: int = Field(default=100, gt=0, description="Measured requests, one per distinct test-split article "
                          "(fewer when the split has fewer; the report says how many were available).")
    concurrency: int = Field(default=2, gt=0, description="Requests in flight at once (match OLLAMA_NUM_PARALLEL).")
    warmup: int = Field(default=3, ge=0, description="Requests sent first and not counted (model load), with "
                        "articles of their own that are not measured.")
    p50_max_ms: float = Field(default=latency.SPEC_P50_MS, gt=0, description="Spec: median client latency, milliseconds.")
    p95_max_ms: float = Field(default=latency.SPEC_P95_MS, gt=0,
                              description="Spec: 95th percentile client latency, milliseconds.")



@dg.asset(group_name="serve", kinds={"ollama"}, deps=["hf_repo"], code_version=SERVING_CODE,
          automation_condition=ON_NEW_INPUTS)
def ollama_model(
    context: dg.AssetExecutionContext, config: OllamaModelConfig, artifacts: ArtifactStore, ollama: OllamaServer,
    merged_hf_model: dict,
) -> dg.MaterializeResult[dict]:
    """The certified GGUF on the Ollama server, created through the official client with the training prompt and
    the gate's decoding; the Modelfile is written too. Refuses a merged model whose eval gate failed or never ran,
    whose gate compared it with another model than the one in service now, with no certified GGUF, or a file whose
    sha256 is not the certified one. Recreates nothing and asks nothing when the same version is already on the
    server."""
    evaluations = passed_gate(context, merged_hf_model, "ollama_model")
    require_same_champion(context, evaluations, merged_hf_model, "ollama_model")
    certified = certified_ggufs(evaluations)
    if not certified:
        raise dg.Failure(f"ollama_model: merged_hf_model {merged_hf_model['version']} has no certified GGUF to serve "
                         f"({evaluations[GGUF_CERTIFIED].description}); build llama.cpp where merged_hf_model runs "
                         "(docker/build_llama_cpp.sh, LLAMA_CPP_DIR) and re-materialize it with its checks")
    quantization, sha256 = chosen_gguf(evaluations)
    gguf = require_certified(Path(merged_hf_model["gguf"]["files"][quantization]["path"]), sha256, "ollama_model")
    rules = evaluations[ROUGE_L].metadata["served_rules"].value
    name = config.name(merged_hf_model["base_model_name"])
    version = fingerprint(merged_hf_model["version"], sha256, name, config.model_dump(), rules, SERVING_CODE)
    host, server_version = ollama.base_url(), ollama.version()
    ollama_client.require_version(server_version, host, merged_hf_model["architecture"])
    client = ollama.client()
    text = modelfile.render(gguf, rules["max_new_tokens"], config.runtime_options())
    modelfile_path = atomic_write_text(artifacts.path("ollama", version) / "Modelfile", text)
    article = own_test_articles(context, artifacts, merged_hf_model, "ollama_model")[0]
    previous = unchanged_on_server(context, client, name, version)
    try:
        if previous:
            context.log.info(f"ollama_model {name}: version {version} is already on the server; nothing re-created")
            response = previous.metadata["sample_response"].value
        else:
            ollama_client.create_model(client, name, gguf, sha256, rules["max_new_tokens"], context.log.info,
                                       config.runtime_options())
            response = ollama_client.ask(client, name, article["content"], config.keep_alive).response.strip()
        listed = {m.model: m for m in client.list().models}
    except Exception as error:
        raise ollama_client.explain(error, host, server_version, name) from error
    digest = listed[name].digest if name in listed else "unknown"
    context.log.info(f"ollama_model {name}: sample title {response!r}")
    return dg.MaterializeResult(
        value={"name": name, "host": host, "digest": digest, "version": version,
               "merged_version": merged_hf_model["version"], "keep_alive": config.keep_alive,
               "gguf": {quantization: sha256}, "served_rules": rules, "rules": merged_hf_model["rules"],
               "inputs": {"merged_hf_model": merged_hf_model["version"], **merged_hf_model["inputs"]}},
        data_version=dg.DataVersion(version),
        metadata={
            "model": name, "quantization": quantization, "gguf_sha256": sha256, "server_version": server_version,
            "merged_version": merged_hf_model["version"],
            "host": host, "digest": digest, "recreated": not previous,
            "sample_reference": article["title"], "sample_response": response,
            "modelfile": dg.MetadataValue.md(f"```\n{text}```"), "modelfile_path": dg.MetadataValue.path(str(modelfile_path)),
        },
    )


def unchanged_on_server(context: dg.AssetExecutionContext, client, name: str,
                        version: str) -> Optional[dg.AssetMaterialization]:
    """The last ollama_model materialization when it made this same version and the server still holds that model
    (same digest): then nothing needs re-creating or asking again. Else None."""
    materialization = latest_if_version(context.instance, OLLAMA_MODEL, version)
    if materialization is None:
        return None
    listed = {m.model: m.digest for m in client.list().models}
    return materialization if listed.get(name) == materialization.metadata["digest"].value else None


def served_identity(ollama_model: dict, server_version: str) -> str:
    """What the served check's verdict is about: the ollama_model version (merged model, certified file, name,
    config, decoding), the model's digest on the server, the server's address and its release (another engine may
    answer otherwise). latency_report accepts the verdict only for what it finds serving now."""
    return fingerprint(ollama_model["version"], ollama_model["digest"], ollama_model["host"], server_version)


def require_served_as_certified(client, ollama_model: dict, consumer: str) -> None:
    """Refuse unless the server holds, under the model's name, the model ollama_model created (same digest) from the
    certified GGUF (the blob its Modelfile names is the certified sha256): someone may have replaced it since."""
    listed = {m.model: m.digest for m in client.list().models}
    [(quantization, certified)] = ollama_model["gguf"].items()
    blob = ollama_client.served_blob_sha256(client, ollama_model["name"]) if ollama_model["name"] in listed else None
    if listed.get(ollama_model["name"]) != ollama_model["digest"] or blob != certified:
        raise ChecksRefused(
            f"{consumer}: {ollama_model['name']} on {ollama_model['host']} is not the certified model: digest "
            f"{listed.get(ollama_model['name'], 'absent')} (ollama_model created {ollama_model['digest']}), GGUF blob "
            f"{blob or 'unknown'} (certified {quantization} sha256 {certified}). To go on: re-materialize "
            "ollama_model with its checks, which re-creates it from the certified file")


@dg.asset_check(asset=ollama_model, name=SERVED_AS_CERTIFIED, blocking=True,
                description="the model as Ollama serves it (its own engine, tokenizer and the Modelfile's decoding) "
                "answers the gate's test articles within the gate's thresholds and stop rate")
def served_as_certified(context: dg.AssetCheckExecutionContext, artifacts: ArtifactStore, ollama: OllamaServer,
                        ollama_model: dict) -> dg.AssetCheckResult:
    """The eval gate again, where the model is served: the same articles (the model's own test split), metrics,
    thresholds and stop rate, answered through Ollama's API. llama.cpp certified the file; Ollama runs some
    architectures (Gemma 3 since 0.6) on its own engine, so the file is checked again where it answers."""
    from titlegen_assets.evaluation import intervals

    rules = ollama_model["served_rules"]
    rows = own_test_articles(context, artifacts, ollama_model, SERVED_AS_CERTIFIED)[: rules["sample_size"]]
    contents, references = [r["content"] for r in rows], [r["title"] for r in rows]
    host, server_version = ollama.base_url(), ollama.version()
    client = ollama.client()
    require_served_as_certified(client, ollama_model, SERVED_AS_CERTIFIED)
    report = artifacts.path("reports", "served") / (
        fingerprint(ollama_model["version"], ollama_model["digest"], server_version, contents) + ".json")
    if report.is_file():  # the same model on the same server release answers greedily the same: nothing to ask
        context.log.info(f"{SERVED_AS_CERTIFIED}: answers already at {report}; scoring them again, asking nothing")
        answers = json.loads(report.read_text(encoding="utf-8"))["answers"]
    else:
        context.log.info(f"{SERVED_AS_CERTIFIED}: asking {ollama_model['name']} for {len(contents)} titles")
        try:
            answers = ollama_client.answers(client, ollama_model["name"], contents, ollama_model["keep_alive"])
        except Exception as error:
            raise ollama_client.explain(error, host, server_version, ollama_model["name"]) from error
        atomic_write_text(report, json.dumps({"server_version": server_version, "contents": contents,
                                              "references": references, "answers": answers}, ensure_ascii=False))
    titles, stopped = [a["title"] for a in answers], [a["stopped"] for a in answers]
    low, high = ollama_model["rules"]["title_min_chars"], ollama_model["rules"]["title_max_chars"]
    scores = intervals.bootstrap_scores({"served": titles}, references, low, high,
                                        samples=rules["bootstrap_samples"]).summary()["served"]
    problems = verdict(scores, stopped, rules)
    samples = markdown_table(("reference", "served answer"), list(zip(references[:10], titles[:10])))
    return dg.AssetCheckResult(
        passed=not problems,
        description="; ".join(problems) if problems else f"as served by Ollama {server_version}: "
        + ", ".join(f"{key} {scores[key]['score']:.3f}" for key in rules["thresholds"])
        + f", {sum(stopped)}/{len(stopped)} stopped",
        metadata={"scores": dg.MetadataValue.json({key: scores[key] for key in rules["thresholds"]}),
                  "stop_rate": sum(stopped) / len(stopped) if stopped else 0.0, "server_version": server_version,
                  "digest": ollama_model["digest"], "samples": dg.MetadataValue.md(samples),
                  "answers": dg.MetadataValue.path(str(report)),
                  **evaluated(served_identity(ollama_model, server_version))},
    )


@dg.asset(group_name="serve", kinds={"ollama"}, automation_condition=ON_NEW_INPUTS)
def latency_report(
    context: dg.AssetExecutionContext, config: LatencyConfig, artifacts: ArtifactStore, ollama: OllamaServer,
    ollama_model: dict,
) -> dg.MaterializeResult[dict]:
    """p50/p95/p99 latency, time to first token and tokens/s of the served model, against the spec.

    Measures only the certified model: the gate passed on the merged model ollama_model was created from, the
    served check passed on that ollama_model, and the server's model under that name is still the one created from
    the certified file. Its prompts are the model's own test articles.
    """
    passed_gate(context, {"version": ollama_model["merged_version"]}, "latency_report")
    host, version = ollama.base_url(), ollama.version()
    if host != ollama_model["host"]:
        raise ChecksRefused(f"latency_report: ollama_model created {ollama_model['name']} on {ollama_model['host']}, "
                            f"but the Ollama server is now {host}: re-materialize ollama_model with its checks there")
    require_passed_checks(context, OLLAMA_MODEL, served_identity(ollama_model, version), "latency_report",
                          RUN_THE_SERVED_CHECK)
    client = ollama.client()
    require_served_as_certified(client, ollama_model, "latency_report")
    contents = [row["content"] for row in own_test_articles(context, artifacts, ollama_model, "latency_report")]
    warm, prompts = latency.distinct_articles(contents, config.requests, config.warmup)
    available = len(set(contents))
    context.log.info(f"latency_report: {len(warm)} warm-up + {len(prompts)} requests (of {config.requests} asked; "
                     f"{available} distinct test articles) to {ollama_model['name']} at concurrency "
                     f"{config.concurrency}, each article sent once")
    try:
        samples = ollama_client.measure(client, ollama_model["name"], prompts, config.concurrency,
                                        ollama_model["keep_alive"], warm)
    except Exception as error:
        raise ollama_client.explain(error, host, version, ollama_model["name"]) from error
    summary = latency.summarize(samples, config.p50_max_ms, config.p95_max_ms)
    summary.update(model=ollama_model["name"], server_version=version, concurrency=config.concurrency,
                   requests_asked=config.requests, warmup=len(warm), articles_available=available)
    report_version = fingerprint(ollama_model["digest"], config.model_dump(), summary)
    report = atomic_write_text(artifacts.path("reports", "latency") / f"{report_version}.json",
                               json.dumps({"summary": summary, "samples": samples}, ensure_ascii=False, indent=2))
    picture = histograms_png({"client wall time": [s["wall_ms"] for s in samples],
                              "time to first token": [s["ttft_ms"] for s in samples]},
                             report.with_suffix(".png"), f"latency_report: {ollama_model['name']}", "milliseconds")
    wall, ttft = summary["wall_ms"], summary["ttft_ms"]
    return dg.MaterializeResult(
        value={"path": str(report), **summary},
        metadata={
            "p50_ms": wall["p50"], "p95_ms": wall["p95"], "p99_ms": wall["p99"], "ttft_p50_ms": ttft["p50"],
            "server_total_p50_ms": summary["server_total_ms"]["p50"], "tokens_per_second": summary["tokens_per_second"],
            "prompt_eval_p50_ms": summary["server_prompt_eval_ms"]["p50"],
            "decode_p50_ms": summary["server_eval_ms"]["p50"], "prompt_tokens_p50": summary["prompt_tokens"]["p50"],
            "requests": summary["requests"], "requests_asked": config.requests,
            "articles_available": available, "concurrency": config.concurrency, "passed_spec": summary["passed"],
            "histogram": dg.MetadataValue.md(markdown_image(picture, "latency histogram")),
            "report": dg.MetadataValue.path(str(report)),
        },
    )


@dg.asset_check(asset=latency_report, description=f"{latency.spec_in_words()} (LatencyConfig's defaults)")
def latency_spec(latency_report: dict) -> dg.AssetCheckResult:
    wall, spec = latency_report["wall_ms"], latency_report["spec"]
    return dg.AssetCheckResult(
        passed=latency_report["passed"],
        metadata={"p50_ms": wall["p50"], "p95_ms": wall["p95"], "p50_max_ms": spec["p50_max_ms"],
                  "p95_max_ms": spec["p95_max_ms"]},
    )
