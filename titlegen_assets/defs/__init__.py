"""Dagster objects only, one file per stage: each reads config and resources, calls the library, records metadata."""
