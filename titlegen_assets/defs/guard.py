"""One guard for every blocking check, across runs, processes and containers.

A step that consumes an asset refuses it unless every blocking check defined on that asset evaluated *the
materialization it loaded* and passed, in this run or any earlier one. The truth is Dagster's own record: the
materialization is found by the data version the step loaded (never "the latest", which a concurrent run may have
replaced), and each check's execution history is searched for an evaluation that targets that materialization.
Training calls it on cleaned_splits' data checks; publishing, serving and latency on the eval gate.
"""

import dagster as dg

#: The tag Dagster stores an asset materialization's data version under.
DATA_VERSION_TAG = "dagster/data_version"
#: How far back materializations and check executions are searched for the one a step loaded.
HISTORY = 200


class ChecksRefused(Exception):
    """A blocking check failed, or never ran, on the materialization a step loaded; the message says which and what
    to run."""


def blocking_checks(key: dg.AssetKey) -> list[dg.AssetCheckKey]:
    """The blocking checks the code location defines on ``key`` (read from its definitions, whatever a run selected:
    a job's own graph holds only its selection)."""
    from titlegen_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    return sorted((check for check in graph.get_check_keys_for_assets({key}) if graph.get(check).blocking),
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


def evaluation_of(instance: dg.DagsterInstance, check: dg.AssetCheckKey,
                  storage_id: int) -> dg.AssetCheckEvaluation | None:
    """The newest evaluation of ``check`` that targets the materialization with ``storage_id``."""
    for execution in instance.event_log_storage.get_asset_check_execution_history(check, limit=HISTORY):
        evaluation = execution.evaluation
        target = evaluation.target_materialization_data if evaluation else None
        if target is not None and target.storage_id == storage_id:
            return evaluation
    return None


def require_passed_checks(context: dg.AssetExecutionContext, key: dg.AssetKey, version: str, consumer: str,
                          how_to_run: str) -> dict[str, dg.AssetCheckEvaluation]:
    """The evaluations of every blocking check on ``key`` at ``version``, each of which passed; else
    ``ChecksRefused`` naming each check that failed (with its own message) or never ran, and ``how_to_run``."""
    name = key.to_user_string()
    record = materialization_of(context.instance, key, version)
    if record is None:
        raise ChecksRefused(f"{consumer}: {name} {version} has no materialization recorded in this Dagster instance, "
                            f"so its checks cannot be verified. To go on: {how_to_run}")
    evaluations, problems = {}, []
    for check in blocking_checks(key):
        evaluation = evaluation_of(context.instance, check, record.storage_id)
        if evaluation is None:
            problems.append(f"{check.name} never ran on this materialization (run {record.run_id[:8]})")
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
