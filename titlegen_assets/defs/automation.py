"""Jobs, the weekly retraining schedule and the data-change sensor. Schedule and sensor start stopped, so nobody
trains by surprise: turn them on in the UI (Automation) or with `dagster schedule start` / `dagster sensor start`."""

import os

import dagster as dg

from titlegen_assets.data import watch
from titlegen_assets.defs.resources import HuggingFaceHub
from titlegen_assets.deploy.gpu import GPU_TAG

data_job = dg.define_asset_job("data_job", selection=dg.AssetSelection.groups("data"),
                               description="raw_dataset and cleaned_splits with their data checks.")
training_job = dg.define_asset_job("training_job", selection=dg.AssetSelection.tag(GPU_TAG, "true"),
                                   description="The GPU assets: lora_adapter and merged_hf_model with the eval gate.")
publish_and_serve_job = dg.define_asset_job("publish_and_serve_job", selection=dg.AssetSelection.groups("publish", "serve"),
                                            description="hf_repo, ollama_model and latency_report.")
full_pipeline_job = dg.define_asset_job("full_pipeline_job", selection=dg.AssetSelection.all(),
                                        description="All seven assets and their checks, in one run: where one code "
                                        "location runs every step (dagster dev, Kubernetes), not in the Docker stack.")

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


@dg.sensor(job=data_job, minimum_interval_seconds=3600, default_status=dg.DefaultSensorStatus.STOPPED)
def data_change_sensor(context: dg.SensorEvaluationContext, hub: HuggingFaceHub):
    """Refresh the data when its source changes (the Hub dataset's latest commit, or TITLEGEN_WATCH_FILE's sha256);
    training follows by automation conditions, as after the weekly schedule."""
    source = watch.watched_source()
    try:
        revision = watch.current_revision(source, hub)
    except Exception as error:  # the Hub or the file being unreachable is a reason to wait, not to crash
        context.log.warning(f"data_change_sensor: cannot read {source['location']}: {type(error).__name__}: {error}")
        return dg.SkipReason(f"cannot read {source['location']} ({type(error).__name__}: {str(error)[:300]}); "
                             "will try again at the next tick")
    if context.cursor == revision:
        return dg.SkipReason(f"{source['location']} unchanged at {revision}")
    context.update_cursor(revision)
    return dg.RunRequest(run_key=f"{source['kind']}-{revision}", run_config=watch.run_config(source, revision),
                         tags={"titlegen/trigger": "data-change", "titlegen/data-revision": revision[:63]})
