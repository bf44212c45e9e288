"""Retraining by declarative automation: watched_source's observations and the automation conditions, evaluated by
Dagster's own ``evaluate_automation_conditions`` on a real (on-disk) instance, tick after tick with its cursor."""

import datetime
import hashlib
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from titlegen_assets.data.sources import SourceError
from titlegen_assets.definitions import defs
from titlegen_assets.defs.resources import HuggingFaceHub
from titlegen_assets.defs.data_assets import cleaned_splits_checks, raw_dataset, watched_source
from titlegen_assets.defs.evaluation_checks import eval_gate
from titlegen_assets_tests.doubles.hub_double import API_DOUBLE, HubDouble, dataset_at, hf_api_double

EIGHT = ("watched_source", "raw_dataset", "cleaned_splits", "lora_adapter", "merged_hf_model", "hf_repo",
         "ollama_model", "latency_report")
TAIPEI = ZoneInfo("Asia/Taipei")
#: What evaluates the conditions in a deployment: Dagster's own sensor, added for the assets that carry a condition.
SENSOR = defs.resolve_sensor_def("default_automation_condition_sensor")


@pytest.fixture
def hub(monkeypatch):
    """The Hub client double (huggingface_hub 2.4.0's HfApi, autospecced); tests set its datasets' commit."""
    monkeypatch.delenv("TITLEGEN_WATCH_FILE", raising=False)
    monkeypatch.delenv("TITLEGEN_WATCH_DATASET", raising=False)
    API_DOUBLE["api"] = api = hf_api_double("titlegen-test/unused")
    return api


class Automation:
    """One instance and the automation sensor's cursor: each ``tick`` evaluates the conditions of what the sensor
    targets, as its tick does."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance, self.cursor = instance, None

    def tick(self, at: datetime.datetime | None = None) -> set[str]:
        result = dg.evaluate_automation_conditions(defs=defs, instance=self.instance, cursor=self.cursor,
                                                   asset_selection=SENSOR.asset_selection, evaluation_time=at)
        self.cursor = result.cursor
        return {name for name in EIGHT if result.get_num_requested(dg.AssetKey(name))}

    def observe(self, hub: HuggingFaceHub | None = None) -> dg.AssetObservation:
        """watched_source's observation, run by Dagster as the automation sensor's observation run does (with the
        Hub client double unless ``hub`` is given)."""
        job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={watched_source.key})
        result = job.execute_in_process(instance=self.instance, resources={"hub": hub or HubDouble()})
        return result.asset_observations_for_node("watched_source")[0]

    def report(self, *events) -> None:
        """Materializations and check results recorded as a run's would be, for the conditions to read."""
        for event in events:
            self.instance.report_runless_asset_event(event)


@pytest.fixture
def automation():
    with dg.instance_for_test() as instance:
        yield Automation(instance)


def _made(name: str, version: str = "v1") -> dg.AssetMaterialization:
    """A materialization of ``name`` at data version ``version``, as the assets record theirs."""
    return dg.AssetMaterialization(name, tags={"dagster/data_version": version})


def _checks(checks_def: dg.AssetChecksDefinition, passed: bool, failing: str | None = None) -> list:
    return [dg.AssetCheckEvaluation(asset_key=spec.asset_key, check_name=spec.name,
                                    passed=passed if spec.name != failing else False)
            for spec in checks_def.check_specs if spec.blocking]


def test_a_new_hub_commit_starts_the_data_stage_and_the_same_commit_again_starts_nothing(automation, hub):
    assert automation.tick() == set()  # turning automation on starts nothing by itself
    dataset_at(hub, "a" * 40)
    assert automation.observe().data_version == "a" * 40
    # the production dataset is not in the deployment's namespaces: asked for without the token, as anyone may
    hub.dataset_info.assert_called_with("AWeirdDev/zh-tw-pts-articles-sm", revision="main", token=False)
    # stage by stage: cleaned_splits once raw_dataset exists at the new version, training once those splits passed
    # their blocking checks
    assert automation.tick() == {"raw_dataset"}
    automation.observe()
    assert automation.tick() == set()
    dataset_at(hub, "b" * 40)
    automation.observe()
    assert automation.tick() == {"raw_dataset"}


def test_watched_source_is_observed_once_per_hour(automation, hub):
    start = datetime.datetime(2026, 12, 2, 9, 10, tzinfo=TAIPEI)
    automation.tick(start)
    assert automation.tick(start + datetime.timedelta(minutes=30)) == set()
    assert automation.tick(start + datetime.timedelta(minutes=55)) == {"watched_source"}
    assert automation.tick(start + datetime.timedelta(minutes=65)) == set()


def test_an_unreachable_hub_is_a_logged_reason_to_wait_not_a_failure_or_a_retraining(automation, hub, monkeypatch):
    """The real HfApi against a closed loopback port, as a Hub down or a broken proxy answers."""
    from huggingface_hub import constants

    dataset_at(hub, "a" * 40)
    automation.observe()
    automation.tick()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # read once at import; the tests set it for safety
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # HF_ENDPOINT, as huggingface_hub read it
    observation = automation.observe(HuggingFaceHub())  # execute_in_process raises if the observation step failed
    assert observation.data_version == "a" * 40  # the last version seen: nothing changed as far as anyone knows
    assert "cannot read AWeirdDev/zh-tw-pts-articles-sm (ConnectError" in observation.metadata["unreadable"].value
    assert automation.tick() == set()


def test_a_failed_blocking_data_check_on_cleaned_splits_holds_training_until_the_checks_pass(automation, hub):
    dataset_at(hub, "a" * 40)
    automation.observe()
    automation.tick()
    automation.report(_made("raw_dataset"), _made("cleaned_splits"),
                      *_checks(cleaned_splits_checks, passed=True, failing="no_leakage_between_splits"))
    assert automation.tick() == set()
    automation.report(*_checks(cleaned_splits_checks, passed=True))
    assert automation.tick() == {"lora_adapter"}


def test_a_failed_eval_gate_launches_no_publish_or_serve_run(automation, hub):
    dataset_at(hub, "a" * 40)
    automation.observe()
    automation.tick()
    automation.report(_made("raw_dataset"), _made("cleaned_splits"),
                      *_checks(cleaned_splits_checks, passed=True), _made("lora_adapter"),
                      _made("merged_hf_model"), *_checks(eval_gate, passed=False))
    assert automation.tick() == set()
    automation.report(*_checks(eval_gate, passed=True))
    assert automation.tick() == {"hf_repo", "ollama_model"}  # latency_report waits for ollama_model's own check


def test_data_made_again_at_the_same_version_starts_no_training(automation, hub):
    """The weekly data_job on an unchanged commit, or a manual re-run: raw_dataset and cleaned_splits materialized
    again with the data versions they had; nothing downstream is requested. A new version is."""
    dataset_at(hub, "a" * 40)
    automation.observe()
    automation.tick()
    automation.report(_made("raw_dataset"), _made("cleaned_splits"), *_checks(cleaned_splits_checks, passed=True))
    assert automation.tick() == {"lora_adapter"}
    automation.report(_made("lora_adapter"), _made("merged_hf_model"), *_checks(eval_gate, passed=True))
    automation.tick()
    automation.report(_made("hf_repo"), _made("ollama_model"))
    automation.tick()
    automation.report(_made("raw_dataset"), _made("cleaned_splits"), *_checks(cleaned_splits_checks, passed=True))
    assert automation.tick() == set()
    automation.report(_made("raw_dataset", "v2"), _made("cleaned_splits", "v2"),
                      *_checks(cleaned_splits_checks, passed=True))
    assert automation.tick() == {"lora_adapter"}


def test_a_watched_local_file_is_versioned_by_its_content_hash(automation, monkeypatch, tmp_path):
    data = tmp_path / "news.jsonl"
    data.write_text('{"content": "甲", "title": "乙"}\n', encoding="utf-8")
    monkeypatch.setenv("TITLEGEN_WATCH_FILE", str(data))
    assert automation.observe().data_version == "sha256:" + hashlib.sha256(data.read_bytes()).hexdigest()
    automation.tick()
    data.write_text('{"content": "丙", "title": "丁"}\n', encoding="utf-8")
    assert automation.observe().data_version == "sha256:" + hashlib.sha256(data.read_bytes()).hexdigest()
    assert automation.tick() == {"raw_dataset"}


def _materialize_raw_dataset(automation):
    """raw_dataset with its production config (source: watched), as an automation run launches it."""
    return dg.materialize([raw_dataset], instance=automation.instance, resources={**defs.resources, "hub": HubDouble()})


def test_raw_dataset_loads_the_watched_file_at_the_observed_hash_and_refuses_newer_content(
        automation, artifact_root, monkeypatch, tmp_path):
    data = tmp_path / "news.jsonl"
    data.write_text('{"content": "第一篇文章的內容", "title": "第一則新聞標題"}\n', encoding="utf-8")
    monkeypatch.setenv("TITLEGEN_WATCH_FILE", str(data))
    observed = automation.observe().data_version
    meta = _materialize_raw_dataset(automation).asset_materializations_for_node("raw_dataset")[0].metadata
    assert (meta["source"].value, meta["location"].value, meta["revision"].value) == ("file", str(data), observed)

    data.write_text('{"content": "改過的文章內容", "title": "改過的新聞標題"}\n', encoding="utf-8")
    with pytest.raises(dg.Failure, match="changed since watched_source observed it") as refused:
        _materialize_raw_dataset(automation)
    assert observed in refused.value.description


def test_raw_dataset_asks_the_hub_for_the_observed_commit_not_main(automation, artifact_root, hub):
    """No Hub here: the load fails, and its message names the revision raw_dataset asked for."""
    dataset_at(hub, "a" * 40)
    automation.observe()
    dataset_at(hub, "b" * 40)  # the branch moved after the observation
    with pytest.raises(SourceError, match="AWeirdDev/zh-tw-pts-articles-sm@" + "a" * 40):
        _materialize_raw_dataset(automation)


def test_raw_dataset_following_an_unobserved_source_says_how_to_observe_it(automation, artifact_root, hub):
    with pytest.raises(dg.Failure, match="watched_source has no observed version"):
        _materialize_raw_dataset(automation)


def test_an_observation_of_another_source_is_not_lent_to_the_one_now_watched(automation, artifact_root, hub,
                                                                             monkeypatch):
    """The deployment now watches another dataset: the last commit observed of the old one is neither loaded for
    the new one nor repeated for it when the Hub cannot be reached."""
    dataset_at(hub, "a" * 40)
    automation.observe()
    monkeypatch.setenv("TITLEGEN_WATCH_DATASET", "newsroom/another-dataset")
    with pytest.raises(dg.Failure, match="no observed version of newsroom/another-dataset"):
        _materialize_raw_dataset(automation)
    hub.dataset_info.side_effect = OSError("unreachable")
    assert automation.observe().data_version is None


def test_nothing_trains_by_surprise_the_automation_sensor_and_the_schedule_start_stopped():
    assert isinstance(SENSOR, dg.AutomationConditionSensorDefinition)
    assert SENSOR.default_status == dg.DefaultSensorStatus.STOPPED
    assert defs.resolve_schedule_def("weekly_retraining").default_status == dg.DefaultScheduleStatus.STOPPED


@pytest.mark.parametrize("job_name", ["data_job", "full_pipeline_job"])
def test_a_job_from_the_data_observes_the_source_then_loads_what_it_observed(
        job_name, automation, artifact_root, monkeypatch, tmp_path):
    data = tmp_path / "news.jsonl"
    data.write_text('{"content": "第一篇文章的內容", "title": "第一則新聞標題"}\n', encoding="utf-8")
    monkeypatch.setenv("TITLEGEN_WATCH_FILE", str(data))
    job = defs.resolve_job_def(job_name)
    result = job.execute_in_process(instance=automation.instance,
                                    asset_selection=[watched_source.key, raw_dataset.key])
    observed = result.asset_observations_for_node("watched_source")[0].data_version
    assert result.asset_materializations_for_node("raw_dataset")[0].metadata["revision"].value == observed
