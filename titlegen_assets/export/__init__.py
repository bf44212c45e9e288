"""Export and publish stage (hf_repo): GGUF files made with llama.cpp, the model card, Hub error messages."""
