"""Serving with Ollama through its official client: create the model from the GGUF file the eval gate certified,
ask it, time it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from titlegen_assets.prompts import INSTRUCTION, article_text, ollama_template
from titlegen_assets.serving import modelfile

#: The first Ollama release that runs each architecture (a model's ``model_type``): Gemma 3 arrived in 0.6.0,
#: Gemma 3n in 0.9.3. The README quotes this table; the Docker stack pins a release above both.
MIN_OLLAMA = {"gemma3": "0.6.0", "gemma3_text": "0.6.0", "gemma3n": "0.9.3", "gemma3n_text": "0.9.3"}


def parse_version(version: str) -> tuple[int, ...]:
    numbers = []
    for part in version.split("-")[0].split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits or 0))
    return tuple(numbers)


def require_version(version: str, host: str, architecture: str) -> None:
    """Refuse an Ollama too old for the model's architecture, before anything is uploaded."""
    needed = MIN_OLLAMA.get(architecture)
    if needed and parse_version(version) < parse_version(needed):
        raise RuntimeError(
            f"Ollama {version} at OLLAMA_HOST={host} cannot run a {architecture} model (needs {needed} or newer); "
            "upgrade Ollama (re-run its installer, or `docker compose pull ollama`)"
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
    elif "unsupported" in text.lower() or "architecture" in text.lower():
        fix = ("this Ollama cannot run this model's architecture (the first releases that can: "
               f"{', '.join(f'{arch} {version}' for arch, version in MIN_OLLAMA.items())}): upgrade Ollama")
    else:
        fix = "see the server's log (`journalctl -u ollama` or `docker compose logs ollama`)"
    return RuntimeError(f"Ollama failed {where}: {text.rstrip('.')}. {fix}")


def create_model(client, name: str, gguf: Path, certified_sha256: str, num_predict: int,
                 log: Callable[[str], None], runtime: dict | None = None) -> str:
    """Upload the certified GGUF as a blob (Ollama names a blob by its sha256, so the upload is refused unless it is
    the certified file), then create the model from it with the training prompt. Returns the blob digest."""
    digest = client.create_blob(gguf)
    if digest != f"sha256:{certified_sha256}":
        raise RuntimeError(f"Ollama stored {gguf.name} as {digest}, not the certified sha256:{certified_sha256[:16]}…; "
                           "the file changed after the eval gate ran: re-materialize merged_hf_model with its checks")
    log(f"uploaded {gguf.name} ({gguf.stat().st_size / 2**20:.1f} MiB, {digest[:19]}…)")
    for progress in client.create(
        model=name, files={gguf.name: digest}, template=ollama_template(), system=INSTRUCTION,
        parameters=modelfile.parameters(num_predict, runtime), stream=True,
    ):
        log(f"ollama create: {progress.status}")
    return digest


def ask(client, name: str, content: str, keep_alive: str, stream: bool = False):
    """One title request as every consumer sends it: the article as the prompt, the Modelfile's SYSTEM and TEMPLATE."""
    return client.generate(model=name, prompt=article_text(content), keep_alive=keep_alive, stream=stream)


def answers(client, name: str, contents: list[str], keep_alive: str) -> list[dict]:
    """One answer per article as the model is served (the Modelfile's decoding, no option overridden): its title and
    whether it stopped on its own (``done_reason`` "stop": a stop sequence or end of generation, not the cap)."""
    return [{"title": response.response.strip(), "stopped": response.done_reason == "stop"}
            for response in (ask(client, name, content, keep_alive) for content in contents)]


#: Where ``/api/show``'s Modelfile names the model's weights: ``FROM <models>/blobs/sha256-<hex>``.
_FROM_BLOB = re.compile(r"^FROM .*sha256[-:]([0-9a-f]{64})\s*$", re.MULTILINE)


def served_blob_sha256(client, name: str) -> str | None:
    """The sha256 of the GGUF the server runs for ``name``: Ollama stores each blob under its sha256 and its
    ``show`` Modelfile names it in ``FROM``. None when it names none."""
    match = _FROM_BLOB.search(client.show(name).modelfile or "")
    return match.group(1) if match else None


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


def measure(client, name: str, contents: list[str], concurrency: int, keep_alive: str,
            warmup: list[str]) -> list[dict]:
    """Warm up with ``warmup`` (not counted), then send ``contents`` with ``concurrency`` in flight at once."""
    for content in warmup:
        timed_request(client, name, content, keep_alive)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(lambda content: timed_request(client, name, content, keep_alive), contents))
