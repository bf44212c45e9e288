"""A double of the Hugging Face Hub client for publishing tests (the Hub cannot be reached from here).

Stands for: ``huggingface_hub.HfApi`` 2.4.0 — ``create_repo``, ``repo_info`` and ``upload_folder`` as ``hf_repo``
calls them, read from that version's ``hf_api.py``. It is ``unittest.mock.create_autospec(HfApi, instance=True)``,
so a wrong method or argument name raises ``TypeError`` exactly as the real signature would. What the product
depends on behaves as the real client does, with the real return types:

- ``create_repo(..., private=..., exist_ok=True)`` creates a missing repo with that visibility (``None``: public,
  the Hub's default for a user) and returns a ``RepoUrl``; for a repo that exists it changes nothing (the real
  client swallows the Hub's 409 and ``private`` "is ignored if the repo already exists"); without ``exist_ok`` it
  raises ``HfHubHTTPError`` (409).
- ``repo_info(repo_id)`` returns a ``ModelInfo`` whose ``private`` is the repo's visibility, or raises
  ``RepositoryNotFoundError`` (404) for a repo that does not exist.
- ``upload_folder`` returns a ``CommitInfo``.
"""

from unittest import mock

from huggingface_hub import CommitInfo, HfApi, ModelInfo, RepoUrl
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from titlegen_assets.defs.resources import HuggingFaceHub

try:  # the HTTP library huggingface_hub's errors carry: httpx2 in 2.x (the CPU pins), httpx in 1.x (the GPU pins)
    import httpx2 as http
except ModuleNotFoundError:
    import httpx as http

ENDPOINT = "https://huggingface.co"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _error(kind: type, status: int, method: str, url: str, message: str) -> HfHubHTTPError:
    response = http.Response(status, request=http.Request(method, url))
    return kind(f"{status} Client Error.\n\n{message} for url: {url}", response=response)


def hf_api_double(repo_id: str, existing_private: bool | None = None) -> mock.MagicMock:
    """The client of a Hub where ``repo_id`` does not exist yet (``existing_private`` None) or exists with that
    visibility; ``api.repos`` maps each repo id to its ``private`` flag."""
    api = mock.create_autospec(HfApi, instance=True)
    api.repos = {} if existing_private is None else {repo_id: existing_private}

    def create_repo(repo_id, *, private=None, exist_ok=False, **_):
        if repo_id in api.repos and not exist_ok:
            raise _error(HfHubHTTPError, 409, "POST", f"{ENDPOINT}/api/repos/create", "You already created this model repo")
        api.repos.setdefault(repo_id, bool(private))
        return RepoUrl(f"{ENDPOINT}/{repo_id}", endpoint=ENDPOINT)

    def repo_info(repo_id, **_):
        if repo_id not in api.repos:
            raise _error(RepositoryNotFoundError, 404, "GET", f"{ENDPOINT}/api/models/{repo_id}", "Repository Not Found")
        return ModelInfo(id=repo_id, private=api.repos[repo_id], sha=COMMIT)

    api.create_repo.side_effect = create_repo
    api.repo_info.side_effect = repo_info
    api.upload_folder.return_value = CommitInfo(
        commit_url=f"{ENDPOINT}/{repo_id}/commit/{COMMIT}", commit_message="titlegen", commit_description="",
        oid=COMMIT, pr_url=None,
    )
    return api


class HubDouble(HuggingFaceHub):
    """The real resource class with its client swapped for the autospecced double (``api_double``)."""

    def api(self):
        return API_DOUBLE["api"]


API_DOUBLE: dict[str, mock.MagicMock] = {}
