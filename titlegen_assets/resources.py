"""Every external system behind one resource: tests swap the resource, never the code inside an asset."""


import re
from pathlib import Path
from typing import Optional

import dagster as dg
from pydantic import Field

from titlegen_assets.artifacts import default_root, final_path

_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class ArtifactStore(dg.ConfigurableResource):
    """The artifact root: every asset writes ``<root>/<kind>/<version>/`` there (a shared volume in Docker)."""

    root: Optional[str] = Field(default=None, description="Artifact root; default TITLEGEN_HOME or ~/.titlegen.")

    def base(self) -> Path:
        return Path(self.root).expanduser() if self.root else default_root()

    def path(self, kind: str, version: str) -> Path:
        return final_path(self.base(), kind, version)


class HuggingFaceHub(dg.ConfigurableResource):
    """The Hugging Face Hub through ``huggingface_hub.HfApi``. The token comes only from the environment."""

    token: Optional[str] = Field(default=None, description="Hub token; set it with the HF_TOKEN environment variable.")
    endpoint: Optional[str] = Field(default=None, description="Hub endpoint; default https://huggingface.co (HF_ENDPOINT).")

    def api(self):
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint, token=self.token or None)

    def dataset_commit(self, dataset_id: str, revision: str) -> str:
        """The commit sha a dataset branch or tag points at now (a sha is returned as is, without a request)."""
        if _COMMIT.match(revision):
            return revision
        return self.api().dataset_info(dataset_id, revision=revision).sha
