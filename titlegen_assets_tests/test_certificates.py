"""A verdict belongs to the version it scored, however the runs happen: a re-executed old run, two runs at once, a
re-materialized split, a champion replaced between the gate and the ship. Dagster links a check evaluation to the
asset's latest materialization when the check ran; these tests make that link point at another version and show
that no consumer takes it for the version it loads."""

import json
import os
import subprocess
import sys

import dagster as dg

from titlegen_assets.data.splitting import load_splits
from titlegen_assets.defs.guard import evaluation_of
from titlegen_assets_tests.doubles.hub_double import HubDouble
from titlegen_assets_tests.support import config_for, demo_config, materialize, step_error

THROUGH_MERGE = ["raw_dataset", "cleaned_splits", "lora_adapter", "merged_hf_model"]
MERGED = dg.AssetKey("merged_hf_model")
ROUGE_L = dg.AssetCheckKey(MERGED, "rouge_l")


def quick(max_steps: int, **gate) -> dict:
    """The smoke config, ``max_steps`` long (a distinct merged version per value), no GGUF: these tests are about
    which version a verdict belongs to, not about llama.cpp."""
    config = demo_config(max_steps=max_steps, compare_base_model=False, **gate)
    config["ops"]["merged_hf_model"]["config"]["gguf"] = "none"
    return config


def full_pipeline_job():
    """The code location's full_pipeline_job, reconstructable: runs and re-executions in step processes."""
    from titlegen_assets.definitions import defs

    return defs.resolve_job_def("full_pipeline_job")


def run_in_processes(instance, config: dict, selection: list[str], **options):
    return dg.execute_job(dg.reconstructable(full_pipeline_job), instance,
                          run_config=config_for(selection, config) if config else None,
                          asset_selection=[dg.AssetKey(name) for name in selection] if selection else None,
                          raise_on_error=False, **options)


def merged_version(instance, run_id: str) -> str:
    [event] = [e for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
               if e.dagster_event.asset_key == MERGED]
    return event.dagster_event.event_specific_data.materialization.tags["dagster/data_version"]


def test_a_re_executed_old_gate_lands_on_a_newer_model_in_dagster_but_its_verdict_stays_with_the_model_it_scored(
        artifact_root, tmp_path):
    """R1's gate passes V1; R3 makes V3 and its gate fails; R1's gate is re-executed (step processes, loading V1
    from its parent run). Dagster links that pass to V3, the latest materialization: V3 must stay refused."""
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        first = run_in_processes(instance, quick(2), THROUGH_MERGE)
        third = run_in_processes(instance, quick(3, rouge_l_min=0.99), THROUGH_MERGE)
        assert first.success and not third.success
        v1, v3 = merged_version(instance, first.run_id), merged_version(instance, third.run_id)
        again = run_in_processes(instance, None, [], reexecution_options=dg.ReexecutionOptions(
            parent_run_id=first.run_id, step_selection=["eval_gate"]))
        assert again.success
        [execution, *_] = instance.event_log_storage.get_asset_check_execution_history(ROUGE_L, limit=1)
        [latest] = instance.fetch_materializations(MERGED, limit=1).records
        assert execution.run_id == again.run_id and execution.evaluation.passed
        assert execution.evaluation.target_materialization_data.storage_id == latest.storage_id, \
            "the scenario: Dagster linked the re-executed pass to V3's materialization"
        assert latest.asset_materialization.tags["dagster/data_version"] == v3

        assert evaluation_of(instance, ROUGE_L, v1).passed and not evaluation_of(instance, ROUGE_L, v3).passed
        refused = materialize(["hf_repo"], quick(2), instance, hub=HubDouble())  # loads the latest: V3
        error = step_error(refused, "hf_repo")
        assert f"refusing merged_hf_model {v3}" in error and "rouge_l failed" in error
        assert not (artifact_root / "hub").exists()


def test_two_runs_forced_to_interleave_keep_each_verdict_with_its_own_model(artifact_root, tmp_path):
    """Runs A (passing gate) and B (failing gate) in two processes: B merges after A, and A's gate waits for B's,
    so Dagster links A's pass to B's model. A still publishes its own model; B's model is refused later."""
    home = tmp_path / "home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)):
        pass  # the storage's tables are made once, as a deployment's are, not by two processes racing
    env = {**os.environ, "DAGSTER_HOME": str(home), "TITLEGEN_HOME": str(artifact_root)}
    roles = {"A": quick(2), "B": quick(3, rouge_l_min=0.99)}
    processes = {role: subprocess.Popen([sys.executable, "-m", "titlegen_assets_tests.interleaved_run", role,
                                         json.dumps(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, env=env)
                 for role, config in roles.items()}
    outputs = {"A": processes["A"].communicate(timeout=1800)[0]}
    if '"success": true' not in outputs["A"]:
        processes["B"].kill()  # B would wait at its barrier for a model A never made
    outputs["B"] = processes["B"].communicate(timeout=1800)[0]
    assert '"success": true' in outputs["A"], outputs["A"][-5000:]
    runs = {role: json.loads(output.strip().splitlines()[-1]) for role, output in outputs.items()}
    assert runs["A"]["success"] and not runs["B"]["success"], outputs["A"][-3000:] + outputs["B"][-3000:]

    # the same storage, read by this test process
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        a, b = (merged_version(instance, runs[role]["run_id"]) for role in "AB")
        [latest] = instance.fetch_materializations(MERGED, limit=1).records
        assert latest.asset_materialization.tags["dagster/data_version"] == b
        a_gate = [e for e in instance.event_log_storage.get_asset_check_execution_history(ROUGE_L, limit=5)
                  if e.run_id == runs["A"]["run_id"]]
        assert a_gate[0].evaluation.target_materialization_data.storage_id == latest.storage_id, \
            "the barrier held: A's gate evaluation was linked to B's model"
        published = [e for e in instance.all_logs(runs["A"]["run_id"], of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
                     if e.dagster_event.asset_key == dg.AssetKey("hf_repo")]
        assert published and published[0].dagster_event.event_specific_data.materialization.metadata[
            "merged_version"].value == a
        refused = materialize(["hf_repo"], quick(2), instance, hub=HubDouble())  # loads the latest: B's model
        error = step_error(refused, "hf_repo")
        assert f"refusing merged_hf_model {b}" in error and "rouge_l failed" in error


def test_the_gate_scores_the_model_on_its_own_test_split_not_a_later_one(artifact_root):
    instance = dg.DagsterInstance.ephemeral()
    first = materialize(THROUGH_MERGE, quick(2), instance)
    assert first.success
    own = load_splits(first.output_for_node("cleaned_splits")["path"])
    reseeded = quick(2)
    reseeded["ops"]["cleaned_splits"]["config"]["seed"] = 7
    assert materialize(["cleaned_splits"], reseeded, instance).success  # the latest split is now another one
    again = materialize(["merged_hf_model"], quick(2), instance)
    assert again.success
    report = next(e for e in again.get_asset_check_evaluations() if e.check_name == "rouge_l").metadata["predictions"]
    scored = json.loads(open(report.value, encoding="utf-8").read())["contents"]
    assert scored == [row["content"] for row in own["test"]]
    assert not set(scored) & {row["content"] for row in own["train"]}, "the gate scored the model's training data"


def test_a_model_whose_split_is_gone_is_not_scored_and_the_gate_says_what_to_run(artifact_root):
    import shutil

    instance = dg.DagsterInstance.ephemeral()
    first = materialize(THROUGH_MERGE, quick(2), instance)
    shutil.rmtree(first.output_for_node("cleaned_splits")["path"])
    from titlegen_assets.definitions import defs

    gate_alone = dg.materialize([*defs.assets, *defs.asset_checks], instance=instance, raise_on_error=False,
                                selection=dg.AssetSelection.checks_for_assets(MERGED), resources=defs.resources,
                                run_config={"ops": {"eval_gate": quick(2)["ops"]["eval_gate"]}})
    error = step_error(gate_alone, "eval_gate")
    assert "eval_gate: the test split this model was trained beside" in error and "is gone from" in error
    assert "re-materialize raw_dataset and cleaned_splits" in error
    again = materialize(["merged_hf_model"], quick(2), instance)
    assert "merged_hf_model: the test split this model was trained beside" in step_error(again, "merged_hf_model")


def test_a_model_gated_against_a_champion_that_was_replaced_since_is_not_shipped(artifact_root):
    """V1 is published; V2's gate compares it with V1 and passes; V3 is gated against V1 and published. Publishing V2
    now (its merged model re-materialized without checks, so its passed verdict is the latest for V2) would put it in
    place of V3, which its gate never saw: refused, with what to run."""
    instance = dg.DagsterInstance.ephemeral()
    assert materialize([*THROUGH_MERGE, "hf_repo"], quick(2), instance, hub=HubDouble()).success
    second = materialize(THROUGH_MERGE, quick(3, champion_margin=1.0), instance)
    assert second.success
    champion = next(e for e in second.get_asset_check_evaluations() if e.check_name == "not_worse_than_champion")
    assert champion.passed and champion.metadata["champion_version"].value != "none"
    third = materialize([*THROUGH_MERGE, "hf_repo"], quick(4, champion_margin=1.0), instance, hub=HubDouble())
    assert third.success
    remade = materialize(["lora_adapter", "merged_hf_model"], quick(3), instance, checks=False)  # V2 is the latest
    assert remade.output_for_node("merged_hf_model")["version"] == second.output_for_node("merged_hf_model")["version"]
    refused = materialize(["hf_repo"], quick(3), instance, hub=HubDouble())
    error = step_error(refused, "hf_repo")
    v3 = third.output_for_node("merged_hf_model")["version"]
    assert f"compared it with merged_hf_model {champion.metadata['champion_version'].value}" in error
    assert f"the model in service is now {v3}" in error and "re-run the gate" in error


def test_a_champion_whose_files_are_gone_fails_the_challenger_closed_with_what_to_do(artifact_root):
    """gc keeps what is in service, but a folder removed by hand must not turn "cannot compare" into "no model in
    service": the challenger is refused and told how to restore the champion."""
    import shutil

    instance = dg.DagsterInstance.ephemeral()
    served = materialize([*THROUGH_MERGE, "hf_repo"], quick(2), instance, hub=HubDouble())
    champion = served.output_for_node("merged_hf_model")
    shutil.rmtree(champion["path"])
    challenger = materialize(THROUGH_MERGE, quick(3, champion_margin=1.0), instance)
    check = next(e for e in challenger.get_asset_check_evaluations() if e.check_name == "not_worse_than_champion")
    assert not check.passed and check.metadata["champion_version"].value == champion["version"]
    assert f"merged_hf_model {champion['version']} (served by hf_repo), cannot be compared: no folder at" in \
        check.description and "Restore it" in check.description
    assert "hf_repo: refusing" in step_error(materialize(["hf_repo"], quick(3), instance, hub=HubDouble()), "hf_repo")
