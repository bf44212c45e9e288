"""Step outputs on the shared artifact root, so any later run, process, container or pod can load them.

The assets return small JSON manifests (paths, versions, counts); the models and datasets themselves are folders
under the artifact root. Dagster's default IO manager pickles outputs into the run's own ``$DAGSTER_HOME/storage``,
which another container never sees; this one writes ``<artifact root>/manifests/<asset key>.json`` instead (one
volume in the Docker stack, one PVC in Kubernetes). It adds no ``path`` metadata, so an asset's ``path`` keeps
pointing at its artifact folder.
"""

import json
from pathlib import Path

import dagster as dg

from titlegen_assets.defs.resources import ArtifactStore
from titlegen_assets.versioning.artifacts import atomic_write_text


class ManifestIOManager(dg.ConfigurableIOManager):
    """JSON manifests of asset outputs under the artifact root (written atomically: a reader never sees half)."""

    artifacts: ArtifactStore

    def manifest_path(self, key: dg.AssetKey) -> Path:
        return self.artifacts.base() / "manifests" / Path(*key.path).with_suffix(".json")

    def handle_output(self, context: dg.OutputContext, obj: dict) -> None:
        if obj is None:
            return
        atomic_write_text(self.manifest_path(context.asset_key), json.dumps(obj, ensure_ascii=False, indent=2))

    def load_input(self, context: dg.InputContext) -> dict:
        key = context.asset_key
        path = self.manifest_path(key)
        if not path.is_file():
            raise FileNotFoundError(
                f"{key.to_user_string()} has no stored output at {path}: materialize {key.to_user_string()} first "
                f"(with the same TITLEGEN_HOME, currently {self.artifacts.base()})"
            )
        return json.loads(path.read_text(encoding="utf-8"))
