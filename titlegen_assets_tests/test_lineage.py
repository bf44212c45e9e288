"""Guards and lineage that hold across runs and processes: the data checks stop training in a later process, the
card describes the model that was merged (not a later training), the base model's content is in the version, and
two processes making the same version at once both end well with one folder."""

import json
import os
import shutil
import subprocess
import sys
import time

import dagster as dg
import yaml
from huggingface_hub import ModelCard

from titlegen_assets_tests.doubles.hub_double import HubDouble
from titlegen_assets_tests.support import demo_config, materialize
from titlegen_assets_tests.test_versions import DATA, folders, materialize_cli, only

THROUGH_MERGE = ["raw_dataset", "cleaned_splits", "lora_adapter", "merged_hf_model"]


def test_failed_data_checks_stop_training_in_a_later_process(tmp_path):
    two_rows = tmp_path / "two.jsonl"
    two_rows.write_text("".join(json.dumps({"content": f"第{n}篇新聞的內容，說明今天發生的事情與其背景。" * 3,
                                            "title": f"第{n}則測試新聞標題寫在這裡"}, ensure_ascii=False) + "\n"
                                for n in (1, 2)), encoding="utf-8")
    artifacts, home = tmp_path / "artifacts", tmp_path / "home"
    config = only(demo_config(max_steps=1), "raw_dataset", "cleaned_splits", "lora_adapter")
    config["ops"]["raw_dataset"]["config"] = {"source": "file", "path": str(two_rows)}
    data = materialize_cli(DATA, only(config, "raw_dataset", "cleaned_splits"), artifacts, home, check=False)
    assert "splits_not_empty" in data and "failed" in data
    refused = materialize_cli("lora_adapter", only(config, "lora_adapter"), artifacts, home, check=False)
    assert "lora_adapter: refusing cleaned_splits" in refused and "splits_not_empty failed: empty split" in refused
    assert not (artifacts / "adapters").exists() or not folders(artifacts, "adapters")


def test_the_card_describes_the_merged_model_not_a_later_training(artifact_root):
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(THROUGH_MERGE, demo_config(max_steps=2), instance).success  # model A, gate passed
    later = materialize(["lora_adapter"], demo_config(max_steps=3), instance)  # B trained, never merged
    assert later.success
    published = materialize(["hf_repo"], demo_config(), instance, hub=HubDouble())
    assert published.success
    card = ModelCard.load(f"{published.output_for_node('hf_repo')['path']}/README.md")
    assert '"max_steps": 2' in card.text and '"max_steps": 3' not in card.text


def test_a_base_model_replaced_at_the_same_path_trains_a_new_adapter(artifact_root, smoke_base_model, tmp_path):
    base = tmp_path / "my-base"
    shutil.copytree(smoke_base_model, base)
    config = demo_config(max_steps=1)
    config["ops"]["lora_adapter"]["config"]["base_model"] = str(base)
    instance = dg.DagsterInstance.ephemeral()
    first = materialize(["raw_dataset", "cleaned_splits", "lora_adapter"], config, instance)
    assert first.success
    generation = json.loads((base / "generation_config.json").read_text())
    (base / "generation_config.json").write_text(json.dumps({**generation, "temperature": 0.7}))  # same path, new file
    second = materialize(["lora_adapter"], config, instance)
    versions = [result.output_for_node("lora_adapter")["version"] for result in (first, second)]
    identities = [result.output_for_node("lora_adapter")["base_model_identity"] for result in (first, second)]
    assert versions[0] != versions[1] and identities[0] != identities[1]
    assert len(folders(artifact_root, "adapters")) == 2


def test_two_processes_making_the_same_adapter_at_once_both_succeed_with_one_folder(tmp_path):
    artifacts, home = tmp_path / "artifacts", tmp_path / "home"
    config = only(demo_config(max_steps=2), "raw_dataset", "cleaned_splits", "lora_adapter")
    materialize_cli(DATA, only(config, "raw_dataset", "cleaned_splits"), artifacts, home)
    runs = []
    for number in (1, 2):
        config_file = tmp_path / f"run-{number}.yaml"
        config_file.write_text(yaml.safe_dump(only(config, "lora_adapter")))
        runs.append(subprocess.Popen(
            [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "titlegen_assets.definitions", "--select",
             "lora_adapter", "-c", str(config_file)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "TITLEGEN_HOME": str(artifacts), "DAGSTER_HOME": str(home)}, cwd=home))
        if number == 1:  # forced overlap: the second starts only while the first holds the lock, mid-training
            assert wait_for(lambda: training_in_progress(artifacts / "adapters"), runs[0]), \
                "the first run never started training"
    logs = [run.communicate(timeout=900)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    assert len(folders(artifacts, "adapters")) == 1
    assert sum("reusing it" in log for log in logs) == 1, "the second run waited for the first and reused its folder"
    assert not [p for p in (artifacts / "adapters").iterdir() if p.name.startswith((".tmp-", ".work-"))]


def training_in_progress(adapters) -> bool:
    """A version's lock is held and its staging folder exists: a run is training it right now."""
    from titlegen_assets.versioning.artifacts import lock_is_held

    return adapters.is_dir() and any(lock_is_held(lock) for lock in adapters.glob(".lock-*")) and any(
        adapters.glob(".tmp-*"))


def wait_for(condition, process, timeout_s: float = 600) -> bool:
    """Polls ``condition`` until it holds, ``process`` ends, or the time is up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        if condition():
            return True
        time.sleep(0.05)
    return False
