"""What hardware this run has, which backend and precision follow from it, and a report for the metadata."""

from __future__ import annotations

import platform
import resource
import sys
from importlib import metadata
from pathlib import Path


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


#: CPU flags of native bf16 arithmetic (Linux /proc/cpuinfo names); without them bf16 is emulated and slower than fp32.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


def pick_precision(requested: str) -> str:
    """``auto``: bf16 on a GPU that supports it or a CPU with native bf16 (avx512_bf16/AMX), else fp32.

    Gemma 3n overflows in fp16, so auto never picks it; a bf16 run whose loss turns non-finite is retried in fp32.
    """
    import torch

    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device_name() == "cpu" and cpu_flags() & set(CPU_BF16_FLAGS):
        return "bf16"
    return "fp32"


def package_version(package: str) -> str | None:
    """The installed version of ``package``, or None when it is not installed."""
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
        "transformers": package_version("transformers") or "missing",
        "trl": package_version("trl") or "missing",
        "peft": package_version("peft") or "missing",
    }
    if backend == "unsloth":
        info["unsloth"] = package_version("unsloth") or "missing"
    return info


def peak_memory_mb() -> dict[str, float]:
    """Peak GPU memory allocated (when on CUDA) and the process's peak RSS, in MiB."""
    import torch

    peak = {"process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if torch.cuda.is_available():
        peak["gpu_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return peak


def torch_dtype(precision: str):
    """The torch dtype a resolved precision loads weights in (``bf16``, ``fp16``, ``fp32``)."""
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]


def precision_of(args) -> str:
    """The precision a TrainingArguments/SFTConfig trains in."""
    return "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"


def loaded_weights(model) -> dict[str, str]:
    """What the weights are after loading, read from the model, not from the config asked for: the dtype of the
    frozen floating-point weights (the base model under LoRA) and, where layers are 4-bit (bitsandbytes
    ``Params4bit``, stored as uint8 with a ``quant_state``), that they are and the dtype they compute in."""
    parameters = list(model.parameters())
    floating = [p for p in parameters if p.is_floating_point()]
    frozen = [p for p in floating if not p.requires_grad] or floating
    weights = {"weights_dtype": str(frozen[0].dtype).removeprefix("torch.") if frozen else "none"}
    quantized = [p for p in parameters if getattr(p, "quant_state", None) is not None]
    if quantized:
        state = quantized[0].quant_state
        weights["weights_4bit"] = f"{len(quantized)} tensors ({getattr(state, 'quant_type', '4-bit')})"
        weights["compute_dtype"] = str(state.dtype).removeprefix("torch.")
    return weights
