"""Choices the code makes from its environment: training backend and precision, Ollama's address, the executor."""

import os
import subprocess
import sys

import pytest

from titlegen_assets.defs.resources import OllamaServer
from titlegen_assets.training import environment


@pytest.mark.parametrize(("flags", "precision"), [({"avx512_bf16", "avx2"}, "bf16"), ({"amx_bf16"}, "bf16"),
                                                  ({"avx2", "avx512f"}, "fp32")])
def test_auto_on_a_cpu_is_trl_with_bf16_only_where_the_cpu_has_native_bf16(monkeypatch, flags, precision):
    monkeypatch.setattr(environment, "cpu_flags", lambda: flags)
    assert (environment.pick_backend("auto"), environment.pick_precision("auto")) == ("trl", precision)


def test_unsloth_without_cuda_is_refused_with_what_to_use_instead():
    with pytest.raises(RuntimeError, match="backend='trl'"):
        environment.pick_backend("unsloth")


@pytest.mark.parametrize(("bf16", "precision"), [(True, "bf16"), (False, "fp32")])
def test_auto_on_an_nvidia_gpu_picks_unsloth_and_bf16_only_where_the_gpu_has_it(monkeypatch, bf16, precision):
    import torch

    # No GPU here: torch's two CUDA queries answer as they would on an NVIDIA machine with or without bf16.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    assert (environment.pick_backend("auto"), environment.pick_precision("auto")) == ("unsloth", precision)
    assert environment.pick_precision("fp32") == "fp32"


@pytest.mark.parametrize(
    ("ollama_host", "url"),
    [
        (None, "http://127.0.0.1:11434"),
        ("  ", "http://127.0.0.1:11434"),
        ("ollama:11434", "http://ollama:11434"),
        ("0.0.0.0", "http://0.0.0.0:11434"),
        ("http://ollama", "http://ollama:80"),
        ("https://ollama.example.com/", "https://ollama.example.com:443"),
        ("https://ollama.example.com:8443/api/", "https://ollama.example.com:8443/api"),
        ("[::1]", "http://[::1]:11434"),
    ],
)
def test_ollama_address_is_read_from_ollama_host_as_ollama_reads_it(monkeypatch, ollama_host, url):
    if ollama_host is None:
        monkeypatch.delenv("OLLAMA_HOST", raising=False)
    else:
        monkeypatch.setenv("OLLAMA_HOST", ollama_host)
    assert OllamaServer().base_url() == url


@pytest.mark.parametrize(("value", "executor"), [("", "None"), ("k8s", "k8s")])
def test_titlegen_executor_k8s_runs_each_step_in_its_own_pod(value, executor):
    code = "import titlegen_assets.definitions as d; e = d.defs.executor; print(e.name if e else None)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "TITLEGEN_EXECUTOR": value})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == executor
