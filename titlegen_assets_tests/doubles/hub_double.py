"""A double of the Hugging Face Hub client for publishing tests (the Hub cannot be reached from here).

Stands for: ``huggingface_hub.HfApi`` (2.x) — ``create_repo`` and ``upload_folder`` as ``hf_repo`` calls them. It is
``unittest.mock.create_autospec(HfApi, instance=True)``, so a wrong method or argument name raises ``TypeError``
exactly as the real signature would; ``upload_folder`` returns a real ``huggingface_hub.CommitInfo``.
"""

from unittest import mock

from huggingface_hub import CommitInfo, HfApi

from titlegen_assets.defs.resources import HuggingFaceHub


def hf_api_double(repo_id: str) -> mock.MagicMock:
    api = mock.create_autospec(HfApi, instance=True)
    url = f"https://huggingface.co/{repo_id}"
    api.upload_folder.return_value = CommitInfo(
        commit_url=f"{url}/commit/0123456789abcdef0123456789abcdef01234567",
        commit_message="titlegen", commit_description="", oid="0123456789abcdef0123456789abcdef01234567",
        pr_url=None,
    )
    return api


class HubDouble(HuggingFaceHub):
    """The real resource class with its client swapped for the autospecced double (``api_double``)."""

    def api(self):
        return API_DOUBLE["api"]


API_DOUBLE: dict[str, mock.MagicMock] = {}
