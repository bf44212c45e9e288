"""Evaluation stage (the eval gate on merged_hf_model): title generation, the headline metrics (also shipped as an
``evaluate`` module) and llama-server, the runtime that scores GGUF files as they ship."""
