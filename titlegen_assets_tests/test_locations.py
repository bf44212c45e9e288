"""The Docker stack's two code locations (deploy/locations.py): every GPU-tagged op in the GPU location and nothing
else, each location loadable on its own, jobs with their assets, and an input made in one location loaded in the
other through the project's IO manager."""

import dagster as dg
import pytest

from titlegen_assets.definitions import defs
from titlegen_assets.defs.io_manager import ManifestIOManager
from titlegen_assets.defs.resources import ArtifactStore
from titlegen_assets.deploy.gpu import GPU_OP_TAGS, GPU_TAG
from titlegen_assets.deploy.locations import (
    SINGLE_LOCATION_ONLY,
    LocationSplitError,
    cpu_location,
    gpu_location,
    split_by_gpu,
)


def ops(definitions) -> dict[str, dict]:
    """The op of each asset and check that executes something, with its tags (source and external assets have none)."""
    return {d.op.name: d.op.tags for d in definitions if isinstance(d, dg.AssetsDefinition)}


def executed(location: dg.Definitions) -> set[str]:
    return set(ops([*location.assets, *location.asset_checks]))


def external(location: dg.Definitions) -> set[str]:
    return {asset.key.to_user_string() for asset in location.assets if isinstance(asset, dg.AssetSpec)}


def test_the_gpu_location_holds_exactly_the_gpu_tagged_ops_and_the_cpu_location_everything_else():
    everything = ops([*defs.assets, *defs.asset_checks])
    gpu_ops = {name for name, tags in everything.items() if tags.get(GPU_TAG) == "true"}
    assert gpu_ops == {"lora_adapter", "merged_hf_model", "eval_gate"}
    assert executed(gpu_location) == gpu_ops
    assert executed(cpu_location) == set(everything) - gpu_ops
    assert {"raw_dataset", "cleaned_splits", "hf_repo", "ollama_model", "latency_report"} <= executed(cpu_location)


def test_each_location_loads_alone_and_declares_what_it_reads_from_the_other_as_external():
    for location in (cpu_location, gpu_location):
        dg.Definitions.validate_loadable(location)
    assert external(gpu_location) == {"cleaned_splits"}  # lora_adapter's input
    assert external(cpu_location) == {"merged_hf_model"}  # hf_repo's and ollama_model's input
    assert gpu_location.resources.keys() == cpu_location.resources.keys() == defs.resources.keys()


def test_jobs_schedules_and_sensors_land_with_their_assets_and_the_whole_graph_job_in_neither():
    assert {job.name for job in gpu_location.jobs} == {"training_job"}
    assert {job.name for job in cpu_location.jobs} == {"data_job", "publish_and_serve_job"}
    assert SINGLE_LOCATION_ONLY == {"full_pipeline_job"}
    assert cpu_location.resolve_schedule_def("weekly_retraining").job_name == "data_job"
    assert not gpu_location.schedules and not gpu_location.sensors


@dg.asset
def prepared() -> dict:
    return {"rows": 3}


@dg.asset(op_tags=GPU_OP_TAGS)
def trained(prepared: dict) -> dict:
    return {"rows_seen": prepared["rows"]}


@dg.asset
def published(trained: dict) -> dict:
    return {"published": trained["rows_seen"]}


def test_a_job_across_both_locations_is_refused_naming_both_sides():
    across = dg.Definitions(assets=[prepared, trained],
                            jobs=[dg.define_asset_job("prepare_and_train", selection=["prepared", "trained"])])
    with pytest.raises(LocationSplitError, match=r"prepare_and_train selects GPU assets \(trained\) and CPU assets "
                                                 r"\(prepared\)"):
        split_by_gpu(across)


def test_a_schedule_of_a_job_left_out_of_the_split_is_refused():
    job = dg.define_asset_job(next(iter(SINGLE_LOCATION_ONLY)))
    left_out = dg.Definitions(assets=[prepared, trained], jobs=[job],
                              schedules=[dg.ScheduleDefinition(name="nightly", job=job, cron_schedule="0 1 * * *")])
    with pytest.raises(LocationSplitError, match="nightly targets full_pipeline_job"):
        split_by_gpu(left_out)


def test_an_automation_sensor_evaluates_in_both_locations():
    sensor = dg.AutomationConditionSensorDefinition("automation", target=dg.AssetSelection.all())
    cpu, gpu = split_by_gpu(dg.Definitions(assets=[prepared, trained], sensors=[sensor]))
    assert [s.name for s in cpu.sensors] == [s.name for s in gpu.sensors] == ["automation"]


def test_an_input_made_in_one_location_is_loaded_in_the_other_through_the_manifest_io_manager(tmp_path, monkeypatch):
    """prepared (CPU) -> trained (GPU) -> published (CPU), each location run on its own against one instance: the
    manifests go through the artifact root and the latest materialization, as across the stack's run containers."""
    monkeypatch.setenv("TITLEGEN_HOME", str(tmp_path / "artifacts"))
    resources = {"io_manager": ManifestIOManager(artifacts=ArtifactStore())}
    cpu, gpu = split_by_gpu(dg.Definitions(assets=[prepared, trained, published], resources=resources))
    assert external(gpu) == {"prepared"} and external(cpu) == {"trained"}
    with dg.instance_for_test() as instance:
        cpu.resolve_job_def("__ASSET_JOB").get_subset(asset_selection={prepared.key}).execute_in_process(
            instance=instance)
        trained_run = gpu.resolve_implicit_global_asset_job_def().execute_in_process(instance=instance)
        assert trained_run.output_for_node("trained") == {"rows_seen": 3}
        published_run = cpu.resolve_job_def("__ASSET_JOB").get_subset(asset_selection={published.key})
        assert published_run.execute_in_process(instance=instance).output_for_node("published") == {"published": 3}
