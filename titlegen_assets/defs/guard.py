"""One guard for every blocking check, across runs, processes and containers.

A step that consumes an asset refuses it unless every blocking check defined on that asset passed on *the version
the step loaded*, in this run or any earlier one. Each blocking check records that version in its own evaluation
(``EVALUATED_VERSION``), and the guard reads only that: Dagster links an evaluation to the asset's latest
materialization at the time the check ran, which is another version after a re-execution of an old run, or while
a second run materializes the same asset (see DESIGN.md, "A verdict belongs to the version it scored").
Training calls it on cleaned_splits' data checks; publishing and serving on the eval gate; latency on ollama_model's
served check.
"""

import dagster as dg

#: The tag Dagster stores an asset materialization's data version under.
DATA_VERSION_TAG = "dagster/data_version"
#: The metadata key under which every blocking check records the exact version of the asset it evaluated.
EVALUATED_VERSION = "evaluated_version"
#: How far back materializations and check executions are searched for the version a step loaded.
HISTORY = 200


class ChecksRefused(Exception):
    """A blocking check failed, or never ran, on the version a step loaded; the message says which and what to run."""


def check_specs() -> list[dg.AssetCheckSpec]:
    """Every check the code location defines, read from its definitions' public ``check_specs`` (whatever a run
    selected: a job's own graph holds only its selection): those of its asset checks and those declared on assets."""
    from titlegen_assets.definitions import defs

    return [spec for definition in [*defs.assets, *defs.asset_checks] if isinstance(definition, dg.AssetsDefinition)
            for spec in definition.check_specs]


def blocking_checks(key: dg.AssetKey) -> list[dg.AssetCheckKey]:
    """The blocking checks the code location defines on ``key``."""
    return sorted((spec.key for spec in check_specs() if spec.asset_key == key and spec.blocking),
                  key=lambda check: check.name)


def materialization_of(instance: dg.DagsterInstance, key: dg.AssetKey, version: str) -> dg.EventLogRecord | None:
    """The newest materialization of ``key`` (among its last ``HISTORY``) that produced ``version``."""
    for record in instance.fetch_materializations(key, limit=HISTORY).records:
        if record.asset_materialization.tags.get(DATA_VERSION_TAG) == version:
            return record
    return None


def latest_if_version(instance: dg.DagsterInstance, key: dg.AssetKey, version: str) -> dg.AssetMaterialization | None:
    """The latest materialization of ``key`` when it made ``version``, else None: a step that finds its own version
    already done there (published, served) has nothing to redo."""
    event = instance.get_latest_materialization_event(key)
    materialization = event.asset_materialization if event else None
    return materialization if materialization and materialization.tags.get(DATA_VERSION_TAG) == version else None


def evaluated(version: str) -> dict:
    """The metadata every blocking check adds to its result: the version it scored."""
    return {EVALUATED_VERSION: version}


def evaluation_of(instance: dg.DagsterInstance, check: dg.AssetCheckKey, version: str) -> dg.AssetCheckEvaluation | None:
    """The newest evaluation of ``check`` that scored ``version`` (by the version it recorded, not Dagster's link)."""
    for execution in instance.event_log_storage.get_asset_check_execution_history(check, limit=HISTORY):
        evaluation = execution.evaluation  # a check still running (another run's) holds its planned event here
        recorded = evaluation.metadata.get(EVALUATED_VERSION) if isinstance(evaluation, dg.AssetCheckEvaluation) else None
        if recorded is not None and recorded.value == version:
            return evaluation
    return None


def require_passed_checks(context, key: dg.AssetKey, version: str, consumer: str,
                          how_to_run: str) -> dict[str, dg.AssetCheckEvaluation]:
    """The evaluations of every blocking check on ``key`` at ``version``, each of which passed; else
    ``ChecksRefused`` naming each check that failed (with its own message) or never ran, and ``how_to_run``."""
    name = key.to_user_string()
    evaluations, problems = {}, []
    for check in blocking_checks(key):
        evaluation = evaluation_of(context.instance, check, version)
        if evaluation is None:
            problems.append(f"{check.name} never ran on {name} {version}")
        elif not evaluation.passed:
            problems.append(f"{check.name} failed: {evaluation.description}")
        else:
            evaluations[check.name] = evaluation
    if problems:
        fix = how_to_run if any("never ran" in p for p in problems) else (
            f"fix what the check found and re-materialize {name}, or deliberately change its thresholds")
        raise ChecksRefused(f"{consumer}: refusing {name} {version} because its blocking checks did not pass "
                            f"({'; '.join(problems)}). To go on: {fix}")
    return evaluations
