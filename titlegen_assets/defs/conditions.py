"""When each asset runs under declarative automation. Dagster's default_automation_condition_sensor evaluates these
conditions once it is turned on (it starts stopped), and the UI's Automation pages show which part held on each
tick."""

import dagster as dg

#: When watched_source is observed (hourly, Asia/Taipei): each observation records the data's version, and a new
#: version is what starts a retraining.
OBSERVE_SCHEDULE = dg.AutomationCondition.cron_tick_passed("0 * * * *", "Asia/Taipei").with_label("hourly observation")

#: A dependency whose data version changed since the previous tick. Dagster's own any_deps_updated, which eager()
#: holds, counts any new materialization (the weekly data_job on an unchanged commit, or a manual re-run, would
#: retrain, re-gate and republish the same data) and also a dependency merely requested on the same tick, which would
#: start a stage beside the one making its input: in the Docker stack's two code locations, as separate runs. Here
#: each stage starts once its input exists at a new version, and so is judged by that version's blocking checks.
NEW_INPUT_VERSION = dg.AutomationCondition.any_deps_match(
    dg.AutomationCondition.data_version_changed()
).with_label("an input's data version changed")

#: Every asset after the source: eager() with its trigger narrowed to a new input version (for watched_source, a new
#: commit or file hash), never while an input is missing or being made, and only once every blocking check of every
#: input passed: no training on splits whose data checks failed, no publishing of a model the gate refused.
ON_NEW_INPUTS = (
    dg.AutomationCondition.eager().replace("any_deps_updated", NEW_INPUT_VERSION)
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("new input versions whose blocking checks passed")
