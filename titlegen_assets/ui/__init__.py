"""What the Dagster UI shows a person: PNG plots and markdown tables for asset metadata."""
