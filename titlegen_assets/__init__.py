"""titlegen: zh-TW news headlines from a fine-tuned Gemma 3n, as one Dagster asset graph."""
