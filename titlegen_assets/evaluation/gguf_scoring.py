"""Score a GGUF file the way it will be served: llama.cpp's llama-server (the runtime Ollama uses for GGUF), the
training prompt rendered by the merged folder's own chat template, greedy decoding, the title token cap.

A quantized model can keep the 16-bit model's words and lose its stop: every answer then runs to the cap. So each
answer also says whether it ended at an end-of-generation token (``<end_of_turn>``) before the cap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from titlegen_assets.evaluation.llama_server import LlamaServer, training_prompts


@dataclass(frozen=True)
class GgufAnswers:
    titles: list[str]
    stopped: list[bool]

    @property
    def stop_rate(self) -> float:
        return sum(self.stopped) / len(self.stopped) if self.stopped else 0.0

    def stops_in_words(self) -> str:
        return f"{sum(self.stopped)}/{len(self.stopped)} answers stopped at <end_of_turn>"


def gguf_answers(gguf: Path, model_dir: Path, contents: list[str], max_new_tokens: int,
                 log: Callable[[str], None] = lambda _: None, threads: int | None = None) -> GgufAnswers:
    """One greedy title per article from llama-server serving ``gguf`` (started on 127.0.0.1, stopped by pid)."""
    titles, stopped = [], []
    with LlamaServer(gguf, threads=threads, start_timeout_s=600) as server:
        for number, prompt in enumerate(training_prompts(model_dir, contents), 1):
            answer = server.complete(prompt, max_new_tokens, timeout_s=600)
            titles.append(answer["content"].strip())
            stopped.append(answer.get("stop_type") == "eos")
            if number % 10 == 0 or number == len(contents):
                log(f"{gguf.name}: {number}/{len(contents)} titles, {sum(stopped)} stopped")
    return GgufAnswers(titles, stopped)
