"""The code location: every Dagster object under ``defs/`` (one module per stage), with the production resources.

Only assembles, and stays light to import: the UI and the daemon load it on every reload.
"""

import dagster as dg

from titlegen_assets import defs as stage_modules
from titlegen_assets.defs.resources import production_resources, step_executor

defs = dg.load_definitions_from_package_module(stage_modules, resources=production_resources(),
                                               executor=step_executor())
