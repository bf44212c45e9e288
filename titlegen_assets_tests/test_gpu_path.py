"""The NVIDIA path against the pins it ships with (constraints/gpu.txt: transformers 5.17, TRL 1.15), not only the
CPU ones: TRL's private names, Unsloth's import order, the precision Unsloth loads in, and the GGUF of an Unsloth
run. Tests marked ``gpu_pins`` also run in CI's second environment (``.venv-gpu``, the GPU pins with a CPU torch)."""

import json
import os
import subprocess
import sys
from functools import partial
from importlib.metadata import version
from pathlib import Path

import dagster as dg
import pytest
from packaging.version import Version

from titlegen_assets.training.settings import LoraSettings
from titlegen_assets_tests.doubles import unsloth_double
from titlegen_assets_tests.support import trl_cpu_training_blocker

ROOT = Path(__file__).resolve().parents[1]
HUB_NAME = "unsloth/gemma-3n-E4B-it"
UNSLOTH_TINY = dict(base_model=HUB_NAME, backend="unsloth", max_steps=2, per_device_train_batch_size=2,
                    gradient_accumulation_steps=1, max_seq_length=512, gradient_checkpointing=False,
                    learning_rate=2e-3, checkpoint_steps=2, logging_steps=1)
needs_cpu_training = pytest.mark.skipif(trl_cpu_training_blocker() is not None, reason=str(trl_cpu_training_blocker()))


@pytest.mark.gpu_pins
def test_the_completion_head_shim_swaps_trls_private_name_only_where_it_exists_and_logs_the_fallback(monkeypatch):
    from trl import SFTTrainer
    from trl.trainer import utils as trl_utils

    from titlegen_assets.training import trl_backend

    # the fact the shim rests on, read from the wheels: _use_triton is in TRL 1.16.0's trainer/utils.py, not in 1.15.0's
    assert hasattr(trl_utils, "_use_triton") == (Version(version("trl")) >= Version("1.16"))
    logs = []
    trainer_class = trl_backend.sft_trainer_class(logs.append)
    if hasattr(trl_utils, "_use_triton"):
        assert trainer_class is not SFTTrainer and issubclass(trainer_class, SFTTrainer) and logs == []
    else:
        assert trainer_class is SFTTrainer and len(logs) == 1
    monkeypatch.delattr(trl_utils, "_use_triton", raising=False)
    logs.clear()
    assert trl_backend.sft_trainer_class(logs.append) is SFTTrainer
    assert logs == [f"TRL {version('trl')} has no trl.trainer.utils._use_triton (TRL 1.16 has it): training with "
                    "TRL's own SFTTrainer, whose output head scores every position off CUDA"]


@pytest.mark.gpu_pins
@pytest.mark.skipif(trl_cpu_training_blocker() is None, reason="this TRL trains on a CPU")
def test_trl_1_15_builds_the_trainer_but_cannot_compute_the_sft_loss_on_a_cpu(smoke_base_model, sample_splits, tmp_path):
    """Why the GPU pins' environment tests everything but training: TRL 1.15's fused LM head is a Triton kernel."""
    import datasets

    from titlegen_assets.training import sft, trl_backend

    config = LoraSettings(base_model="titlegen/smoke-gemma3n-tiny", backend="trl", max_steps=1,
                          per_device_train_batch_size=2, gradient_accumulation_steps=1, max_seq_length=512,
                          gradient_checkpointing=False)
    train = datasets.load_from_disk(sample_splits)["train"]
    trainer, _ = trl_backend.build_trainer(config, smoke_base_model, train, None,
                                           partial(sft.sft_args, config, tmp_path, "fp32", False), [])
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    with pytest.raises(RuntimeError, match="active drivers"):
        trainer.compute_loss(trainer.model, batch)


@pytest.mark.gpu_pins
@pytest.mark.parametrize(("precision", "dtype"), [("bf16", "bfloat16"), ("fp32", "float32")])
def test_unsloth_loads_in_the_precision_asked_for_and_the_weights_are_read_back_from_the_model(
    precision, dtype, monkeypatch, smoke_base_model, sample_splits, tmp_path
):
    import datasets
    import torch

    from titlegen_assets.training import environment, sft, unsloth_backend

    unsloth_double.install(monkeypatch, {HUB_NAME: smoke_base_model})
    config = LoraSettings(**UNSLOTH_TINY)
    train = datasets.load_from_disk(sample_splits)["train"]
    trainer, _ = unsloth_backend.build_trainer(config, HUB_NAME, train, None,
                                               partial(sft.sft_args, config, tmp_path, precision, False), [])
    [(_, loaded)] = [call for call in unsloth_double.CALLS if call[0] == "FastModel.from_pretrained"]
    assert loaded["dtype"] is getattr(torch, dtype)
    assert environment.loaded_weights(trainer.model) == {"weights_dtype": dtype}


def test_the_weights_read_back_are_the_frozen_base_ones_not_the_trainable_lora_ones():
    import torch

    from titlegen_assets.training.environment import loaded_weights

    model = torch.nn.Sequential(torch.nn.Linear(2, 2, dtype=torch.float32), torch.nn.Linear(2, 2, dtype=torch.bfloat16))
    model[1].requires_grad_(False)
    assert loaded_weights(model) == {"weights_dtype": "bfloat16"}


@needs_cpu_training
def test_unsloth_is_imported_before_trl_transformers_and_peft_in_the_lora_adapter_step(
    monkeypatch, smoke_base_model, artifact_root, resources, tmp_path
):
    """The real lora_adapter step in a fresh process (dagster loaded, nothing else), with a stand-in ``unsloth``
    first on the path that records what was imported before it."""
    record = tmp_path / "unsloth_import.jsonl"
    step = f"""
import json, sys
import dagster as dg
from titlegen_assets_tests.doubles import unsloth_double
unsloth_double.LOCAL_MODELS.update({json.dumps({HUB_NAME: smoke_base_model})})
from titlegen_assets.training import environment
environment.has_cuda = lambda: True  # the CUDA path, with tensors on the CPU
from titlegen_assets.definitions import defs
from titlegen_assets.defs.data_assets import cleaned_splits, cleaned_splits_checks, raw_dataset
from titlegen_assets.defs.training_assets import lora_adapter
instance = dg.DagsterInstance.ephemeral()  # the data checks' records, which lora_adapter's guard reads
data = dg.materialize([raw_dataset, cleaned_splits, cleaned_splits_checks], instance=instance,
                      resources=dict(defs.resources), run_config={{"ops": {{"raw_dataset": {{"config": {{"source": "sample"}}}},
                      "cleaned_splits": {{"config": {{"content_max_chars": 300}}}}}}}})
assert data.success
result = dg.materialize([raw_dataset, cleaned_splits, lora_adapter], selection=[lora_adapter.key], instance=instance,
                        resources=dict(defs.resources), run_config={{"ops": {{"lora_adapter": {{"config": {UNSLOTH_TINY!r}}}}}}})
print(json.dumps({{"success": result.success, "after": sorted({{m.split(".")[0] for m in sys.modules}} & {{"trl", "transformers", "peft"}})}}))
"""
    standin = ROOT / "titlegen_assets_tests" / "doubles" / "import_order"
    unsloth_double.write_hub_refs(tmp_path / "hub", [HUB_NAME])  # the model's commit, as a GPU host's cache has it
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(standin), str(ROOT)]), "HF_HUB_CACHE": str(tmp_path / "hub"),
           "TITLEGEN_UNSLOTH_IMPORT_RECORD": str(record), "TITLEGEN_HOME": str(artifact_root)}
    done = subprocess.run([sys.executable, "-c", step], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome == {"success": True, "after": ["peft", "transformers", "trl"]}  # they were imported, but after
    [imported] = [json.loads(line) for line in record.read_text().splitlines()]
    assert imported == {"imported_before_unsloth": [], "dagster_loaded": True}


def test_a_process_that_imported_transformers_first_is_told_so(monkeypatch):
    from titlegen_assets.training.unsloth_backend import import_unsloth_first

    monkeypatch.delitem(sys.modules, "unsloth", raising=False)
    for name in [m for m in sys.modules if m.split(".")[0] in ("trl", "peft")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "transformers", sys.modules.get("transformers") or object())
    monkeypatch.setattr("builtins.__import__", _import_unsloth_as_a_module(__import__))
    logs = []
    import_unsloth_first(logs.append)
    assert len(logs) == 1 and logs[0].startswith("transformers imported before unsloth in this process")


def _import_unsloth_as_a_module(real_import):
    import types

    def importer(name, *args, **kwargs):
        if name == "unsloth":
            return sys.modules.setdefault("unsloth", types.ModuleType("unsloth"))
        return real_import(name, *args, **kwargs)

    return importer


@needs_cpu_training
def test_an_unsloth_run_merges_into_a_folder_that_llama_cpp_converts_to_gguf(
    monkeypatch, smoke_base_model, sample_splits, llama_cpp, tmp_path
):
    """Through the Unsloth path's code with the double, on the smoke model; no Hugging Face cache to look in."""
    from gguf import GGUFReader

    from titlegen_assets.export import gguf_export
    from titlegen_assets.training import environment
    from titlegen_assets.training.lora import train_lora
    from titlegen_assets.training.merge import merge_adapter

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    unsloth_double.install(monkeypatch, {HUB_NAME: smoke_base_model})
    monkeypatch.setattr(environment, "has_cuda", lambda: True)
    adapter, merged = tmp_path / "adapter", tmp_path / "merged"
    result = train_lora(LoraSettings(**UNSLOTH_TINY), sample_splits, HUB_NAME, adapter, tmp_path / "work", print)
    assert result.backend == "unsloth" and result.weights["weights_dtype"] in ("bfloat16", "float32")
    assert (adapter / "tokenizer.model").read_bytes() == (Path(smoke_base_model) / "tokenizer.model").read_bytes()
    merged.mkdir()
    merge_adapter(adapter, HUB_NAME, "unsloth", merged)
    assert [name for name, _ in unsloth_double.CALLS].count("save_pretrained_merged") == 1
    assert (merged / "tokenizer.model").is_file() and (merged / "tokenizer.json").is_file()
    gguf = gguf_export.export(merged, tmp_path / "model-F32.gguf", "F32", llama_cpp)
    fields = GGUFReader(gguf).fields
    assert fields["general.architecture"].contents() == "gemma3n"
    assert fields["tokenizer.ggml.model"].contents() == "llama"  # the SentencePiece vocabulary went in


@pytest.mark.gpu_pins
def test_a_lora_adapter_merges_and_passes_through_the_gate_with_the_installed_pins(
    smoke_base_model, llama_cpp, resources, tmp_path
):
    """Merge, reload, generate, the eval gate and GGUF export on the installed pins. The adapter is made with PEFT
    (the TRL backend's LoraConfig, non-zero random LoRA weights) instead of trained: TRL 1.15 cannot train on a CPU."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from titlegen_assets.defs.data_assets import cleaned_splits, cleaned_splits_checks, raw_dataset
    from titlegen_assets.defs.evaluation_checks import eval_gate
    from titlegen_assets.defs.training_assets import merged_hf_model
    from titlegen_assets.training.tokenizer_files import save_tokenizer
    from titlegen_assets.training.trl_backend import LANGUAGE_LINEAR

    adapter = tmp_path / "adapter"
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(smoke_base_model, dtype=torch.float32)
    get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=LANGUAGE_LINEAR, init_lora_weights=False,
                                     task_type="CAUSAL_LM")).save_pretrained(adapter)
    assert save_tokenizer(AutoTokenizer.from_pretrained(smoke_base_model), adapter, smoke_base_model, print)

    @dg.asset(name="lora_adapter")
    def untrained_adapter(cleaned_splits: dict) -> dict:  # the manifest lora_adapter writes, what the merge carries
        return {"path": str(adapter), "version": "untrained", "backend": "trl", "base_model": smoke_base_model,
                "base_model_name": "titlegen/smoke-gemma3n-tiny", "base_model_identity": "untrained",
                "inputs": {"cleaned_splits": cleaned_splits["version"]},
                "source": {"kind": "sample", "location": "sample", "revision": "untrained"},
                "rules": {"title_min_chars": 8, "title_max_chars": 30}}

    run_config = {"ops": {
        "raw_dataset": {"config": {"source": "sample"}}, "cleaned_splits": {"config": {"content_max_chars": 300}},
        "merged_hf_model": {"config": {"gguf": "F32"}},
        "eval_gate": {"config": {"rouge_l_min": 0.0, "bleu_1_min": 0.0, "title_only_min": 0.0,
                                 "length_compliance_min": 0.0, "stop_rate_min": 0.0, "max_new_tokens": 8,
                                 "max_samples": 4, "compare_base_model": False}}}}
    result = dg.materialize([raw_dataset, cleaned_splits, cleaned_splits_checks, untrained_adapter, merged_hf_model,
                             eval_gate],
                            run_config=run_config, resources=resources)
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    folder = Path(result.output_for_node("merged_hf_model")["path"])
    assert isinstance(result.asset_materializations_for_node("merged_hf_model")[0].metadata["sample_generation"].value, str)
    assert (folder / "tokenizer.model").is_file()
    certified = next(e for e in result.get_asset_check_evaluations() if e.check_name == "gguf_certified")
    assert list(certified.metadata["certified"].value) == ["F32"]  # made by the merge, scored through llama-server
