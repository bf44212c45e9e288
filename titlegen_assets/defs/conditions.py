"""When each asset runs under declarative automation. Dagster's default_automation_condition_sensor evaluates these
conditions once it is turned on (it starts stopped), and the UI's Automation pages show which part held on each
tick."""

import dagster as dg

#: When watched_source is observed (hourly, Asia/Taipei): each observation records the data's version, and a new
#: version is what starts a retraining.
OBSERVE_SCHEDULE = dg.AutomationCondition.cron_tick_passed("0 * * * *", "Asia/Taipei").with_label("hourly observation")

#: Every asset after the source: run once an input has a new version (for watched_source, a new commit or file hash,
#: not merely a new observation), never while an input is missing or being made, and only once every blocking check
#: of every input passed: no training on splits whose data checks failed, no publishing of a model the gate refused.
ON_NEW_INPUTS = (dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()).with_label(
    "new inputs whose blocking checks passed")
