"""The code location: every Dagster object under ``defs/`` (one module per stage), with the production resources.

Only assembles, and stays light to import: the UI and the daemon load it on every reload.

Loaded through public, non-preview loaders that read the installed package itself:
``load_definitions_from_package_module`` is a preview API, and ``dg.load_from_defs_folder``, public, finds the project
by a ``pyproject.toml`` (or ``dg.toml``) with ``[tool.dg]`` above the package, which the Docker image's non-editable
install in site-packages does not have. A new module under ``defs/``, or a new object in one, is picked up without
editing this file.
"""

import importlib
import inspect
import pkgutil
from types import ModuleType

import dagster as dg

from titlegen_assets import defs as stage_package
from titlegen_assets.defs.resources import production_resources, step_executor

#: The type ``define_asset_job`` returns: Dagster exports no name for it, its public signature names it.
ASSET_JOB = inspect.signature(dg.define_asset_job).return_annotation


def stage_modules() -> list[ModuleType]:
    """Every module under ``defs/``, imported."""
    prefix = f"{stage_package.__name__}."
    return [importlib.import_module(name) for _, name, _ in pkgutil.walk_packages(stage_package.__path__, prefix)]


def module_scope(modules: list[ModuleType], types: type | tuple[type, ...]) -> list:
    """Each object of ``types`` defined at module scope, once (a module importing another's job holds the same object).

    Dagster has public package loaders for assets and checks only; jobs, schedules and sensors are found here."""
    found = {id(value): value for module in modules for value in vars(module).values() if isinstance(value, types)}
    return list(found.values())


modules = stage_modules()
defs = dg.Definitions(
    assets=dg.load_assets_from_modules(modules, include_specs=True),
    asset_checks=dg.load_asset_checks_from_modules(modules),
    jobs=module_scope(modules, (dg.JobDefinition, ASSET_JOB)),
    schedules=module_scope(modules, dg.ScheduleDefinition),
    sensors=module_scope(modules, dg.SensorDefinition),
    resources=production_resources(),
    executor=step_executor(),
)
