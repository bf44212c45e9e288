"""The model card (the Hub's README.md with its YAML header), generated from what the run actually produced."""

from __future__ import annotations

import json

LICENSE_NOTE = (
    "Gemma is provided under and subject to the Gemma Terms of Use (https://ai.google.dev/gemma/terms). "
    "This fine-tune is a Model Derivative and is distributed under the same terms."
)


def render(repo_id: str, base_model: str, dataset: str, revision: str, training: dict, scores: dict) -> str:
    """Markdown with the Hub's YAML metadata: base model, data, training config, eval metrics and baselines."""
    training = {k: v for k, v in training.items() if k != "resolved_base_model"}  # a path on the training machine
    keys = ("rouge1", "rouge2", "rougeL", "bleu1", "title_only_rate", "length_compliance")
    rows = "\n".join(f"| {name} | " + " | ".join(f"{s[k]:.3f}" for k in keys) + " |" for name, s in scores.items())
    smoke = "smoke" in base_model
    return f"""---
license: gemma
base_model: {base_model}
language:
- zh
tags:
- text-generation
- headline-generation
- zh-tw
- titlegen
datasets:
- {dataset}
pipeline_tag: text-generation
---

# {repo_id}

Headline generation for Traditional Chinese (zh-TW) news: give it an article, it answers with one title.
Fine-tuned with LoRA by titlegen from `{base_model}` and merged into 16-bit weights.
{"**This is a smoke model** (a toy Gemma 3n with random weights, built to test the pipeline): its titles are noise." if smoke else ""}

## Data

`{dataset}` at revision `{revision}`, cleaned (credits, asides, emoji removed; titles of 8–30 characters;
near-duplicates dropped) and split train/validation/test by a fixed seed.

## Training

```json
{json.dumps(training, indent=2, ensure_ascii=False)}
```

## Evaluation (held-out test split, character level)

| system | {" | ".join(keys)} |
|---|{"---|" * len(keys)}
{rows}

## Intended use

Drafting headlines for zh-TW news copy, for an editor to review. Not for generating news content, and not a
source of facts: a headline can misstate what the article says.

## Licence

{LICENSE_NOTE}
"""
