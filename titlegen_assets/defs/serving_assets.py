"""Serve stage: ollama_model (created from the certified GGUF with the training prompt) and latency_report."""

import json
from itertools import cycle, islice
from pathlib import Path
from typing import Optional

import dagster as dg
from pydantic import Field

from titlegen_assets.data.splitting import held_out_articles
from titlegen_assets.defs.evaluation_checks import GGUF_CERTIFIED, certified_ggufs, passed_gate
from titlegen_assets.defs.guard import latest_if_version
from titlegen_assets.defs.resources import ArtifactStore, OllamaServer
from titlegen_assets.export.gguf_export import require_certified
from titlegen_assets.export.model_card import model_name_for
from titlegen_assets.prompts import TITLE_MAX_NEW_TOKENS
from titlegen_assets.serving import latency, modelfile, ollama_client
from titlegen_assets.ui.plots import histograms_png, markdown_image
from titlegen_assets.versioning.artifacts import atomic_write_text
from titlegen_assets.versioning.code_version import SERVING_CODE
from titlegen_assets.versioning.fingerprint import fingerprint


class OllamaModelConfig(dg.Config):
    """The Ollama model created from the GGUF file the eval gate certified (the smallest, when several passed)."""

    model_name: Optional[str] = Field(
        default=None, description="Ollama model name; default derived from the base model (e.g. "
        "titlegen-gemma-3n-e4b-it-zh-tw), so a fine-tune of one base never takes another's name.")
    tag: str = Field(default="latest", description="Ollama model tag.")
    temperature: float = Field(default=0.1, ge=0, le=2, description="Sampling temperature; titles want near-greedy.")
    num_predict: int = Field(default=TITLE_MAX_NEW_TOKENS, gt=0, description="Cap on generated tokens: a title is short.")
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

    requests: int = Field(default=100, gt=0, description="Measured requests, built from test-split articles.")
    concurrency: int = Field(default=2, gt=0, description="Requests in flight at once (match OLLAMA_NUM_PARALLEL).")
    warmup: int = Field(default=3, ge=0, description="Requests sent first and not counted (model load).")
    p50_max_ms: float = Field(default=latency.SPEC_P50_MS, gt=0, description="Spec: median client latency, milliseconds.")
    p95_max_ms: float = Field(default=latency.SPEC_P95_MS, gt=0,
                              description="Spec: 95th percentile client latency, milliseconds.")



@dg.asset(group_name="serve", kinds={"ollama"}, deps=["hf_repo"], code_version=SERVING_CODE)
def ollama_model(
    context: dg.AssetExecutionContext, config: OllamaModelConfig, artifacts: ArtifactStore, ollama: OllamaServer,
    merged_hf_model: dict, cleaned_splits: dict,
) -> dg.Output[dict]:
    """The certified GGUF on the Ollama server, created through the official client with the training prompt; the
    Modelfile is written too. Refuses a merged model whose eval gate failed or never ran, a merged model with no
    certified GGUF, and a file whose sha256 is not the certified one. Recreates nothing when the same version is
    already on the server."""
    evaluations = passed_gate(context, merged_hf_model, "ollama_model")
    certified = certified_ggufs(evaluations)
    if not certified:
        raise dg.Failure(f"ollama_model: merged_hf_model {merged_hf_model['version']} has no certified GGUF to serve "
                         f"({evaluations[GGUF_CERTIFIED].description}); build llama.cpp where merged_hf_model runs "
                         "(docker/build_llama_cpp.sh, LLAMA_CPP_DIR) and re-materialize it with its checks")
    quantization, sha256 = next(iter(certified.items()))  # the smallest that passed
    gguf = require_certified(Path(merged_hf_model["gguf"]["files"][quantization]["path"]), sha256, "ollama_model")
    name = config.name(merged_hf_model["base_model_name"])
    version = fingerprint(merged_hf_model["version"], sha256, name, config.model_dump(), SERVING_CODE)
    host, server_version = ollama.base_url(), ollama.version()
    ollama_client.require_version(server_version, host, merged_hf_model["architecture"])
    client = ollama.client()
    text = modelfile.render(gguf, config.temperature, config.num_predict, config.runtime_options())
    modelfile_path = atomic_write_text(artifacts.path("ollama", version) / "Modelfile", text)
    previous = unchanged_on_server(context, client, name, version)
    try:
        if previous:
            context.log.info(f"ollama_model {name}: version {version} is already on the server; nothing re-created")
        else:
            ollama_client.create_model(client, name, gguf, sha256, config.temperature, config.num_predict,
                                       context.log.info, config.runtime_options())
        article = held_out_articles(cleaned_splits["path"])[0]
        answer = ollama_client.ask(client, name, article["content"], config.keep_alive)
        listed = {m.model: m for m in client.list().models}
    except Exception as error:
        raise ollama_client.explain(error, host, server_version, name) from error
    digest = listed[name].digest if name in listed else "unknown"
    context.log.info(f"ollama_model {name}: sample title {answer.response.strip()!r}")
    return dg.Output(
        {"name": name, "host": host, "digest": digest, "merged_version": merged_hf_model["version"],
         "keep_alive": config.keep_alive, "gguf": {quantization: sha256}},
        data_version=dg.DataVersion(version),
        metadata={
            "model": name, "quantization": quantization, "gguf_sha256": sha256, "server_version": server_version,
            "merged_version": merged_hf_model["version"],
            "host": host, "digest": digest, "recreated": not previous,
            "sample_reference": article["title"], "sample_response": answer.response.strip(),
            "modelfile": dg.MetadataValue.md(f"```\n{text}```"), "modelfile_path": dg.MetadataValue.path(str(modelfile_path)),
        },
    )


def unchanged_on_server(context: dg.AssetExecutionContext, client, name: str, version: str) -> bool:
    """Whether the last ollama_model materialization made this same version and the server still holds that model
    (same digest): then nothing needs re-creating."""
    materialization = latest_if_version(context.instance, dg.AssetKey("ollama_model"), version)
    if materialization is None:
        return False
    listed = {m.model: m.digest for m in client.list().models}
    return listed.get(name) == materialization.metadata["digest"].value


@dg.asset(group_name="serve", kinds={"ollama"})
def latency_report(
    context: dg.AssetExecutionContext, config: LatencyConfig, artifacts: ArtifactStore, ollama: OllamaServer,
    ollama_model: dict, cleaned_splits: dict,
) -> dg.Output[dict]:
    """p50/p95/p99 latency, time to first token and tokens/s of the served model, against the spec.

    Measures only a model whose eval gate passed (the gate of the merged model ollama_model was created from).
    """
    passed_gate(context, {"version": ollama_model["merged_version"]}, "latency_report")
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


@dg.asset_check(asset=latency_report, description=f"{latency.spec_in_words()} (LatencyConfig's defaults)")
def latency_spec(latency_report: dict) -> dg.AssetCheckResult:
    wall, spec = latency_report["wall_ms"], latency_report["spec"]
    return dg.AssetCheckResult(
        passed=latency_report["passed"],
        metadata={"p50_ms": wall["p50"], "p95_ms": wall["p95"], "p50_max_ms": spec["p50_max_ms"],
                  "p95_max_ms": spec["p95_max_ms"]},
    )
