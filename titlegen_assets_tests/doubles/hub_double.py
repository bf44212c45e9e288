"""A double of the Hugging Face Hub client for publishing tests (the Hub cannot be reached from here).

Stands for: ``huggingface_hub.HfApi`` 2.4.0 — ``create_repo``, ``repo_info``, ``list_repo_files`` and
``upload_folder`` as ``hf_repo`` calls them, and ``dataset_info`` as ``watched_source`` observes a dataset's commit, read from that version's ``hf_api.py`` (``upload_folder``,
``_prepare_folder_deletions``, ``_prepare_upload_folder_additions``) and ``_upload_pipeline.py`` (the path taken when
``hf_xet`` is installed, as it is in the pins). It is ``unittest.mock.create_autospec(HfApi, instance=True)``, so a
wrong method or argument name raises ``TypeError`` exactly as the real signature would. What the product depends on
behaves as the real client does, with the real return types:

- ``create_repo(..., private=..., exist_ok=True)`` creates a missing repo with that visibility (``None``: public,
  the Hub's default for a user) and an initial commit holding ``.gitattributes``, and returns a ``RepoUrl``; for a
  repo that exists it changes nothing (the real client swallows the Hub's 409 and ``private`` "is ignored if the
  repo already exists"); without ``exist_ok`` it raises ``HfHubHTTPError`` (409).
- ``repo_info(repo_id)`` returns a ``ModelInfo`` whose ``private`` is the repo's visibility and ``sha`` its head
  commit, or raises ``RepositoryNotFoundError`` (404) for a repo that does not exist; ``list_repo_files`` lists the
  head's files.
- ``upload_folder`` keeps each repo's files (``api.heads[repo_id]``: path in repo -> bytes) and records each commit
  (``api.commits[repo_id]``). Additions are the folder's files (``glob("**/*")``) filtered by ``allow_patterns`` /
  ``ignore_patterns`` plus ``DEFAULT_IGNORE_PATTERNS``; deletions are the head's files matching ``delete_patterns``
  (huggingface_hub's own ``filter_repo_objects``: ``fnmatchcase`` on paths relative to ``path_in_repo``, ``*``
  crossing ``/``), never ``.gitattributes``, never a path being uploaded. Deletions and additions go in one commit;
  unchanged files are not committed, and when nothing changes no commit is made and the ``CommitInfo`` names the
  current head (the pipeline's ``_final_commit_info``). It returns a ``CommitInfo``.

- ``dataset_info(repo_id, revision=...)``, once ``dataset_at`` set a commit, returns a ``DatasetInfo`` whose ``sha`` is
  that commit (the real client resolves the branch or tag to the commit it points at; every revision does here).

Not modelled: the real pipeline splits a folder of more than 250 files (or 100 MiB of non-LFS content) into several
commits, with the deletions in the first; ``create_pr``, ``revision``, ``run_as_future`` raise
``NotImplementedError``; the README's YAML is not validated server-side.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from huggingface_hub import CommitInfo, DatasetInfo, HfApi, ModelInfo, RepoUrl, constants
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

from titlegen_assets.defs.resources import HuggingFaceHub

try:  # the HTTP library huggingface_hub's errors carry: httpx2 in 2.x (the CPU pins), httpx in 1.x (the GPU pins)
    import httpx2 as http
except ModuleNotFoundError:
    import httpx as http

ENDPOINT = "https://huggingface.co"
#: What the Hub's initial commit of a new model repo holds (the LFS rules; shortened, the content is not read).
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.gguf filter=lfs diff=lfs merge=lfs -text\n"


@dataclass(frozen=True)
class Commit:
    """One commit on a repo's main branch: its id, message, and the paths it added (or changed) and deleted."""

    oid: str
    message: str
    added: frozenset[str]
    deleted: frozenset[str]


def _error(kind: type, status: int, method: str, url: str, message: str) -> HfHubHTTPError:
    response = http.Response(status, request=http.Request(method, url))
    return kind(f"{status} Client Error.\n\n{message} for url: {url}", response=response)


def hf_api_double(repo_id: str, existing_private: bool | None = None) -> mock.MagicMock:
    """The client of a Hub where ``repo_id`` does not exist yet (``existing_private`` None) or exists with that
    visibility; ``api.repos`` maps each repo id to its ``private`` flag, ``api.heads`` to its files, ``api.commits``
    to its commits (oldest first)."""
    api = mock.create_autospec(HfApi, instance=True)
    api.repos, api.heads, api.commits = {}, {}, {}

    def commit(repo_id: str, message: str, added: dict[str, bytes], deleted: set[str]) -> Commit:
        head = api.heads.setdefault(repo_id, {})
        history = api.commits.setdefault(repo_id, [])
        for path in deleted:
            del head[path]
        head.update(added)
        tree = "".join(f"{path}\0{hashlib.sha256(data).hexdigest()}\n" for path, data in sorted(head.items()))
        parent = history[-1].oid if history else ""
        oid = hashlib.sha1(f"{parent}\n{message}\n{tree}".encode()).hexdigest()
        history.append(Commit(oid, message, frozenset(added), frozenset(deleted)))
        return history[-1]

    def new_repo(repo_id: str, private: bool) -> None:
        api.repos[repo_id] = private
        commit(repo_id, "initial commit", {".gitattributes": GITATTRIBUTES}, set())

    def missing(repo_id: str, method: str, url: str) -> HfHubHTTPError:
        return _error(RepositoryNotFoundError, 404, method, url, f"Repository Not Found: {repo_id}")

    def create_repo(repo_id, *, private=None, exist_ok=False, **_):
        if repo_id in api.repos and not exist_ok:
            raise _error(HfHubHTTPError, 409, "POST", f"{ENDPOINT}/api/repos/create", "You already created this model repo")
        if repo_id not in api.repos:
            new_repo(repo_id, bool(private))
        return RepoUrl(f"{ENDPOINT}/{repo_id}", endpoint=ENDPOINT)

    def repo_info(repo_id, **_):
        if repo_id not in api.repos:
            raise missing(repo_id, "GET", f"{ENDPOINT}/api/models/{repo_id}")
        return ModelInfo(id=repo_id, private=api.repos[repo_id], sha=api.commits[repo_id][-1].oid)

    def list_repo_files(repo_id, **_):
        if repo_id not in api.repos:
            raise missing(repo_id, "GET", f"{ENDPOINT}/api/models/{repo_id}/tree/main")
        return sorted(api.heads[repo_id])

    def upload_folder(*, repo_id, folder_path, path_in_repo=None, commit_message=None, commit_description=None,
                      repo_type=None, revision=None, create_pr=None, allow_patterns=None, ignore_patterns=None,
                      delete_patterns=None, run_as_future=False, **_):
        if repo_type not in constants.REPO_TYPES_WITH_KERNEL:
            raise ValueError(f"Invalid repo type, must be one of {constants.REPO_TYPES_WITH_KERNEL}")
        if create_pr or run_as_future or revision not in (None, constants.DEFAULT_REVISION):
            raise NotImplementedError("the Hub double commits to main only, synchronously")
        if repo_type not in (None, constants.REPO_TYPE_MODEL) or repo_id not in api.repos:
            raise missing(repo_id, "POST", f"{ENDPOINT}/api/models/{repo_id}/commit/main")
        path_in_repo = path_in_repo or ""
        ignore = ([ignore_patterns] if isinstance(ignore_patterns, str) else list(ignore_patterns or []))
        head = api.heads[repo_id]

        # _prepare_folder_deletions: the head's files, relative to path_in_repo, matched against delete_patterns
        deleted = set()
        if delete_patterns is not None:
            if path_in_repo and path_in_repo not in (".", "./"):
                prefix = path_in_repo.strip("/") + "/"
                relative = {path[len(prefix):]: path for path in head if path.startswith(prefix)}
            else:
                relative = {path: path for path in head}
            deleted = {relative[rel] for rel in filter_repo_objects(relative, allow_patterns=delete_patterns)
                       if relative[rel] != ".gitattributes"}

        # _prepare_upload_folder_additions: the folder's files, filtered, prefixed with path_in_repo
        folder = Path(folder_path).expanduser().resolve()
        if not folder.is_dir():
            raise ValueError(f"Provided path: '{folder_path}' is not a directory")
        local = {path.relative_to(folder).as_posix(): path for path in sorted(folder.glob("**/*")) if path.is_file()}
        prefix = f"{path_in_repo.strip('/')}/" if path_in_repo else ""
        additions = {prefix + rel: local[rel].read_bytes() for rel in filter_repo_objects(
            local, allow_patterns=allow_patterns, ignore_patterns=ignore + DEFAULT_IGNORE_PATTERNS)}

        deleted -= set(additions)  # a file being uploaded is overwritten, not deleted
        changed = {path: data for path, data in additions.items() if head.get(path) != data}
        message = commit_message or "Upload folder using huggingface_hub"
        if changed or deleted:
            oid = commit(repo_id, message, changed, deleted).oid
        else:  # nothing to commit: the real client skips the empty commit and names the current head
            oid = api.commits[repo_id][-1].oid
        return CommitInfo(commit_url=f"{ENDPOINT}/{repo_id}/commit/{oid}", commit_message=message,
                          commit_description=commit_description or "", oid=oid, _endpoint=ENDPOINT)

    if existing_private is not None:
        new_repo(repo_id, existing_private)
    api.create_repo.side_effect = create_repo
    api.repo_info.side_effect = repo_info
    api.list_repo_files.side_effect = list_repo_files
    api.upload_folder.side_effect = upload_folder
    return api


def dataset_at(api: mock.MagicMock, commit: str) -> None:
    """Every dataset of the double's Hub at ``commit``: what ``HfApi.dataset_info`` reports after a push."""
    api.dataset_info.side_effect = lambda repo_id, **_: DatasetInfo(id=repo_id, sha=commit)


class HubDouble(HuggingFaceHub):
    """The real resource class with its client swapped for the autospecced double (``api_double``)."""

    def api(self):
        return API_DOUBLE["api"]


API_DOUBLE: dict[str, mock.MagicMock] = {}
