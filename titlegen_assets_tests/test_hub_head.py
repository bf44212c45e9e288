"""The Hub repo's head after hf_repo publishes is exactly the certified set: one commit adds the new version's files
and deletes every file it does not ship, and the card names each shipped file with its sha256."""

import hashlib
import re

import dagster as dg
from huggingface_hub import ModelCard

from titlegen_assets_tests.doubles.hub_double import API_DOUBLE, GITATTRIBUTES, HubDouble, hf_api_double
from titlegen_assets_tests.support import demo_config, materialize

FAKE_TOKEN = "hf_FAKEtokenTITLEGENtest0123456789secret"
THROUGH_PUBLISH = ["raw_dataset", "cleaned_splits", "lora_adapter", "merged_hf_model", "hf_repo"]


def write_folder(folder, files: dict[str, bytes]):
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def test_a_new_version_deletes_in_its_own_commit_every_file_of_the_repo_it_does_not_ship(tmp_path, monkeypatch):
    """v1 ships a Q4_K_M GGUF, v2 only a Q5_K_M one: after v2 the head must not serve v1's Q4_K_M."""
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    API_DOUBLE["api"] = api = hf_api_double("o/x")
    v1 = {"README.md": b"v1 card", "model.safetensors": b"v1 weights", "x-Q4_K_M.gguf": b"v1 q4"}
    v2 = {"README.md": b"v2 card", "model.safetensors": b"v2 weights", "x-Q5_K_M.gguf": b"v2 q5"}
    first = HubDouble().publish(write_folder(tmp_path / "v1", v1), "o/x", True, "v1")
    assert api.heads["o/x"] == {".gitattributes": GITATTRIBUTES, **v1}
    second = HubDouble().publish(write_folder(tmp_path / "v2", v2), "o/x", True, "v2")

    assert api.heads["o/x"] == {".gitattributes": GITATTRIBUTES, **v2}, "the head keeps files v2 does not ship"
    assert api.upload_folder.call_count == 2
    _initial, one, two = api.commits["o/x"]
    assert (first["commit_sha"], second["commit_sha"]) == (one.oid, two.oid)
    assert two.added == set(v2) and two.deleted == {"x-Q4_K_M.gguf"}, "additions and deletions are one commit"


def test_the_published_card_lists_every_shipped_file_with_its_sha256(artifact_root, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("HF_ORG", "titlegen-test")  # the deployment's organisation: where runs may publish
    config = demo_config()
    config["ops"]["hf_repo"] = {"config": {"repo_id": "titlegen-test/headlines"}}
    API_DOUBLE["api"] = api = hf_api_double("titlegen-test/headlines")
    assert materialize(THROUGH_PUBLISH, config, dg.DagsterInstance.ephemeral(), hub=HubDouble()).success

    head = api.heads["titlegen-test/headlines"]
    shipped = {path: hashlib.sha256(data).hexdigest() for path, data in head.items()
               if path not in ("README.md", ".gitattributes")}
    assert "model.safetensors" in shipped and "config.json" in shipped
    card = ModelCard(head["README.md"].decode())
    rows = dict(re.findall(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|$", card.text, flags=re.MULTILINE))
    assert rows == shipped
    assert card.data.titlegen_files == shipped
