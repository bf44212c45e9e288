"""Serving with Ollama through its official client: create the model from the merged model's GGUF (or its
safetensors folder), ask it, time it."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from titlegen_assets import gguf_export, modelfile
from titlegen_assets.prompts import INSTRUCTION, article_text, ollama_template

#: The first release that imports Gemma 3n safetensors (text only).
MIN_VERSION = (0, 9, 3)


def parse_version(version: str) -> tuple[int, ...]:
    numbers = []
    for part in version.split("-")[0].split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits or 0))
    return tuple(numbers)


def require_version(version: str, host: str) -> None:
    if parse_version(version) < MIN_VERSION:
        raise RuntimeError(
            f"Ollama {version} at OLLAMA_HOST={host} cannot import Gemma 3n safetensors (needs "
            f"{'.'.join(map(str, MIN_VERSION))} or newer); upgrade Ollama (re-run its installer, or "
            "`docker compose pull ollama`)"
        )


def explain(error: Exception, host: str, version: str, model: str) -> RuntimeError:
    """An Ollama failure with OLLAMA_HOST, the server version and the fix."""
    text = str(getattr(error, "error", error))
    status = getattr(error, "status_code", None)
    where = f"(OLLAMA_HOST={host}, Ollama {version})"
    if status == 404 or "not found" in text:
        fix = f"model {model} is not on the server: materialize ollama_model first"
    elif "memory" in text.lower():
        fix = "the server ran out of memory: use a smaller quantization (q4_K_M), unload other models, or set OLLAMA_NUM_PARALLEL=1"
    elif "intermediate_size" in text or "unsupported" in text.lower() or "architecture" in text.lower():
        fix = "this Ollama cannot import this model's config (Gemma 3n needs a mid-2026 or newer release; ollama issue 11615): upgrade Ollama"
    else:
        fix = "see the server's log (`journalctl -u ollama` or `docker compose logs ollama`)"
    return RuntimeError(f"Ollama failed {where}: {text.rstrip('.')}. {fix}")


@dataclass(frozen=True)
class ImportPlan:
    """What ``ollama create`` is given, and the Modelfile's FROM for users who create it by hand."""

    source: Path
    files: dict[str, Path]
    quantize: str | None


def import_plan(import_from: str, quantize: str | None, merged_dir: Path, gguf_dir: Path) -> ImportPlan:
    """From gguf: the merged model's GGUF made by llama.cpp at ``quantize`` (exported once under ``gguf_dir``,
    shared with hf_repo); Ollama refuses to quantize an already quantized GGUF, so it is not asked to. From
    safetensors: every file of the merged folder, quantized by ``ollama create``."""
    if import_from == "gguf":
        gguf = gguf_export.exported(merged_dir, gguf_dir, quantize or "BF16")
        return ImportPlan(gguf, {gguf.name: gguf}, None)
    files = {str(path.relative_to(merged_dir)): path for path in modelfile.model_files(merged_dir)}
    return ImportPlan(merged_dir, files, quantize)


def create_model(client, name: str, plan: ImportPlan, temperature: float, num_predict: int,
                 log: Callable[[str], None], runtime: dict | None = None) -> dict[str, str]:
    """Upload the plan's files as blobs, then create the model from them with the training prompt."""
    digests = {}
    for relative, path in plan.files.items():
        digests[relative] = client.create_blob(path)
        log(f"uploaded {relative} ({path.stat().st_size / 2**20:.1f} MiB)")
    for progress in client.create(
        model=name, files=digests, template=ollama_template(), system=INSTRUCTION,
        parameters=modelfile.parameters(temperature, num_predict, runtime), quantize=plan.quantize, stream=True,
    ):
        log(f"ollama create: {progress.status}")
    return digests


def ask(client, name: str, content: str, keep_alive: str, stream: bool = False):
    """One title request as every consumer sends it: the article as the prompt, the Modelfile's SYSTEM and TEMPLATE."""
    return client.generate(model=name, prompt=article_text(content), keep_alive=keep_alive, stream=stream)


def timed_request(client, name: str, content: str, keep_alive: str) -> dict:
    """Stream one request: client wall time, time to first token, and the server's own durations."""
    started = time.perf_counter()
    first = None
    final = None
    text = ""
    for chunk in ask(client, name, content, keep_alive, stream=True):
        if first is None and chunk.response:
            first = time.perf_counter()
        text += chunk.response or ""
        final = chunk
    ended = time.perf_counter()
    return {
        "wall_ms": (ended - started) * 1000,
        "ttft_ms": ((first or ended) - started) * 1000,
        "total_duration": final.total_duration or 0,
        "load_duration": final.load_duration or 0,
        "prompt_eval_count": final.prompt_eval_count or 0,
        "prompt_eval_duration": final.prompt_eval_duration or 0,
        "eval_count": final.eval_count or 0,
        "eval_duration": final.eval_duration or 0,
        "response": text.strip(),
    }


def measure(client, name: str, contents: list[str], concurrency: int, keep_alive: str, warmup: int) -> list[dict]:
    """Warm up (not counted), then send the requests with ``concurrency`` in flight at once."""
    for content in contents[:warmup]:
        timed_request(client, name, content, keep_alive)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(lambda content: timed_request(client, name, content, keep_alive), contents))
