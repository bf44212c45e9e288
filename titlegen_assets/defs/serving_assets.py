"""Serve stage: ollama_model (created from the merged model's GGUF with the training prompt) and latency_report."""

import json
from itertools import cycle, islice
from typing import Literal, Optional

import dagster as dg
from pydantic import Field, field_validator

from titlegen_assets.data.splitting import held_out_articles
from titlegen_assets.defs.evaluation_checks import passed_gate
from titlegen_assets.defs.resources import ArtifactStore, OllamaServer
from titlegen_assets.prompts import TITLE_MAX_NEW_TOKENS
from titlegen_assets.serving import latency, modelfile, ollama_client
from titlegen_assets.ui.plots import histograms_png, markdown_image
from titlegen_assets.versioning.artifacts import atomic_write_text
from titlegen_assets.versioning.code_version import SERVING_CODE
from titlegen_assets.versioning.fingerprint import fingerprint

#: What ``ollama create`` can quantize to (Ollama's ``ParseFileType``, read upper-cased), in Ollama's spelling;
#: llama-quantize takes the same names when the GGUF is made here.
OLLAMA_QUANTIZATIONS = ("q4_K_M", "q4_K_S", "q8_0")


class OllamaModelConfig(dg.Config):
    """The Ollama model created from the merged model: its llama.cpp GGUF by default, or its safetensors folder."""

    model_name: str = Field(default="titlegen-gemma3n-zh-tw", description="Ollama model name.")
    tag: str = Field(default="latest", description="Ollama model tag.")
    import_from: Literal["gguf", "safetensors"] = Field(
        default="gguf",
        description="gguf: the merged model converted by llama.cpp and quantized by llama-quantize (the import path "
        "Ollama documents for every architecture); safetensors: upload the merged folder and let `ollama create` "
        "convert and quantize it (Gemma 3 safetensors with quantize fail in open upstream reports, ollama#10611).",
    )
    quantize: Optional[str] = Field(
        default="q4_K_M",
        description="Quantization of the served model: q4_K_M, q4_K_S or q8_0; null keeps 16-bit (BF16). From gguf "
        "it is done by llama-quantize before the upload (Ollama is not asked to quantize again); from safetensors "
        "by `ollama create`.",
    )
    temperature: float = Field(default=0.1, ge=0, le=2, description="Sampling temperature; titles want near-greedy.")
    num_predict: int = Field(default=TITLE_MAX_NEW_TOKENS, gt=0, description="Cap on generated tokens: a title is short.")
    keep_alive: str = Field(default="30m", description="How long Ollama keeps the model loaded after a request.")

    @field_validator("quantize")
    @classmethod
    def _ollama_accepts(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        spelled = {name.lower(): name for name in OLLAMA_QUANTIZATIONS}
        if value.lower() not in spelled:
            raise ValueError(f"quantize {value!r} is not a type Ollama quantizes to: use one of "
                             f"{', '.join(OLLAMA_QUANTIZATIONS)} (case does not matter, e.g. q4_k_m is read as "
                             "q4_K_M), or null to keep 16-bit")
        return spelled[value.lower()]

    @property
    def name(self) -> str:
        return f"{self.model_name}:{self.tag}"


class LatencyConfig(dg.Config):
    """The latency measurement against the spec (p50 ≤ 500 ms, p95 ≤ 1 s)."""

    requests: int = Field(default=100, gt=0, description="Measured requests, built from test-split articles.")
    concurrency: int = Field(default=2, gt=0, description="Requests in flight at once (match OLLAMA_NUM_PARALLEL).")
    warmup: int = Field(default=3, ge=0, description="Requests sent first and not counted (model load).")
    p50_max_ms: float = Field(default=500, gt=0, description="Spec: median client latency, milliseconds.")
    p95_max_ms: float = Field(default=1000, gt=0, description="Spec: 95th percentile client latency, milliseconds.")



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
    ollama_client.require_version(version, host)
    client = ollama.client()
    plan = ollama_client.import_plan(config.import_from, config.quantize, Path(merged_hf_model["path"]),
                               artifacts.path("gguf", merged_hf_model["version"]))
    text = modelfile.render(plan.source, config.temperature, config.num_predict)
    modelfile_path = atomic_write_text(artifacts.path("ollama", merged_hf_model["version"]) / "Modelfile", text)
    try:
        files = ollama_client.create_model(client, config.name, plan, config.temperature, config.num_predict,
                                     context.log.info)
        article = held_out_articles(cleaned_splits["path"])[0]
        answer = ollama_client.ask(client, config.name, article["content"], config.keep_alive)
        listed = {m.model: m for m in client.list().models}
    except Exception as error:
        raise ollama_client.explain(error, host, version, config.name) from error
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
        samples = ollama_client.measure(ollama.client(), ollama_model["name"], prompts, config.concurrency,
                                  ollama_model["keep_alive"], config.warmup)
    except Exception as error:
        raise ollama_client.explain(error, host, version, ollama_model["name"]) from error
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
