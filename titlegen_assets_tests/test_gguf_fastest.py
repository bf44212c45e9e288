"""``gguf: fastest``: every GGUF that passes the gate is measured on this host's llama-server (the same distinct test
articles for each, in turns), and ollama_model serves the one the stated rule picks, bound to its sha256.
``gguf: auto`` still serves the smallest that passes."""

import json
from pathlib import Path

import dagster as dg
import pytest

from titlegen_assets.defs.evaluation_checks import GGUF_CERTIFIED, certify_ggufs, chosen_gguf
from titlegen_assets.evaluation.gguf_latency import fastest
from titlegen_assets_tests.doubles.ollama_server import OllamaDouble
from titlegen_assets_tests.support import demo_config, materialize, ollama_at

THROUGH_MERGE = ["raw_dataset", "cleaned_splits", "lora_adapter", "merged_hf_model"]
SHA = {"Q4_K_M": "4" * 64, "Q8_0": "8" * 64}


def merged(mode: str) -> dict:
    """merged_hf_model's manifest as the gate reads it: two GGUFs of the ladder, smallest first."""
    return {"gguf": {"skipped": None, "mode": mode,
                     "files": {q: {"path": f"/gguf/model-{q}.gguf", "sha256": sha, "mib": mib}
                               for (q, sha), mib in zip(SHA.items(), (160, 270))}}}


def timings(walls_ms: list[float], prompt_eval_ms: float) -> list[dict]:
    """Samples in ``LlamaServer.timed_completion``'s shape (server durations in nanoseconds)."""
    return [{"wall_ms": wall, "ttft_ms": prompt_eval_ms, "total_duration": wall * 1e6, "load_duration": 0,
             "prompt_eval_count": 90, "prompt_eval_duration": prompt_eval_ms * 1e6, "prompt_cached_count": 40,
             "eval_count": 12, "eval_duration": (wall - prompt_eval_ms) * 1e6} for wall in walls_ms]


#: Issue 30's AVX2 host in small: the K-quant evaluates prompts slower, so the smaller file is the slower one.
MEASURED = {"Q4_K_M": timings([820, 843, 860, 900, 1262], 440), "Q8_0": timings([650, 696, 700, 720, 1057], 258)}
PASS = {"titles": ["一個標題"] * 5, "stopped": [True] * 5}


def evaluation(result: dg.AssetCheckResult) -> dict[str, dg.AssetCheckEvaluation]:
    """The gate's result as consumers read it back from Dagster (``AssetCheckEvaluation``)."""
    return {GGUF_CERTIFIED: dg.AssetCheckEvaluation(asset_key=dg.AssetKey("merged_hf_model"),
                                                    check_name=GGUF_CERTIFIED, passed=result.passed,
                                                    metadata=result.metadata)}


def test_fastest_serves_the_larger_file_when_it_answers_faster_and_names_its_sha256_and_why():
    result = certify_ggufs(merged("fastest"), {q: PASS for q in SHA}, lambda *_: [], MEASURED, 0.05)
    assert result.passed and result.metadata["certified"].value == SHA, "both pass: both certified, both published"
    assert chosen_gguf(evaluation(result)) == ("Q8_0", SHA["Q8_0"])
    assert result.metadata["chosen_sha256"].value == SHA["Q8_0"]
    assert "Q8_0 p50 700 / p95 990 ms: the lowest p50 (vs Q4_K_M p50 860 / p95 1190 ms)" in \
        result.metadata["choice"].value
    latency = result.metadata["latency"].value
    assert latency["Q8_0"]["requests"] == 5 and latency["Q8_0"]["server_prompt_eval_ms"]["p50"] == 258
    assert "| Q4_K_M | 5 | 860 | 1190 | 90 | 440 |" in result.metadata["latency_table"].value


def test_auto_still_serves_the_smallest_certified_file_and_measures_nothing():
    result = certify_ggufs(merged("auto"), {"Q4_K_M": PASS}, lambda *_: [], {}, 0.05)
    assert chosen_gguf(evaluation(result)) == ("Q4_K_M", SHA["Q4_K_M"])
    assert result.metadata["choice"].value == "the smallest certified file (gguf: auto)"
    assert "latency" not in result.metadata


def test_fastest_with_one_file_left_serves_it_unmeasured():
    refused = lambda quantization, _: ["stop rate 0.20 < 0.98"] if quantization == "Q4_K_M" else []  # noqa: E731
    result = certify_ggufs(merged("fastest"), {q: PASS for q in SHA}, refused, {}, 0.05)
    assert result.metadata["certified"].value == {"Q8_0": SHA["Q8_0"]}
    assert chosen_gguf(evaluation(result)) == ("Q8_0", SHA["Q8_0"])
    assert "not measured" in result.metadata["choice"].value


@pytest.mark.parametrize(("wall_ms", "winner", "because"), [
    ({"Q4_K_M": {"p50": 843, "p95": 900}, "Q8_0": {"p50": 696, "p95": 1057}}, "Q8_0", "the lowest p50"),
    ({"Q4_K_M": {"p50": 700, "p95": 1262}, "Q8_0": {"p50": 690, "p95": 1057}}, "Q8_0", "and the lowest p95"),
    ({"Q4_K_M": {"p50": 700, "p95": 1000}, "Q8_0": {"p50": 690, "p95": 1250}}, "Q4_K_M", "and the lowest p95"),
    ({"Q4_K_M": {"p50": 700, "p95": 1080}, "Q8_0": {"p50": 690, "p95": 1057}}, "Q4_K_M", "the smaller file"),
], ids=["lower median wins", "median tie: lower p95", "median tie: smaller file's lower p95", "both tie: smaller"])
def test_the_rule_lowest_median_then_p95_then_the_smaller_file(wall_ms, winner, because):
    chosen, why = fastest(wall_ms, tie=0.05)
    assert chosen == winner and because in why


def test_fastest_measures_every_certified_gguf_on_llama_server_in_turns_and_serves_the_rules_pick(
        artifact_root, llama_cpp, monkeypatch):
    """The real llama-server on the smoke model's BF16 and F32 files (its toy dimensions rule out k-quants): the
    random weights never stop, so the smoke thresholds (0) certify both, and both are measured."""
    config = demo_config(compare_base_model=False, latency_requests=4, latency_rounds=2)
    config["ops"]["merged_hf_model"]["config"].update(gguf="fastest", gguf_ladder=["BF16", "F32"])
    instance = dg.DagsterInstance.ephemeral()
    with OllamaDouble() as server:
        result = materialize([*THROUGH_MERGE, "ollama_model"], config, instance,
                             ollama=ollama_at(monkeypatch, server))
        assert result.success
    gate = next(e for e in result.get_asset_check_evaluations() if e.check_name == GGUF_CERTIFIED)
    certified = gate.metadata["certified"].value
    assert list(certified) == ["BF16", "F32"], "both pass the smoke thresholds: both certified"
    report = json.loads(Path(next(e for e in result.get_asset_check_evaluations() if e.check_name == "rouge_l")
                             .metadata["predictions"].value).read_text())
    for quantization in certified:
        samples = report["latency"][quantization]
        assert sorted(s["article"] for s in samples) == [0, 1, 2, 3], "the same four articles, each sent once"
        assert {s["round"] for s in samples} == {1, 2}, "measured in two turns, alternating with the other file"
        assert all(s["eval_count"] > 0 for s in samples)
        assert all(s["prompt_cached_count"] > 0 and s["prompt_eval_count"] > 0 for s in samples), \
            "the shared instruction comes from the prompt cache, each new article is evaluated"
    measured = gate.metadata["latency"].value
    assert set(measured) == {"BF16", "F32"} and all(m["requests"] == 4 for m in measured.values())
    expected, _ = fastest({q: m["wall_ms"] for q, m in measured.items()}, tie=0.05)
    assert gate.metadata["chosen"].value == expected
    assert gate.metadata["chosen_sha256"].value == certified[expected]
    assert result.output_for_node("ollama_model")["gguf"] == {expected: certified[expected]}, \
        "ollama_model serves the file the rule picked, by the sha256 the gate certified"
