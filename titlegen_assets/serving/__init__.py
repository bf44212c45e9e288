"""Serving stage (ollama_model, latency_report): the official Ollama client's use, the Modelfile, latency
statistics."""
