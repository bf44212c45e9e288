"""One of two pipeline runs that test_certificates forces to interleave, each in its own process over one Dagster
instance (DAGSTER_HOME) and one artifact root (TITLEGEN_HOME), as two runs of the Docker stack share PostgreSQL and
a volume. A barrier, not luck, orders them:

- run ``B`` waits, before merging, until run ``A``'s merged model is materialized (so B's is the latest);
- run ``A`` waits, before its gate loads the model, until a gate evaluation exists (B's).

So A's gate scores A's model while Dagster's latest materialization of merged_hf_model is B's.

    python -m titlegen_assets_tests.interleaved_run ROLE RUN_CONFIG_JSON
"""

import json
import sys
import time

import dagster as dg

from titlegen_assets.defs.io_manager import ManifestIOManager
from titlegen_assets.defs.resources import ArtifactStore
from titlegen_assets_tests.doubles.hub_double import HubDouble
from titlegen_assets_tests.support import materialize

MERGED = dg.AssetKey("merged_hf_model")
SELECTION = ["raw_dataset", "cleaned_splits", "lora_adapter", "merged_hf_model", "hf_repo"]
WAIT_S = 900


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"barrier: gave up waiting for {what}")
        time.sleep(0.5)


class BarrierIOManager(ManifestIOManager):
    """The product's IO manager, holding a step of this run at its inputs until the other run has got that far."""

    role: str

    def load_input(self, context: dg.InputContext) -> dict:
        instance = context.instance
        if self.role == "B" and context.op_def.name == "merged_hf_model":
            wait_until(lambda: instance.get_latest_materialization_event(MERGED) is not None, "A's merged model")
        if self.role == "A" and context.op_def.name == "eval_gate":
            rouge_l = dg.AssetCheckKey(MERGED, "rouge_l")
            wait_until(lambda: any(isinstance(execution.evaluation, dg.AssetCheckEvaluation)  # not merely planned
                                   for execution in instance.event_log_storage
                                   .get_asset_check_execution_history(rouge_l, limit=5)), "B's gate evaluation")
        return super().load_input(context)


def main() -> int:
    role, run_config = sys.argv[1], json.loads(sys.argv[2])
    with dg.DagsterInstance.get() as instance:
        result = materialize(SELECTION, run_config, instance, hub=HubDouble(),
                             io_manager=BarrierIOManager(artifacts=ArtifactStore(), role=role))
        print(json.dumps({"run_id": result.run_id, "success": result.success}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
