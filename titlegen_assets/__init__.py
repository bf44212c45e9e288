"""titlegen: zh-TW news headlines from a fine-tuned Gemma 3n, as one Dagster asset graph."""

import os

# PyTorch backs CPU tensors of 2 MB and more with transparent huge pages when this is set before its first allocation
# (torch >= 2.2, read once per process). Every step process imports this package before torch, and a CPU training step
# allocates and frees ~700 MB buffers (the 262k-row embedding with its trained turn-token rows) several times a step:
# with 4 KB pages the page faults cost 8–20 % of training time on 2 cores (benchmarks/RESULTS.md). An explicit 0
# turns it off; child processes (llama.cpp's tools, worker pools) inherit the variable, which only PyTorch reads.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
