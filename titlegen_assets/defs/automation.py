"""What starts work: the stage jobs, the weekly retraining schedule, and the sensor that evaluates the automation
conditions (conditions.py) so that a new version of the watched data retrains.

Nothing trains by surprise: the schedule and the automation sensor start stopped; turn them on in the UI
(Automation) or with `dagster schedule start` / `dagster sensor start`. The UI's Automation tab and each asset's
Automation page show, tick by tick, which condition held and why an asset was or was not requested.
"""

import os

import dagster as dg

from titlegen_assets.defs.data_assets import watched_source
from titlegen_assets.deploy.gpu import GPU_TAG

#: Every asset of the code location and the source they follow (AssetSelection.all() leaves source assets out;
#: its include_sources parameter is beta at Dagster 1.13).
EVERYTHING_AND_THE_SOURCE = dg.AssetSelection.all() | dg.AssetSelection.assets(watched_source.key)

data_job = dg.define_asset_job("data_job", selection=dg.AssetSelection.groups("data"),
                               description="raw_dataset and cleaned_splits with their data checks.")
training_job = dg.define_asset_job("training_job", selection=dg.AssetSelection.tag(GPU_TAG, "true"),
                                   description="The GPU assets: lora_adapter and merged_hf_model with the eval gate.")
publish_and_serve_job = dg.define_asset_job("publish_and_serve_job", selection=dg.AssetSelection.groups("publish", "serve"),
                                            description="hf_repo, ollama_model and latency_report.")
full_pipeline_job = dg.define_asset_job(
    "full_pipeline_job", selection=EVERYTHING_AND_THE_SOURCE,
    description="Observes watched_source, then all seven assets and their checks on the version it observed.")

#: Weekly retraining; set TITLEGEN_RETRAIN_CRON to change when (cron syntax, Asia/Taipei time).
retraining_schedule = dg.ScheduleDefinition(
    name="weekly_retraining",
    job=full_pipeline_job,
    cron_schedule=os.environ.get("TITLEGEN_RETRAIN_CRON", "0 3 * * 1"),
    execution_timezone="Asia/Taipei",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

#: Evaluates the conditions of conditions.py. Named here (rather than Dagster's implicit
#: default_automation_condition_sensor) so its target and its stopped status are in the code and under test.
retraining_automation = dg.AutomationConditionSensorDefinition(
    "retraining_automation",
    target=EVERYTHING_AND_THE_SOURCE,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Observes watched_source hourly and retrains when its version changes; nothing runs on inputs whose "
    "blocking checks failed.",
)
