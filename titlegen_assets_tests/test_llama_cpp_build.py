"""docker/build_llama_cpp.sh checks the llama-cpp-python source against its pinned sha256 before anything is built.

The script runs for real with pip's own settings pointing it at a local folder (PIP_NO_INDEX, PIP_FIND_LINKS), so a
tampered package is met without a network; its run on the genuine package is the llama_cpp fixture's (CI builds
from nothing) and the images'."""

import subprocess
import sys
import tarfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "docker" / "build_llama_cpp.sh"


def test_a_source_package_that_is_not_the_pinned_one_is_refused_before_anything_is_built(tmp_path):
    links, tools = tmp_path / "links", tmp_path / "bin"
    links.mkdir()
    tools.mkdir()
    tampered = tmp_path / "llama_cpp_python-0.3.36"  # right name and version, other bytes
    tampered.mkdir()
    (tampered / "CMakeLists.txt").write_text("# not llama.cpp\n")
    with tarfile.open(links / "llama_cpp_python-0.3.36.tar.gz", "w:gz") as archive:
        archive.add(tampered, arcname=tampered.name)
    ran = tmp_path / "cmake-ran"
    (tools / "cmake").write_text(f"#!/bin/sh\ntouch {ran}\n")  # stands for cmake: records that the build began
    (tools / "cmake").chmod(0o755)
    dest = tmp_path / "llama.cpp"
    result = subprocess.run(
        ["bash", str(SCRIPT), str(dest)], capture_output=True, text=True,
        env={"PATH": f"{tools}:/usr/bin:/bin", "HOME": str(tmp_path), "PYTHON": sys.executable,
             "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(links), "PIP_CONFIG_FILE": "/dev/null"})
    assert result.returncode != 0
    assert "DO NOT MATCH THE HASHES" in result.stderr  # pip's hash-checking mode refused the file
    assert "not the file whose sha256 is pinned here" in result.stderr and "nothing was built" in result.stderr
    assert not ran.exists() and not dest.exists()
