"""llama.cpp built once into its cache when it is missing, so a laptop's first run makes and certifies GGUF files
instead of skipping them. The build is ``docker/build_llama_cpp.sh`` (the images and CI run the same script)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from titlegen_assets.export.gguf_export import llama_cpp_dir, missing_tools

#: The build script, in the source tree (the Quick start installs from a clone, ``pip install -e``).
BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "build_llama_cpp.sh"


class BuildFailed(RuntimeError):
    """llama.cpp is missing and could not be built here."""


def ensure_built(root: Path | None = None, log=print) -> Path:
    """``root`` (default LLAMA_CPP_DIR or ``~/.cache/titlegen/llama.cpp``) with the converter, llama-quantize and
    llama-server, built first when any is missing (12–15 minutes on 2 cores, with the build's progress printed)."""
    root = root or llama_cpp_dir()
    missing = missing_tools(root)
    if missing is None:
        return root
    if not BUILD_SCRIPT.is_file():
        raise BuildFailed(f"{missing}, and the build script {BUILD_SCRIPT} is not here (titlegen was installed "
                          "without its source tree): run docker/build_llama_cpp.sh from a clone of titlegen, or point "
                          "LLAMA_CPP_DIR at a llama.cpp tree built with it")
    log(f"llama.cpp is not built yet ({missing}); building it once into {root} (12–15 minutes on 2 cores; later "
        "runs reuse it)")
    # the script downloads the source with this interpreter's pip (a laptop's system python3 may have none)
    code = subprocess.call(["bash", str(BUILD_SCRIPT), str(root)], env={**os.environ, "PYTHON": sys.executable})
    if code != 0:
        raise BuildFailed(f"llama.cpp could not be built into {root} (docker/build_llama_cpp.sh exited {code}; it "
                          f"said why above, and its whole log is {root}.build.log). Without it no GGUF is made or "
                          "certified, so nothing could be served: install what it names and run the demo again")
    missing = missing_tools(root)
    if missing:
        raise BuildFailed(f"docker/build_llama_cpp.sh finished but {missing}; its log is {root}.build.log")
    return root
