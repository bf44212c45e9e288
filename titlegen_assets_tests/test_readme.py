"""The README says what the code does: its configuration table matches the Config classes field for field, default
for default, and the facts it quotes (minimum Ollama versions, the latency spec) are the code's own."""

import inspect
import re
import sys
from pathlib import Path

import dagster as dg
import pytest
from pydantic_core import PydanticUndefined

from titlegen_assets.definitions import defs

README = Path(__file__).resolve().parents[1] / "README.md"


#: The order the table follows: the asset graph's.
PIPELINE = ("raw_dataset", "cleaned_splits", "lora_adapter", "merged_hf_model", "eval_gate", "hf_repo", "ollama_model",
            "latency_report")


def configured_steps() -> dict[str, type[dg.Config]]:
    """Every asset and check in the code location that takes run config, with its Config class, in graph order."""
    steps = {}
    graph = defs.resolve_asset_graph()
    for node in graph.assets_defs:  # checks definitions included
        annotation = inspect.signature(node.op.compute_fn.decorated_fn).parameters.get("config")
        if annotation is not None and issubclass(annotation.annotation, dg.Config):
            steps[node.op.name] = annotation.annotation
    return dict(sorted(steps.items(), key=lambda item: PIPELINE.index(item[0]) if item[0] in PIPELINE else len(PIPELINE)))


def render_default(field) -> str:
    """A default as a user writes it in run config (YAML)."""
    if field.default_factory is not None:
        return "(derived)"
    value = field.default
    if value is PydanticUndefined:
        return "(required)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def readme_rows() -> dict[tuple[str, str], str]:
    """(step, field) -> default, from the README's configuration table (an empty step cell repeats the one above)."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Configuration reference"):]
    section = section[: section.index("\n## ", 1)]
    rows, step = {}, None
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[1].startswith("`"):
            continue
        step = cells[0].strip("`") or step
        rows[(step, cells[1].strip("`"))] = cells[2].strip("`")
    return rows


def table_for(steps: dict[str, type[dg.Config]]) -> str:
    """The table as the README should hold it (printed when the test fails, to paste)."""
    lines = ["| step | field | default | what it sets |", "|---|---|---|---|"]
    for step, config in steps.items():
        for number, (name, field) in enumerate(config.model_fields.items()):
            description = (field.description or "").replace("|", "/").replace("\n", " ")
            lines.append(f"| {f'`{step}`' if number == 0 else ''} | `{name}` | `{render_default(field)}` | {description} |")
    return "\n".join(lines)


def test_every_configured_step_is_found():
    assert set(PIPELINE) <= set(configured_steps())


def test_the_readme_configuration_table_matches_the_config_classes():
    steps = configured_steps()
    expected = {(step, name): render_default(field) for step, config in steps.items()
                for name, field in config.model_fields.items()}
    documented = readme_rows()
    assert documented == expected, "README's configuration table is out of date; it should read:\n" + table_for(steps)


@pytest.mark.parametrize("mistake", ["a missing field", "a wrong default"])
def test_the_table_check_catches_a_drifted_readme(mistake, monkeypatch, tmp_path):
    text = README.read_text(encoding="utf-8")
    if mistake == "a missing field":
        drifted = re.sub(r"^\| *\| `seed` \|.*\n", "", text, count=1, flags=re.M)
    else:
        drifted = text.replace("| `rouge_l_min` | `0.3` |", "| `rouge_l_min` | `0.25` |", 1)
    assert drifted != text
    copy = tmp_path / "README.md"
    copy.write_text(drifted, encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "README", copy)
    steps = configured_steps()
    expected = {(step, name): render_default(field) for step, config in steps.items()
                for name, field in config.model_fields.items()}
    assert readme_rows() != expected


def test_the_readme_quotes_the_minimum_ollama_versions_and_the_stack_pins_a_release_above_them():
    import yaml

    from titlegen_assets.serving.ollama_client import MIN_OLLAMA, parse_version

    text = README.read_text(encoding="utf-8")
    for family, version in (("Gemma 3n", MIN_OLLAMA["gemma3n"]), ("Gemma 3", MIN_OLLAMA["gemma3"])):
        assert f"{family} ≥ {version}" in text or f"{family}: {version}" in text, (family, version)
    compose = yaml.safe_load((README.parent / "docker" / "compose.yaml").read_text())
    tag = compose["services"]["ollama"]["image"].split("@")[0].rsplit(":", 1)[1]
    assert all(parse_version(tag) >= parse_version(version) for version in MIN_OLLAMA.values())


def test_the_readme_and_the_latency_check_quote_the_one_latency_spec():
    from titlegen_assets.definitions import defs
    from titlegen_assets.serving.latency import SPEC_P50_MS, SPEC_P95_MS, spec_in_words

    assert f"p50 ≤ {SPEC_P50_MS} ms" in README.read_text(encoding="utf-8")
    [check] = [c for c in defs.resolve_asset_graph().asset_check_keys if c.name == "latency_spec"]
    description = defs.resolve_asset_graph().get_check_spec(check).description
    assert spec_in_words() in description and str(SPEC_P95_MS) in description
