"""What hardware this run has, which backend and precision follow from it, and a report for the metadata."""

from __future__ import annotations

import platform
import resource
import sys
from importlib import metadata


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_backend(requested: str) -> str:
    """``auto`` means Unsloth on an NVIDIA GPU and TRL + PEFT anywhere else."""
    if requested != "auto":
        if requested == "unsloth" and not has_cuda():
            raise RuntimeError("backend='unsloth' needs an NVIDIA GPU with CUDA; use backend='trl' (or 'auto') here")
        return requested
    return "unsloth" if has_cuda() else "trl"


def pick_precision(requested: str) -> str:
    """``auto``: bf16 on a GPU that supports it, else fp32 (Gemma 3n overflows in fp16, so auto never picks it)."""
    import torch

    if requested != "auto":
        return requested
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def report(backend: str) -> dict[str, str]:
    """torch, CUDA, GPU and library versions: what a person needs to reproduce or compare a run."""
    import torch

    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "none",
        "device": device_name(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "transformers": _version("transformers") or "missing",
        "trl": _version("trl") or "missing",
        "peft": _version("peft") or "missing",
    }
    if backend == "unsloth":
        info["unsloth"] = _version("unsloth") or "missing"
    return info


def peak_memory_mb() -> dict[str, float]:
    """Peak GPU memory allocated (when on CUDA) and the process's peak RSS, in MiB."""
    import torch

    peak = {"process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if torch.cuda.is_available():
        peak["gpu_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return peak
