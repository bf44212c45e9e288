"""Every external system behind one resource: tests swap the resource, never the code inside an asset."""

import os
import re
from pathlib import Path

import dagster as dg
from pydantic import Field

from titlegen_assets.versioning.artifacts import default_root, final_path

_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class ArtifactStore(dg.ConfigurableResource):
    """The artifact root: every asset writes ``<root>/<kind>/<version>/`` there (a shared volume in Docker). Where it
    is, is the deployment's choice only (TITLEGEN_HOME, else ~/.titlegen): not run config, so a run cannot write
    into another volume the containers mount."""

    def base(self) -> Path:
        return default_root()

    def path(self, kind: str, version: str) -> Path:
        return final_path(self.base(), kind, version)


class OllamaServer(dg.ConfigurableResource):
    """The Ollama server through the official ``ollama`` client; found at ``OLLAMA_HOST`` (default 127.0.0.1:11434),
    the deployment's choice only: not run config, so a run cannot send the certified model and the test articles to
    an address of its choosing."""

    timeout_s: float = Field(default=600.0, description="Client timeout; creating a model from safetensors takes minutes.")

    def base_url(self) -> str:
        """OLLAMA_HOST as Ollama reads it (envconfig.Host): no scheme means http on port 11434; an explicit
        http:// or https:// without a port means 80 or 443."""
        from urllib.parse import urlsplit

        host = os.environ.get("OLLAMA_HOST", "").strip() or "127.0.0.1:11434"
        scheme, has_scheme, rest = host.partition("://")
        if not has_scheme:
            scheme, rest = "http", host
        default_port = {"http": 80, "https": 443}.get(scheme, 11434) if has_scheme else 11434
        parts = urlsplit(f"{scheme}://{rest}")
        netloc = parts.netloc if parts.port else f"{parts.netloc}:{default_port}"
        return f"{scheme}://{netloc}{parts.path.rstrip('/')}"

    def client(self):
        import ollama

        return ollama.Client(host=self.base_url(), timeout=self.timeout_s)

    def version(self) -> str:
        """The server's version (``/api/version``); raises with the fix when nothing answers."""
        import httpx

        try:
            response = httpx.get(f"{self.base_url()}/api/version", timeout=5)
            response.raise_for_status()
            return response.json()["version"]
        except (httpx.HTTPError, KeyError, ValueError) as error:
            raise OllamaUnavailable(
                f"no Ollama server answers at OLLAMA_HOST={self.base_url()} ({type(error).__name__}: {error}); start "
                "one with `ollama serve` (or, on a single-user machine, `docker compose -f docker/compose.yaml -f "
                "docker/compose.local.yaml up -d ollama`, which publishes it on 127.0.0.1:11434), or point "
                "OLLAMA_HOST at it"
            ) from error


class OllamaUnavailable(RuntimeError):
    """No Ollama server answers; the message says where it looked and how to start one."""


class HuggingFaceHub(dg.ConfigurableResource):
    """The Hugging Face Hub through ``huggingface_hub.HfApi``. Nothing about it is run config: the token comes only
    from ``HF_TOKEN`` and the address only from ``HF_ENDPOINT`` (huggingface_hub reads it), both set by whoever
    deploys, so nobody who can launch a run can send the token to a server of their choice.

    What runs may do with the token is the deployment's too: publish only into ``namespaces()``, publicly only with
    ``TITLEGEN_ALLOW_PUBLIC=1``, and read with it only there and in ``TITLEGEN_HUB_READ_NAMESPACES``; any other read
    goes without a token, so a run config naming another team's private or gated repo gets what an anonymous user
    gets (nothing), while public datasets and models stay readable."""

    def _token(self) -> str | None:
        return os.environ.get("HF_TOKEN") or None

    def namespaces(self) -> list[str]:
        """The namespaces runs may publish to: TITLEGEN_HUB_NAMESPACES (comma-separated), else HF_ORG, else none."""
        return _names(os.environ.get("TITLEGEN_HUB_NAMESPACES", "")) or _names(os.environ.get("HF_ORG", ""))

    def read_token(self, repo_id: str) -> str | bool:
        """The token to read ``repo_id`` with: HF_TOKEN for a repo of ``namespaces()`` or TITLEGEN_HUB_READ_NAMESPACES;
        else False, which huggingface_hub and datasets take as "send no token" (None would fall back to HF_TOKEN or
        a stored login)."""
        readable = {*self.namespaces(), *_names(os.environ.get("TITLEGEN_HUB_READ_NAMESPACES", ""))}
        namespace, slash, _ = repo_id.partition("/")
        return (self._token() or False) if slash and namespace in readable else False

    def check_publish(self, repo_id: str, private: bool) -> None:
        """Refuse, before any request, a repo outside ``namespaces()`` and a public one without the deployment's
        TITLEGEN_ALLOW_PUBLIC=1; the message says which setting the launcher or the operator changes."""
        from huggingface_hub.errors import HFValidationError
        from huggingface_hub.utils import validate_repo_id

        try:
            validate_repo_id(repo_id)
        except HFValidationError as error:
            raise HubPublishRefused(f"hf_repo: {repo_id!r} is not a Hub repo id ({error}); set hf_repo's repo_id to "
                                    "`namespace/name`") from None
        allowed = self.namespaces()
        namespace, slash, name = repo_id.rpartition("/")
        where = (f"this deployment publishes only to {', '.join(allowed)} (TITLEGEN_HUB_NAMESPACES, else HF_ORG)"
                 if allowed else "this deployment names no namespace to publish to (TITLEGEN_HUB_NAMESPACES, HF_ORG)")
        if allowed and not slash:
            raise HubPublishRefused(f"hf_repo: {repo_id} names no namespace, so the Hub would put it under the token's "
                                    f"own account, and {where}; nothing was sent to the Hub: set repo_id to "
                                    f"{allowed[0]}/{name}")
        if slash and namespace not in allowed:
            raise HubPublishRefused(f"hf_repo: {repo_id} is in the namespace {namespace!r}, and {where}; nothing was "
                                    "sent to the Hub: publish under an allowed namespace (hf_repo's repo_id), or have "
                                    f"the operator add {namespace} to TITLEGEN_HUB_NAMESPACES in the deployment's "
                                    "environment")
        if not private and os.environ.get("TITLEGEN_ALLOW_PUBLIC", "").strip().lower() not in ("1", "true", "yes"):
            raise HubPublishRefused(f"hf_repo: private is false, which would publish {repo_id} for anyone to read, and "
                                    "this deployment does not allow public publishing; nothing was sent to the Hub: "
                                    "keep private: true, or have the operator set TITLEGEN_ALLOW_PUBLIC=1 in the "
                                    "deployment's environment")

    def api(self):
        from huggingface_hub import HfApi

        return HfApi(token=self._token())  # endpoint None: huggingface_hub's HF_ENDPOINT, else huggingface.co

    def endpoint_url(self) -> str:
        """The Hub address requests go to: HF_ENDPOINT as huggingface_hub read it, else huggingface.co."""
        from huggingface_hub import constants

        return constants.ENDPOINT

    def dataset_commit(self, dataset_id: str, revision: str) -> str:
        """The commit sha a dataset branch or tag points at now (a sha is returned as is, without a request); asked
        with the token only where ``read_token`` allows it."""
        if _COMMIT.match(revision):
            return revision
        return self.api().dataset_info(dataset_id, revision=revision, token=self.read_token(dataset_id)).sha

    def configured(self) -> bool:
        return bool(self._token())

    def publish(self, folder: Path, repo_id: str, private: bool, commit_message: str) -> dict:
        """Create the model repo if needed, check that its visibility is the one asked for, then upload the folder
        as one commit that also deletes every file of the repo the folder does not hold, so the head is exactly the
        folder (plus the ``.gitattributes`` huggingface_hub never deletes); errors say what to fix.
        ``create_repo(exist_ok=True)`` leaves an existing repo's visibility as it is, so a "private" publish into a
        public repo would otherwise go out publicly."""
        api = self.api()
        try:
            api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
            check_visibility(repo_id, private, api.repo_info(repo_id, repo_type="model").private)
            # delete_patterns="*": huggingface_hub deletes, in the commit that uploads, every remote file matching
            # it (``*`` crosses "/") except .gitattributes and the files being uploaded; the deletions ride the
            # first commit when a folder of over 250 files is split (ours has a dozen)
            commit = api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(folder),
                                       commit_message=commit_message, delete_patterns="*")
        except RepoVisibilityMismatch:
            raise
        except Exception as error:
            token = self._token()
            # the cause stays attached unless its own text carries the token (the message hides it either way)
            cause = None if token and _chain_mentions(error, token) else error
            raise HubPublishError(explain_hub_error(error, repo_id, token, self.endpoint_url())) from cause
        return {"commit_url": commit.commit_url, "commit_sha": commit.oid, "repo_url": str(commit.repo_url)}


class HubPublishError(RuntimeError):
    """Publishing failed; the message names the cause and the fix, and never contains the token."""


class HubPublishRefused(HubPublishError):
    """The run asked to publish where, or as, the deployment does not allow; nothing was sent to the Hub."""


def _names(value: str) -> list[str]:
    """A comma-separated list of Hub namespaces, blanks dropped."""
    return [name.strip() for name in value.split(",") if name.strip()]


class RepoVisibilityMismatch(HubPublishError):
    """The Hub repo exists with another visibility than ``private`` asks for; nothing was uploaded."""


def check_visibility(repo_id: str, private: bool, repo_private: bool | None) -> None:
    """Refuse to publish into a repo whose visibility (``ModelInfo.private``) is not the one asked for."""
    if repo_private is private:
        return
    now = {True: "private", False: "public", None: "of unknown visibility"}[repo_private]
    fix = (f"make it private in the repo's Settings on the Hub (or `HfApi().update_repo_settings({repo_id!r}, "
           "private=True)`), or set hf_repo's `private: false` to publish it publicly on purpose (where the deployment "
           "allows it: TITLEGEN_ALLOW_PUBLIC=1)") if private else (
           f"make it public in the repo's Settings on the Hub (or `HfApi().update_repo_settings({repo_id!r}, "
           "private=False)`), or set hf_repo's `private: true` to publish into it privately")
    raise RepoVisibilityMismatch(f"hf_repo: {repo_id} exists on the Hub and is {now}, but hf_repo's private is "
                                 f"{str(private).lower()}; nothing was uploaded: {fix}")


def explain_hub_error(error: Exception, repo_id: str, token: str | None, endpoint: str) -> str:
    """Turn a huggingface_hub/requests failure into what happened and what to do."""
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status == 401:
        advice = "the token was refused: set HF_TOKEN to a valid token (huggingface.co/settings/tokens)"
    elif status == 403:
        advice = (f"the token may not write to {repo_id}: give it the 'write' scope, or membership with write "
                  "access to the organisation named in HF_ORG")
    elif status == 404:
        advice = f"{repo_id} or its organisation was not found: check HF_ORG / HF_REPO (or publish.repo_id)"
    elif type(error).__name__ == "OfflineModeIsEnabled":
        advice = "HF_HUB_OFFLINE is set, so nothing may reach the Hub: unset it to publish"
    elif status is None and _is_network_error(error):
        advice = (f"the Hub at {endpoint} cannot be reached: check the network or proxy, HF_ENDPOINT (for a mirror "
                  "or a private Hub), and that HF_HUB_OFFLINE is not set")
    else:
        advice = "retry, or unset HF_TOKEN to write a local folder target instead"
    kind = type(error).__name__ + (f", HTTP {status}" if status else "")
    message = f"hf_repo: publishing to {repo_id} at {endpoint} failed ({kind}: {str(error)[:300]}): {advice}"
    return message.replace(token, "***") if token else message


def _chain(error: BaseException | None):
    """The error and every error it was raised from or during (``__cause__``, else ``__context__``)."""
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def _is_network_error(error: BaseException) -> bool:
    """A connection, DNS or timeout failure anywhere in the exception chain (httpx or requests)."""
    names = ("ConnectError", "ConnectionError", "ConnectTimeout", "ReadTimeout", "TimeoutException", "NetworkError")
    return any(type(link).__name__ in names for link in _chain(error))


def _chain_mentions(error: BaseException, text: str) -> bool:
    """Whether ``text`` (the token) appears in any error of the chain, in its message or its arguments."""
    return any(text in str(link) or any(text in str(arg) for arg in link.args) for link in _chain(error))


def production_resources() -> dict:
    """The resources every deployment binds; tests swap one of them, never the code inside an asset."""
    from titlegen_assets.defs.io_manager import ManifestIOManager

    return {
        "artifacts": ArtifactStore(),
        # step outputs on the artifact root, so a later run in another process, container or pod can load them
        "io_manager": ManifestIOManager(artifacts=ArtifactStore()),
        "ollama": OllamaServer(),
        "hub": HuggingFaceHub(),  # reads HF_TOKEN / HF_ENDPOINT when it is used, so no secret lands in a snapshot
    }


def step_executor():
    """TITLEGEN_EXECUTOR=k8s runs each step in its own pod (Helm deployments), so GPU steps get the GPU request.

    The executor is configured here and takes no run config: its ``step_k8s_config``, ``volumes``, ``env_secrets``
    or ``service_account_name`` would shape step pods past the run launcher's allowlist, so a step pod is the run
    launcher's config plus the op's own ``dagster-k8s/config`` tag (code), and a run config naming any is refused.
    """
    if os.environ.get("TITLEGEN_EXECUTOR") == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured(lambda _: {}, name="k8s", config_schema={})
    return None
