"""The Docker stack's two code locations: the one Definitions split by where each step must run.

Dagster's public route to a per-run image is a code location with its own image and container context: the
DockerRunLauncher starts each run in the image of the location it belongs to (its code server's
``DAGSTER_CURRENT_IMAGE``) and merges that location's ``container_context`` over its own settings. So every asset and
check whose op carries the GPU tag (``deploy.gpu.GPU_TAG``) is served by ``gpu_location`` (GPU image, NVIDIA device
request) and everything else by ``cpu_location``: a new object lands by its tag, with no list to edit here. Each
location declares the other's assets it reads as external assets; Dagster joins both into one asset graph, and
``ManifestIOManager`` loads such an input from the asset's latest materialization, whichever location made it.

A run executes in one location, so a job whose assets span both is refused (``LocationSplitError``), unless it is in
``SINGLE_LOCATION_ONLY`` and left out. ``titlegen_assets.definitions`` stays the one location with everything
(``dagster dev``, the tests, Kubernetes, where each step pod asks for its own GPU).
"""

from collections.abc import Iterable

import dagster as dg

from titlegen_assets.definitions import defs
from titlegen_assets.deploy.gpu import GPU_TAG

#: Jobs that run every asset in one run, which no single image of the split does. The split stack's weekly
#: retraining is ``data_job``; training, publishing and serving follow by their automation conditions.
SINGLE_LOCATION_ONLY = frozenset({"full_pipeline_job"})


class LocationSplitError(ValueError):
    """A job, schedule or sensor that no one location of the split can hold."""


def runs_on_gpu(definition) -> bool:
    """True for an asset or check whose op is tagged GPU; external and source assets execute nothing: CPU."""
    return isinstance(definition, dg.AssetsDefinition) and definition.op.tags.get(GPU_TAG) == "true"


def own_keys(assets: Iterable) -> set[dg.AssetKey]:
    """The keys these assets define (materialized, observed or external)."""
    return {key for asset in assets for key in (asset.keys if isinstance(asset, dg.AssetsDefinition) else [asset.key])}


def read_keys(definitions: Iterable) -> set[dg.AssetKey]:
    """Every asset these assets and checks read or check."""
    keys = set()
    for definition in definitions:
        if isinstance(definition, dg.AssetsDefinition):
            keys.update(definition.dependency_keys)
            keys.update(spec.asset_key for spec in definition.check_specs)
    return keys


def job_location(job, gpu_keys: set[dg.AssetKey], assets: list) -> str:
    """"gpu" or "cpu": where every asset the job selects runs; a job across both raises, naming both sides."""
    if isinstance(job, dg.JobDefinition):
        raise LocationSplitError(f"{job.name} is an op job: the split places asset jobs by their assets only")
    # Dagster has no @public call that resolves an asset job's selection: AssetSelection.resolve is the one its own
    # Definitions use to build the job.
    selected = job.selection.resolve([a for a in assets if isinstance(a, (dg.AssetsDefinition, dg.SourceAsset))],
                                     allow_missing=True)
    on_gpu, on_cpu = selected & gpu_keys, selected - gpu_keys
    if on_gpu and on_cpu:
        names = lambda keys: ", ".join(sorted(key.to_user_string() for key in keys))  # noqa: E731
        raise LocationSplitError(
            f"{job.name} selects GPU assets ({names(on_gpu)}) and CPU assets ({names(on_cpu)}), but a run starts in "
            "one image: split the job by the GPU tag, or add it to SINGLE_LOCATION_ONLY")
    return "gpu" if on_gpu else "cpu"


def split_by_gpu(whole: dg.Definitions) -> tuple[dg.Definitions, dg.Definitions]:
    """The CPU and the GPU location of ``whole``: each with its own assets and checks, the other's assets it reads as
    external assets, its jobs, the schedules and sensors that target them, and every resource."""
    assets, checks = list(whole.assets or []), list(whole.asset_checks or [])
    gpu_keys = own_keys(a for a in assets if runs_on_gpu(a))
    jobs = {job.name: job for job in whole.jobs or [] if job.name not in SINGLE_LOCATION_ONLY}
    location_of_job = {name: job_location(job, gpu_keys, assets) for name, job in jobs.items()}

    def locations_of(target) -> set[str]:
        """A schedule's or sensor's location: its job's; an automation sensor (no job) evaluates in both."""
        if isinstance(target, dg.AutomationConditionSensorDefinition):
            return {"cpu", "gpu"}
        if target.job_name not in location_of_job:
            raise LocationSplitError(f"{target.name} targets {target.job_name}, which no location of the split holds: "
                                     "target a job of one location")
        return {location_of_job[target.job_name]}

    def location(name: str) -> dg.Definitions:
        own_assets = [a for a in assets if ("gpu" if runs_on_gpu(a) else "cpu") == name]
        own_checks = [c for c in checks if ("gpu" if runs_on_gpu(c) else "cpu") == name]
        external = read_keys([*own_assets, *own_checks]) - own_keys(own_assets)
        return dg.Definitions(
            assets=[*own_assets, *(dg.AssetSpec(key) for key in sorted(external, key=lambda key: key.path))],
            asset_checks=own_checks,
            jobs=[job for job_name, job in jobs.items() if location_of_job[job_name] == name],
            schedules=[s for s in whole.schedules or [] if name in locations_of(s)],
            sensors=[s for s in whole.sensors or [] if name in locations_of(s)],
            resources=whole.resources, executor=whole.executor, loggers=whole.loggers,
        )

    return location("cpu"), location("gpu")


#: served from the CPU image (data, publishing, serving and their checks) and from the GPU image (training, merging,
#: the eval gate): ``dagster code-server start -m titlegen_assets.deploy.locations -a cpu_location`` (or gpu_location)
cpu_location, gpu_location = split_by_gpu(defs)
