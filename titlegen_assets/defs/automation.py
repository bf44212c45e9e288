"""What starts work: the stage jobs and the weekly retraining schedule. The automation conditions (conditions.py)
are evaluated by Dagster's own ``default_automation_condition_sensor``, which Dagster adds to every code location
holding assets with a condition, targeting exactly those (so it also works where the Docker stack splits the assets
over two code locations).

Nothing trains by surprise: the schedule and that sensor start stopped (``AutomationConditionSensorDefinition``'s
default); turn them on in the UI (Automation) or with `dagster schedule start weekly_retraining` /
`dagster sensor start default_automation_condition_sensor`. The UI's Automation tab and each asset's Automation page
show, tick by tick, which condition held and why an asset was or was not requested.
"""

import os

import dagster as dg

from titlegen_assets.defs.data_assets import watched_source
from titlegen_assets.deploy.gpu import GPU_TAG

#: The observation of the source raw_dataset follows, run first in the jobs that start from the data: a source asset
#: is selected by its key (AssetSelection.all() and .groups() leave sources out; their include_sources parameter is
#: beta at Dagster 1.13).
OBSERVATION = dg.AssetSelection.assets(watched_source.key)

data_job = dg.define_asset_job(
    "data_job", selection=dg.AssetSelection.groups("data") | OBSERVATION,
    description="Observes watched_source, then raw_dataset and cleaned_splits with their data checks.")
training_job = dg.define_asset_job("training_job", selection=dg.AssetSelection.tag(GPU_TAG, "true"),
                                   description="The GPU assets: lora_adapter and merged_hf_model with the eval gate.")
publish_and_serve_job = dg.define_asset_job("publish_and_serve_job", selection=dg.AssetSelection.groups("publish", "serve"),
                                            description="hf_repo, ollama_model and latency_report.")
full_pipeline_job = dg.define_asset_job(
    "full_pipeline_job", selection=dg.AssetSelection.all() | OBSERVATION,
    description="Observes watched_source, then all seven assets and their checks on the version it observed, in one "
    "run: where one code location runs every step (dagster dev, Kubernetes), not in the Docker stack.")

#: Weekly retraining; set TITLEGEN_RETRAIN_CRON to change when (cron syntax, Asia/Taipei time). It refreshes the data;
#: training, publishing and serving follow by their automation conditions. It starts data_job, not full_pipeline_job,
#: because the Docker stack runs the data and the GPU steps in two code locations (deploy/locations.py), and a run
#: belongs to one.
retraining_schedule = dg.ScheduleDefinition(
    name="weekly_retraining",
    job=data_job,
    cron_schedule=os.environ.get("TITLEGEN_RETRAIN_CRON", "0 3 * * 1"),
    execution_timezone="Asia/Taipei",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
