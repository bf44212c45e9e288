"""Step outputs on the shared artifact root, so any later run, process, container or pod can load them.

The assets return small JSON manifests (paths, versions, counts, the versions of the inputs they were made from);
the models and datasets themselves are folders under the artifact root. Dagster's default IO manager pickles
outputs into the run's own ``$DAGSTER_HOME/storage``, which another container never sees; this one writes
``<artifact root>/manifests/<asset key>/<run id>.json`` instead (one volume in the Docker stack, one PVC in
Kubernetes): one file per materialization, never overwritten, so concurrent runs cannot replace each other's.

A step loads the manifest its own upstream produced: from its own run (or the run it re-executes) when the upstream
step ran there, else from the run of the upstream asset's latest materialization — Dagster's meaning of "the
asset's current value". It adds no ``path`` metadata, so an asset's ``path`` keeps pointing at its artifact folder.
"""

import json
from pathlib import Path

import dagster as dg

from titlegen_assets.defs.resources import ArtifactStore
from titlegen_assets.versioning.artifacts import atomic_write_text


def manifest_file(root: Path, key: dg.AssetKey, run_id: str) -> Path:
    """Where a run's output of ``key`` lies under the artifact root ``root``."""
    return root / "manifests" / Path(*key.path) / f"{run_id}.json"


class ManifestIOManager(dg.ConfigurableIOManager):
    """JSON manifests of asset outputs under the artifact root (written atomically: a reader never sees half)."""

    artifacts: ArtifactStore

    def manifest_path(self, key: dg.AssetKey, run_id: str) -> Path:
        return manifest_file(self.artifacts.base(), key, run_id)

    def handle_output(self, context: dg.OutputContext, obj: dict) -> None:
        if obj is None:
            return
        atomic_write_text(self.manifest_path(context.asset_key, context.run_id),
                          json.dumps(obj, ensure_ascii=False, indent=2))

    def _producing_run(self, context: dg.InputContext, key: dg.AssetKey) -> str | None:
        """This run or its ancestors when one of them wrote the manifest, else the latest materialization's run."""
        run = context.step_context.dagster_run
        for run_id in (run.run_id, run.parent_run_id, run.root_run_id):
            if run_id and self.manifest_path(key, run_id).is_file():
                return run_id
        records = context.instance.fetch_materializations(key, limit=1).records
        return records[0].run_id if records else None

    def load_input(self, context: dg.InputContext) -> dict:
        key = context.asset_key
        run_id = self._producing_run(context, key)
        path = self.manifest_path(key, run_id) if run_id else None
        if path is None or not path.is_file():
            raise FileNotFoundError(
                f"{key.to_user_string()} has no stored output{f' at {path}' if path else ''}: materialize "
                f"{key.to_user_string()} first (with the same TITLEGEN_HOME, currently {self.artifacts.base()}, and "
                "the same Dagster instance)"
            )
        return json.loads(path.read_text(encoding="utf-8"))
