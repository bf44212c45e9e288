"""The floor under a served request on this machine: how fast llama-server could answer at best, per GGUF file.

    python benchmarks/serving_floor.py FILE.gguf [FILE.gguf ...] [--prompt-tokens 66] [--generated-tokens 16]
        [--threads N] [--context-tokens 128]

Decoding is memory-bound: each generated token reads every weight once (the token embedding in full when it is also
the output head, as in Gemma 3, whose 262k x 640 tied matrix is most of the file) plus the KV cache so far, so its
floor is those bytes / the read bandwidth measured here with the same number of threads. Prompt evaluation is
compute-bound: 2 FLOPs per weight per prompt token (the output head only for the last token) / the peak FLOP rate
measured here with PyTorch's fp32 GEMM (MKL; it honours ATEN_CPU_CAPABILITY, MKL_ENABLE_INSTRUCTIONS and
ONEDNN_MAX_CPU_ISA, so an AVX2-only CPU is emulated the same way as the demo's). Prints one JSON line per file, with
the CPU's SIMD flags and the load average. Put each floor beside the measured figure (benchmarks/serve_latency.py's
``prompt_eval_ms`` / decode tokens/s) in RESULTS.md: measured / floor says how close the product is.
"""

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from gguf import GGUFReader


def cpu_simd_flags() -> list[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return sorted(f for f in line.split(":", 1)[1].split() if f.startswith(("avx", "fma", "amx")))
    return []


def read_bandwidth_gb_s(threads: int, size_mib: int = 1024, repeats: int = 5) -> float:
    """Best of ``repeats`` reads of a buffer far larger than the caches, split across ``threads`` (NumPy releases the
    GIL in reductions, so the threads read in parallel)."""
    data = np.ones(size_mib * 2**20 // 8, dtype=np.float64)
    parts = np.array_split(data, threads)
    best = float("inf")
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in range(repeats):
            started = time.perf_counter()
            list(pool.map(np.sum, parts))
            best = min(best, time.perf_counter() - started)
    return data.nbytes / best / 1e9


def peak_gflops(threads: int, n: int = 1024, repeats: int = 10) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


def shape_of(path: Path) -> dict:
    """Bytes read per decoded token and weights used per prompt token, from the file's own tensors and metadata."""
    reader = GGUFReader(path)
    tensors = {t.name: t for t in reader.tensors}
    arch = bytes(reader.get_field("general.architecture").parts[-1]).decode()

    def number(key: str) -> int:
        return int(reader.get_field(f"{arch}.{key}").parts[-1][0])

    embedding = tensors["token_embd.weight"]
    tied = "output.weight" not in tensors
    head = embedding if tied else tensors["output.weight"]
    layers, kv_heads = number("block_count"), number("attention.head_count_kv")
    head_dim = number("attention.key_length") + number("attention.value_length")
    other = [t for name, t in tensors.items() if name not in ("token_embd.weight", "output.weight")]
    matmul = [t for t in other if len(t.shape) == 2 and int(t.shape[1]) > 1]
    return {
        "file_mib": round(path.stat().st_size / 2**20, 1),
        "embedding_type": embedding.tensor_type.name, "embedding_mib": round(embedding.n_bytes / 2**20, 1),
        "tied_output_head": tied,
        "weights_bytes_per_token": sum(t.n_bytes for t in other) + head.n_bytes,
        "kv_bytes_per_context_token": layers * kv_heads * head_dim * 2,  # f16 K and V
        "matmul_weights": sum(int(t.n_elements) for t in matmul),
        "head_weights": int(head.n_elements),
    }


def floors(shape: dict, bandwidth_gb_s: float, gflops: float, prompt_tokens: int, generated: int,
           context: int) -> dict:
    per_token_bytes = shape["weights_bytes_per_token"] + shape["kv_bytes_per_context_token"] * context
    decode_ms = per_token_bytes / (bandwidth_gb_s * 1e9) * 1e3
    prompt_flops = 2 * shape["matmul_weights"] * prompt_tokens + 2 * shape["head_weights"]
    prompt_ms = prompt_flops / (gflops * 1e9) * 1e3
    return {"decode_ms_per_token_floor": round(decode_ms, 2),
            "decode_tokens_per_s_ceiling": round(1e3 / decode_ms, 1),
            "prompt_eval_ms_floor": round(prompt_ms, 1),
            "request_ms_floor": round(prompt_ms + decode_ms * generated, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("gguf", type=Path, nargs="+")
    parser.add_argument("--prompt-tokens", type=int, default=66, help="prompt tokens evaluated per request "
                        "(serve_latency.py's mean: the shared instruction is cached)")
    parser.add_argument("--generated-tokens", type=int, default=16, help="tokens generated per answer")
    parser.add_argument("--context-tokens", type=int, default=128, help="mean context length while decoding")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="llama-server's threads (its default: "
                        "the cores)")
    args = parser.parse_args()
    load = [round(x, 2) for x in os.getloadavg()]
    bandwidth, gflops = read_bandwidth_gb_s(args.threads), peak_gflops(args.threads)
    machine = {"cpus": os.cpu_count(), "threads": args.threads, "simd": cpu_simd_flags(), "load_before": load,
               "read_bandwidth_gb_s": round(bandwidth, 1), "fp32_gemm_gflops": round(gflops, 1),
               **{k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")
                  if k in os.environ}}
    print(json.dumps({"machine": machine}), flush=True)
    for path in args.gguf:
        shape = shape_of(path)
        print(json.dumps({"gguf": path.name, **shape, **floors(shape, bandwidth, gflops, args.prompt_tokens,
                                                                args.generated_tokens, args.context_tokens)}),
              flush=True)


if __name__ == "__main__":
    main()
