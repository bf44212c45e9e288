"""Training backends (Unsloth on CUDA, TRL + PEFT elsewhere), the smoke base model, and the merge to 16-bit."""
