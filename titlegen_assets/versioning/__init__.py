"""Shared by every stage: content fingerprints, code versions computed from each stage's package, and atomic,
versioned artifact folders under one root."""
