"""The offline demo: the real pretrained Gemma 3 270M fine-tuned on the bundled sample, on a CPU, in minutes.

    python -m titlegen_assets.demo

Runs ``dagster asset materialize`` with ``configs/demo.yaml`` (so it is exactly the CLI a user would type). The
serving assets run when an Ollama server answers at OLLAMA_HOST; otherwise they are left out and the last line
says how to start Ollama. Runs are recorded in DAGSTER_HOME (default ``$TITLEGEN_HOME/dagster_home``), so
``dagster dev`` started with the same DAGSTER_HOME shows them in the UI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

from titlegen_assets.versioning.artifacts import default_root


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


def main() -> int:
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(default_root() / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").touch()
    unavailable = ollama_status()
    selection = "*" if unavailable is None else "*hf_repo"  # everything, or hf_repo and all it depends on
    command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "titlegen_assets.definitions",
               "--select", selection, "-c", str(demo_config())]
    print(f"titlegen demo: {' '.join(command[1:])}\n(DAGSTER_HOME={home})", flush=True)
    code = subprocess.call(command)
    if code != 0:
        print("titlegen demo: the run failed; see the log above", file=sys.stderr)
        return code
    if unavailable:
        print(f"titlegen demo: done; ollama_model and latency_report were not run: {unavailable}")
    else:
        print("titlegen demo: done; all seven assets materialized")
    return 0


if __name__ == "__main__":
    sys.exit(main())
