"""The offline demo: the real pretrained Gemma 3 270M fine-tuned on the bundled sample, on a CPU, in minutes.

    python -m titlegen_assets.demo

Builds llama.cpp first when it is missing (once, into LLAMA_CPP_DIR or ``~/.cache/titlegen/llama.cpp``), so the
eval gate certifies a GGUF file that can be served. Then runs ``dagster asset materialize`` with
``configs/demo.yaml`` (exactly the CLI a user would type). The serving assets run when an Ollama server answers at
OLLAMA_HOST; otherwise they are left out and the last lines give the command that serves the certified file, read
from the run's own hf_repo materialization. Runs are recorded in DAGSTER_HOME (default
``$TITLEGEN_HOME/dagster_home``), so ``dagster dev`` started with the same DAGSTER_HOME shows them in the UI.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from importlib import resources
from pathlib import Path

from titlegen_assets.versioning.artifacts import default_root

#: Where the printed llama-server command listens.
SERVE_PORT = 8080


def demo_config() -> Path:
    return Path(str(resources.files("titlegen_assets") / "configs" / "demo.yaml"))


def ollama_status() -> str | None:
    """None when an Ollama server answers, else why not (with the fix)."""
    from titlegen_assets.defs.resources import OllamaServer, OllamaUnavailable

    try:
        OllamaServer().version()
    except OllamaUnavailable as error:
        return str(error)
    return None


def serve_lines(instance) -> list[str]:
    """How to serve what this run certified, from the hf_repo materialization of the instance's latest run (the
    folder it wrote and the sha256 of each GGUF in it): a llama-server command for the smallest certified GGUF,
    checked again here byte for byte, and the way to the Ollama model."""
    import dagster as dg

    from titlegen_assets.evaluation.llama_server import PREFIX_CACHE_ARGS, binary
    from titlegen_assets.export.gguf_export import require_certified

    run = instance.get_runs(limit=1)[0]
    event = instance.get_latest_materialization_event(dg.AssetKey("hf_repo"))
    if event is None or event.run_id != run.run_id:
        return [f"titlegen demo: run {run.run_id} did not materialize hf_repo, so nothing was certified to serve"]
    metadata = event.asset_materialization.metadata
    folder, certified = Path(metadata["path"].value), metadata["gguf"].value
    if not certified:
        return [f"titlegen demo: no GGUF was certified ({metadata['gguf_gate'].value}); the 16-bit model is in "
                f"{folder}"]
    name, sha256 = next(iter(certified.items()))  # the smallest that passed
    gguf = require_certified(folder / name, sha256, "the demo's serve command")
    command = [str(binary()), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(SERVE_PORT), *PREFIX_CACHE_ARGS]
    return [f"titlegen demo: the eval gate certified {name} (sha256 {sha256[:16]}…); serve it now with llama.cpp "
            f"(OpenAI-compatible API at http://127.0.0.1:{SERVE_PORT}/v1: the instruction, "
            "titlegen_assets.prompts.INSTRUCTION, as the system message and temperature 0 give the gate's prompt and "
            "decoding):",
            f"  {shlex.join(command)}",
            "titlegen demo: or with Ollama, checked again where it answers and timed: start it (`ollama serve`) and "
            "run python -m titlegen_assets.demo again (every step before ollama_model is reused)"]


def main() -> int:
    from titlegen_assets.export.llama_cpp_build import BuildFailed, ensure_built

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(default_root() / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").touch()
    try:
        ensure_built(log=lambda line: print(f"titlegen demo: {line}", flush=True))
    except BuildFailed as error:
        print(f"titlegen demo: {error}", file=sys.stderr)
        return 1
    unavailable = ollama_status()
    selection = "*" if unavailable is None else "*hf_repo"  # everything, or hf_repo and all it depends on
    command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "titlegen_assets.definitions",
               "--select", selection, "-c", str(demo_config())]
    print(f"titlegen demo: {' '.join(command[1:])}\n(DAGSTER_HOME={home})", flush=True)
    code = subprocess.call(command)
    if code != 0:
        print("titlegen demo: the run failed; see the log above", file=sys.stderr)
        return code
    if unavailable is None:
        print("titlegen demo: done; all seven assets materialized")
        return 0
    import dagster as dg

    print(f"titlegen demo: done through hf_repo; ollama_model and latency_report were not run: {unavailable}")
    with dg.DagsterInstance.get() as instance:
        print("\n".join(serve_lines(instance)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
