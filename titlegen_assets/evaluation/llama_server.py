"""llama.cpp's ``llama-server`` serving one GGUF on loopback: the runtime Ollama uses for GGUF models, run directly
where no Ollama can be (this project's development machines). Verifies exported GGUFs token for token and measures
serving latency (``benchmarks/serve_latency.py``).

The server is started as a child process listening on 127.0.0.1 only and stopped by its pid.
"""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from titlegen_assets.export import gguf_export
from titlegen_assets.prompts import GREEDY

#: Keep a full-size cache for the sliding-window layers (Gemma 3 has them), so the instruction every request starts
#: with stays in the prompt cache: without it llama-server re-evaluates ~116 of ~129 prompt tokens per request, with
#: it ~88 (benchmarks/RESULTS.md, serving latency side by side). The window is still applied; only memory grows.
PREFIX_CACHE_ARGS = ("--swa-full",)


def training_prompt(tokenizer, content: str) -> str:
    """The text training renders for one article (the model's own chat template over the prompts module's
    messages), without the leading ``<bos>``, which the server adds itself: what ``/completion`` is sent."""
    from titlegen_assets.prompts import prompt_messages

    text = tokenizer.apply_chat_template(prompt_messages(content), tokenize=False, add_generation_prompt=True)
    return text.removeprefix(tokenizer.bos_token)


def training_prompts(model_dir: Path, contents: list[str]) -> list[str]:
    """``training_prompt`` of each article, rendered by the merged folder's own tokenizer and chat template."""
    from transformers import AutoTokenizer

    from titlegen_assets.training.processing import text_tokenizer

    tokenizer = text_tokenizer(AutoTokenizer.from_pretrained(str(model_dir)))
    return [training_prompt(tokenizer, content) for content in contents]


def binary(root: Path | None = None) -> Path:
    path = (root or gguf_export.llama_cpp_dir()) / "build" / "bin" / "llama-server"
    if not path.is_file():
        raise FileNotFoundError(f"llama-server is not built at {path} (run docker/build_llama_cpp.sh)")
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LlamaServer:
    """``with LlamaServer(gguf) as server: server.complete(prompt, 24)``; ``parallel`` slots serve that many requests
    at once (llama-server's ``-np``), each with ``context`` tokens."""

    def __init__(self, gguf: Path, parallel: int = 1, context: int = 2048, threads: int | None = None,
                 start_timeout_s: float = 120.0, extra_args: tuple[str, ...] = PREFIX_CACHE_ARGS):
        self.gguf, self.parallel, self.context, self.threads = Path(gguf), parallel, context, threads
        self.extra_args = tuple(extra_args)
        self.start_timeout_s = start_timeout_s
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()

    def __enter__(self) -> LlamaServer:
        import httpx

        command = [str(binary()), "-m", str(self.gguf), "--host", "127.0.0.1", "--port", str(self.port),
                   "-np", str(self.parallel), "-c", str(self.context * self.parallel)]
        if self.threads:
            command += ["-t", str(self.threads)]
        command += list(self.extra_args)
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.__exit__(None, None, None)
                raise RuntimeError(f"llama-server exited with {self.process.returncode} while loading {self.gguf}: "
                                   f"{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.__exit__(None, None, None)
        raise TimeoutError(f"llama-server did not load {self.gguf} within {self.start_timeout_s:.0f} s: {self.log_tail()}")

    def __exit__(self, *exc) -> None:
        """Stop the server by its pid: SIGTERM, then SIGKILL if it has not exited in 10 s."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, chars: int = 2000) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", errors="replace")[-chars:]

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` as the server reads a prompt (``<bos>`` added, special tokens parsed)."""
        import httpx

        response = httpx.post(f"{self.url}/tokenize", json={"content": text, "add_special": True, "parse_special": True},
                              timeout=60)
        response.raise_for_status()
        return response.json()["tokens"]

    def complete(self, prompt: str, n_predict: int, cache_prompt: bool = True, timeout_s: float = 120.0,
                 sampling: dict | None = None) -> dict:
        """One completion of the raw prompt (``<bos>`` is added by the server), greedy unless ``sampling`` says
        otherwise (llama-server's ``temperature``, ``top_k``, ``stop``): the generated ``tokens`` and ``content``,
        why it stopped (``stop_type``: ``eos`` at an end-of-generation token, ``word`` at a stop string, ``limit`` at
        n_predict) and the server's ``timings``."""
        import httpx

        body = {"prompt": prompt, "n_predict": n_predict, "return_tokens": True, "cache_prompt": cache_prompt,
                **(GREEDY if sampling is None else sampling)}
        response = httpx.post(f"{self.url}/completion", json=body, timeout=timeout_s)
        response.raise_for_status()
        return response.json()

    def timed_completion(self, prompt: str, n_predict: int, timeout_s: float = 120.0) -> dict:
        """Stream one greedy completion and time it as the latency report does: client wall time, time to the first
        generated piece, and the server's own durations in Ollama's names and units (nanoseconds); beside them, the
        prompt tokens the server took from its prompt cache (``cache_n``) instead of evaluating."""
        import httpx

        body = {"prompt": prompt, "n_predict": n_predict, "stream": True, "cache_prompt": True, **GREEDY}
        started = time.perf_counter()
        first, final, text = None, {}, ""
        with httpx.stream("POST", f"{self.url}/completion", json=body, timeout=timeout_s) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                chunk = json.loads(line[len("data: "):])
                if first is None and chunk.get("content"):
                    first = time.perf_counter()
                text += chunk.get("content", "")
                final = chunk
        ended = time.perf_counter()
        timings = final.get("timings", {})
        prompt_ns, eval_ns = timings.get("prompt_ms", 0) * 1e6, timings.get("predicted_ms", 0) * 1e6
        return {
            "wall_ms": (ended - started) * 1000, "ttft_ms": ((first or ended) - started) * 1000,
            "total_duration": prompt_ns + eval_ns, "load_duration": 0,
            "prompt_eval_count": timings.get("prompt_n", 0), "prompt_eval_duration": prompt_ns,
            "prompt_cached_count": timings.get("cache_n", 0),
            "eval_count": timings.get("predicted_n", 0), "eval_duration": eval_ns,
            "stop_type": final.get("stop_type"), "response": text.strip(),
        }
