"""A code location for test_pools.py: a step in the GPU pool that holds it until the test releases its run, and a
step in no pool. The tag and pool are the product's own (deploy/gpu.py); the bodies only wait."""

import os
import time
from pathlib import Path

import dagster as dg

from titlegen_assets.deploy.gpu import GPU_OP_TAGS, GPU_POOL

#: the folder where the test writes one file per run it releases, or RELEASE_ALL at its end
RELEASE_DIR = "TITLEGEN_TEST_RELEASE_DIR"
RELEASE_ALL = "all"


@dg.asset(op_tags=GPU_OP_TAGS, pool=GPU_POOL)
def holds_the_gpu(context: dg.AssetExecutionContext) -> None:
    """Runs until the test writes <RELEASE_DIR>/<run id> (or RELEASE_ALL): the GPU pool's slot is held that long."""
    folder = Path(os.environ[RELEASE_DIR])
    while not ((folder / context.run_id).exists() or (folder / RELEASE_ALL).exists()):
        time.sleep(0.2)


@dg.asset
def needs_no_gpu() -> None:
    """A step in no pool: its runs are not held back by a GPU run."""


defs = dg.Definitions(
    assets=[holds_the_gpu, needs_no_gpu],
    jobs=[dg.define_asset_job("gpu_job", selection=[holds_the_gpu]),
          dg.define_asset_job("cpu_job", selection=[needs_no_gpu])],
)
