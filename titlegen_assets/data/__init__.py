"""Data stage (raw_dataset, cleaned_splits): sources, cleaning rules, near-duplicates, the seeded split, and what
retraining watches. Plain Python; no Dagster import."""
