"""What starts work: the stage jobs, the weekly retraining schedule, and the declarative automation that retrains
when the watched data changes.

Nothing trains by surprise: the schedule and the automation sensor start stopped; turn them on in the UI
(Automation) or with `dagster schedule start` / `dagster sensor start`. The automation sensor evaluates the
conditions below on every asset of the code location; the UI's Automation tab and each asset's Automation page show,
tick by tick, which condition held and why an asset was or was not requested.
"""

import os

import dagster as dg

from titlegen_assets.deploy.gpu import GPU_TAG

#: When watched_source is observed (hourly, Asia/Taipei): each observation records the data's version, and a new
#: version is what starts a retraining.
OBSERVE_SCHEDULE = dg.AutomationCondition.cron_tick_passed("0 * * * *", "Asia/Taipei").with_label("hourly observation")

#: Every asset after the source: run once an input has a new version (for watched_source, a new commit or file hash,
#: not merely a new observation), never while an input is missing or being made, and only once every blocking check
#: of every input passed: no training on splits whose data checks failed, no publishing of a model the gate refused.
ON_NEW_INPUTS = (dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()).with_label(
    "new inputs whose blocking checks passed")

data_job = dg.define_asset_job("data_job", selection=dg.AssetSelection.groups("data"),
                               description="raw_dataset and cleaned_splits with their data checks.")
training_job = dg.define_asset_job("training_job", selection=dg.AssetSelection.tag(GPU_TAG, "true"),
                                   description="The GPU assets: lora_adapter and merged_hf_model with the eval gate.")
publish_and_serve_job = dg.define_asset_job("publish_and_serve_job", selection=dg.AssetSelection.groups("publish", "serve"),
                                            description="hf_repo, ollama_model and latency_report.")
full_pipeline_job = dg.define_asset_job(
    "full_pipeline_job", selection=dg.AssetSelection.all(include_sources=True),
    description="Observes watched_source, then all seven assets and their checks on the version it observed.")

#: Weekly retraining; set TITLEGEN_RETRAIN_CRON to change when (cron syntax, Asia/Taipei time).
retraining_schedule = dg.ScheduleDefinition(
    name="weekly_retraining",
    job=full_pipeline_job,
    cron_schedule=os.environ.get("TITLEGEN_RETRAIN_CRON", "0 3 * * 1"),
    execution_timezone="Asia/Taipei",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

#: Evaluates OBSERVE_SCHEDULE and ON_NEW_INPUTS. Named here (rather than Dagster's implicit
#: default_automation_condition_sensor) so its target and its stopped status are in the code and under test.
retraining_automation = dg.AutomationConditionSensorDefinition(
    "retraining_automation",
    target=dg.AssetSelection.all(include_sources=True),
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Observes watched_source hourly and retrains when its version changes; nothing runs on inputs whose "
    "blocking checks failed.",
)
