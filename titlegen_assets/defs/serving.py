"""Serve stage: ollama_model (created from the merged model's GGUF with the training prompt) and latency_report."""

import json
from itertools import cycle, islice

import dagster as dg

from titlegen_assets import latency, modelfile, serving
from titlegen_assets.artifacts import atomic_write_text
from titlegen_assets.code_version import SERVING_CODE
from titlegen_assets.config import LatencyConfig, OllamaModelConfig
from titlegen_assets.defs.eval_gate import passed_gate
from titlegen_assets.splitting import held_out_articles
from titlegen_assets.fingerprint import fingerprint
from titlegen_assets.plots import histograms_png, markdown_image
from titlegen_assets.resources import ArtifactStore, OllamaServer


@dg.asset(group_name="serve", kinds={"ollama"}, deps=["hf_repo"], code_version=SERVING_CODE)
def ollama_model(
    context: dg.AssetExecutionContext, config: OllamaModelConfig, artifacts: ArtifactStore, ollama: OllamaServer,
    merged_hf_model: dict, cleaned_splits: dict,
) -> dg.Output[dict]:
    """The merged model on the Ollama server, created through the official client; the Modelfile is written too.

    Refuses a merged model whose eval gate failed or never ran, like hf_repo.
    """
    from pathlib import Path

    passed_gate(context.instance, merged_hf_model, "ollama_model")
    host = ollama.base_url()
    version = ollama.version()
    serving.require_version(version, host)
    client = ollama.client()
    plan = serving.import_plan(config.import_from, config.quantize, Path(merged_hf_model["path"]),
                               artifacts.path("gguf", merged_hf_model["version"]))
    text = modelfile.render(plan.source, config.temperature, config.num_predict, config.runtime_options())
    modelfile_path = atomic_write_text(artifacts.path("ollama", merged_hf_model["version"]) / "Modelfile", text)
    try:
        files = serving.create_model(client, config.name, plan, config.temperature, config.num_predict,
                                     context.log.info, config.runtime_options())
        article = held_out_articles(cleaned_splits["path"])[0]
        answer = serving.ask(client, config.name, article["content"], config.keep_alive)
        listed = {m.model: m for m in client.list().models}
    except Exception as error:
        raise serving.explain(error, host, version, config.name) from error
    digest = listed[config.name].digest if config.name in listed else "unknown"
    context.log.info(f"ollama_model {config.name}: sample title {answer.response.strip()!r}")
    return dg.Output(
        {"name": config.name, "host": host, "digest": digest, "merged_version": merged_hf_model["version"],
         "keep_alive": config.keep_alive},
        data_version=dg.DataVersion(fingerprint(merged_hf_model["version"], config.model_dump(), SERVING_CODE)),
        metadata={
            "model": config.name, "quantization": config.quantize or "none (16-bit)", "import_from": config.import_from,
            "server_version": version,
            "host": host, "digest": digest, "files": len(files),
            "sample_reference": article["title"], "sample_response": answer.response.strip(),
            "modelfile": dg.MetadataValue.md(f"```\n{text}```"), "modelfile_path": dg.MetadataValue.path(str(modelfile_path)),
        },
    )


@dg.asset(group_name="serve", kinds={"ollama"})
def latency_report(
    context: dg.AssetExecutionContext, config: LatencyConfig, artifacts: ArtifactStore, ollama: OllamaServer,
    ollama_model: dict, cleaned_splits: dict,
) -> dg.Output[dict]:
    """p50/p95/p99 latency, time to first token and tokens/s of the served model, against the spec.

    Measures only a model whose eval gate passed (the gate of the merged model ollama_model was created from).
    """
    passed_gate(context.instance, {"version": ollama_model["merged_version"]}, "latency_report")
    host, version = ollama.base_url(), ollama.version()
    contents = [row["content"] for row in held_out_articles(cleaned_splits["path"])]
    prompts = list(islice(cycle(contents), config.requests))
    context.log.info(f"latency_report: {config.warmup} warm-up + {len(prompts)} requests to {ollama_model['name']} "
                     f"at concurrency {config.concurrency}")
    try:
        samples = serving.measure(ollama.client(), ollama_model["name"], prompts, config.concurrency,
                                  ollama_model["keep_alive"], config.warmup)
    except Exception as error:
        raise serving.explain(error, host, version, ollama_model["name"]) from error
    summary = latency.summarize(samples, config.p50_max_ms, config.p95_max_ms)
    summary.update(model=ollama_model["name"], server_version=version, concurrency=config.concurrency)
    report_version = fingerprint(ollama_model["digest"], config.model_dump(), summary)
    report = atomic_write_text(artifacts.path("reports", "latency") / f"{report_version}.json",
                               json.dumps({"summary": summary, "samples": samples}, ensure_ascii=False, indent=2))
    picture = histograms_png({"client wall time": [s["wall_ms"] for s in samples],
                              "time to first token": [s["ttft_ms"] for s in samples]},
                             report.with_suffix(".png"), f"latency_report: {ollama_model['name']}", "milliseconds")
    wall, ttft = summary["wall_ms"], summary["ttft_ms"]
    return dg.Output(
        {"path": str(report), **summary},
        metadata={
            "p50_ms": wall["p50"], "p95_ms": wall["p95"], "p99_ms": wall["p99"], "ttft_p50_ms": ttft["p50"],
            "server_total_p50_ms": summary["server_total_ms"]["p50"], "tokens_per_second": summary["tokens_per_second"],
            "requests": summary["requests"], "concurrency": config.concurrency, "passed_spec": summary["passed"],
            "histogram": dg.MetadataValue.md(markdown_image(picture, "latency histogram")),
            "report": dg.MetadataValue.path(str(report)),
        },
    )


@dg.asset_check(asset=latency_report, description="client latency p50 ≤ 500 ms and p95 ≤ 1 s (LatencyConfig)")
def latency_spec(latency_report: dict) -> dg.AssetCheckResult:
    wall, spec = latency_report["wall_ms"], latency_report["spec"]
    return dg.AssetCheckResult(
        passed=latency_report["passed"],
        metadata={"p50_ms": wall["p50"], "p95_ms": wall["p95"], "p50_max_ms": spec["p50_max_ms"],
                  "p95_max_ms": spec["p95_max_ms"]},
    )
