"""Prove that constraints/gpu.txt with the GPU image's extras resolves to one consistent set, without a GPU.

    python constraints/check_gpu_pins.py [--extras gpu,postgres] [--python 3.12] [--report out.json]

What the GPU image runs (``pip install -c constraints/gpu.txt ".[gpu,postgres]"`` on Ubuntu 24.04, Python 3.12) is
resolved here by pip's own resolver for that target (``--dry-run --python-version --platform``), from a throwaway
virtual environment holding a current pip. Wheel metadata is read with HTTP range requests (``fast-deps``), so the
CUDA wheels (torch, nvidia-*) are not downloaded. Then the report is checked:

- every pin in the constraints file is part of the resolved set, at its pinned version (no dead or ignored pin);
- every resolved package's requirements (markers evaluated for the target) are met by the resolved set;
- torch is the CUDA build (it requires nvidia-* packages).

Exits non-zero with the reason when any of that fails; prints the resolved versions that matter otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints" / "gpu.txt"
#: Pinned packages published only as source distributions: built into a wheel first (pure Python, seconds), because a
#: resolution for another platform accepts wheels only.
SDIST_ONLY = ("rouge-score",)
#: Ubuntu 24.04 has glibc 2.39: every manylinux tag up to 2.39 installs there (pip takes --platform tags literally).
GLIBC_MINOR = 39
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(GLIBC_MINOR, 4, -1)] + [
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
SHOWN = ("torch", "torchvision", "triton", "xformers", "bitsandbytes", "transformers", "trl", "peft", "accelerate",
         "unsloth", "unsloth-zoo", "datasets", "huggingface-hub", "dagster", "protobuf", "cuda-toolkit")


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            [spec] = requirement.specifier
            found[canonicalize_name(requirement.name)] = spec.version
    return found


def pip_with_fast_deps(work: Path) -> Path:
    """A virtual environment with a current pip: fast-deps (range requests) needs pip ≥ 24."""
    venv.create(work / "venv", with_pip=True)
    pip = work / "venv" / "bin" / "pip"
    subprocess.run([pip, "install", "-q", "--upgrade", "pip>=25"], check=True)
    return pip


def resolve(pip: Path, work: Path, extras: str, python: str) -> dict:
    wheels = work / "wheels"
    subprocess.run([pip, "wheel", "-q", "--no-deps", "-c", CONSTRAINTS, "-w", wheels, *SDIST_ONLY], check=True)
    report = work / "report.json"
    command = [pip, "install", "--dry-run", "--ignore-installed", "--use-feature=fast-deps", "--quiet",
               "--target", work / "target", "--python-version", python, *(f"--platform={tag}" for tag in PLATFORMS),
               "--implementation", "cp", "--only-binary", ":all:", "--find-links", wheels,
               "--report", report, "-c", CONSTRAINTS, f"{ROOT}[{extras}]"]
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True)
    if result.returncode != 0:
        explained = [i for i in (result.stderr.find("The conflict is caused by"), result.stderr.find("ERROR")) if i >= 0]
        sys.exit(f"constraints/gpu.txt does not resolve for Python {python} on glibc 2.{GLIBC_MINOR} x86_64:\n"
                 f"{result.stderr[min(explained, default=0):][:4000]}")
    return json.loads(report.read_text())


def target_environment(python: str) -> dict[str, str]:
    environment = default_environment()
    environment.update(python_version=python, python_full_version=f"{python}.0", sys_platform="linux",
                       platform_system="Linux", platform_machine="x86_64", os_name="posix",
                       implementation_name="cpython", platform_python_implementation="CPython")
    return environment


def problems(report: dict, pinned: dict[str, str], extras: str, python: str) -> tuple[list[str], dict[str, str]]:
    resolved = {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"] for item in report["install"]}
    found = [f"pin {name}=={version} is not part of the resolved set" for name, version in pinned.items()
             if name not in resolved]
    found += [f"pin {name}=={version} resolved to {resolved[name]}" for name, version in pinned.items()
              if name in resolved and resolved[name].split("+")[0] != version]
    environment = target_environment(python)
    for item in report["install"]:
        name = item["metadata"]["name"]
        wanted = set(extras.split(",")) if canonicalize_name(name) == "titlegen" else set()
        for line in item["metadata"].get("requires_dist", []):
            requirement = Requirement(line)
            if requirement.marker and not any(requirement.marker.evaluate({**environment, "extra": extra})
                                              for extra in wanted | {""}):
                continue
            have = resolved.get(canonicalize_name(requirement.name))
            if have is None:
                found.append(f"{name} requires {requirement} but it is not in the resolved set")
            elif not requirement.specifier.contains(have, prereleases=True):
                found.append(f"{name} requires {requirement} but {have} is resolved")
    torch = next(item for item in report["install"] if canonicalize_name(item["metadata"]["name"]) == "torch")
    if not any(line.startswith("nvidia-") for line in torch["metadata"].get("requires_dist", [])):
        found.append(f"torch {resolved['torch']} resolved to a build without CUDA ({torch['download_info']['url']})")
    return found, resolved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extras", default="gpu,postgres", help="extras the GPU image installs")
    parser.add_argument("--python", default="3.12", help="the GPU image's Python (Ubuntu 24.04: 3.12)")
    parser.add_argument("--report", type=Path, help="also keep pip's resolution report here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        report = resolve(pip_with_fast_deps(work), work, args.extras, args.python)
    if args.report:
        args.report.write_text(json.dumps(report, indent=1))
    found, resolved = problems(report, pins(CONSTRAINTS), args.extras, args.python)
    if found:
        sys.exit("constraints/gpu.txt resolves to an inconsistent set:\n  " + "\n  ".join(found))
    shown = ", ".join(f"{name} {resolved[name]}" for name in SHOWN if name in resolved)
    print(f"constraints/gpu.txt + [{args.extras}] resolves for Python {args.python} on glibc 2.{GLIBC_MINOR} x86_64: "
          f"{len(resolved)} packages, consistent. {shown}")


if __name__ == "__main__":
    main()
