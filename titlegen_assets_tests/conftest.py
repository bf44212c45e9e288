"""Shared fixtures: an artifact root (TITLEGEN_HOME) per test, the definitions' resources pointed at it."""

import os
from pathlib import Path

import pytest

# Tests never reach a hub: anything that tries fails at once instead of retrying for half a minute.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def absl_logs_to_the_process_stderr():
    """rouge_score logs through absl, whose handler keeps the ``sys.stderr`` of the moment it is made (in a test, a
    pytest capture file) and closes that stream when ``logging.config.dictConfig`` shuts handlers down, which Dagster
    1.13 does at the start of every run on an instance with settings (``instance_for_test``, a DAGSTER_HOME): the next
    test that swapped ``sys.stderr`` (capsys) then closed pytest's own capture, and the session died with "lost
    sys.stderr". ``sys.__stderr__`` is never closed by absl and still lands in pytest's file-descriptor capture."""
    import sys

    from absl import logging as absl_logging

    absl_logging.get_absl_handler().python_handler.stream = sys.__stderr__


@pytest.fixture(scope="session")
def smoke_base_model(tmp_path_factory) -> str:
    """The smoke Gemma 3n base model, built once per test session."""
    from titlegen_assets.training.smoke import build

    return str(build(tmp_path_factory.mktemp("base") / "smoke-gemma3n-tiny"))


@pytest.fixture(scope="session")
def smoke_gemma3n_multimodal(tmp_path_factory) -> str:
    """The smoke Gemma 3n shaped like the real multimodal checkpoint, built offline: a ``Gemma3nConfig``
    (``Gemma3nForConditionalGeneration``, vision and audio configs at their defaults) around the smoke text config,
    the smoke decoder's weights, and a real ``Gemma3nProcessor`` around the smoke tokenizer."""
    import torch
    from transformers import Gemma3nConfig, Gemma3nForCausalLM, GenerationConfig

    from titlegen_assets.prompts import stop_token_ids
    from titlegen_assets.training import smoke

    target = tmp_path_factory.mktemp("base") / "smoke-gemma3n-multimodal"
    processor = smoke.multimodal_processor()
    tokenizer = processor.tokenizer
    torch.manual_seed(0)
    text_config = smoke.text_config(tokenizer)
    model = Gemma3nForCausalLM(text_config)
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id,
                                               eos_token_id=stop_token_ids(tokenizer))
    model.save_pretrained(target)
    config = Gemma3nConfig(text_config=text_config.to_dict())
    config.architectures = ["Gemma3nForConditionalGeneration"]
    config.save_pretrained(target)
    processor.save_pretrained(target)
    return str(target)


@pytest.fixture(scope="session")
def sample_splits(tmp_path_factory) -> str:
    """Cleaned splits of the bundled sample (short content budget, as the demo uses), saved once per session."""
    from titlegen_assets.data.cleaning import CleaningRules, clean_rows
    from titlegen_assets.data.sources import load_file, sample_path
    from titlegen_assets.data.splitting import save_splits, split_rows

    rows = clean_rows(load_file(sample_path(), "content", "title").rows, CleaningRules(content_max_chars=300)).kept
    path = tmp_path_factory.mktemp("splits") / "splits"
    save_splits(split_rows(rows, 42, 0.1, 0.1), str(path))
    return str(path)


@pytest.fixture
def artifact_root(tmp_path, monkeypatch) -> Path:
    """A fresh TITLEGEN_HOME: the production resources (artifact store and IO manager) write there."""
    root = tmp_path / "artifacts"
    root.mkdir()
    monkeypatch.setenv("TITLEGEN_HOME", str(root))
    return root


@pytest.fixture
def resources(artifact_root) -> dict:
    """The production Definitions' resources, pointed at this test's TITLEGEN_HOME."""
    from titlegen_assets.definitions import defs

    return dict(defs.resources)


@pytest.fixture(scope="session")
def llama_cpp() -> Path:
    """llama.cpp's converter, quantizer, llama-simple and llama-server: built once by docker/build_llama_cpp.sh,
    through the demo's own build step (12–15 minutes on 2 cores), into LLAMA_CPP_DIR or
    ~/.cache/titlegen/llama.cpp, and reused after that."""
    from titlegen_assets.export.llama_cpp_build import BuildFailed, ensure_built

    try:
        return ensure_built()
    except BuildFailed as error:
        pytest.fail(f"GGUF export cannot be verified: {error}")


@pytest.fixture(scope="session")
def real_gemma3_270m(request) -> tuple[Path, Path]:
    """(folder, artifact root) of the packaged pretrained Gemma 3 270M, de-quantized once per machine.

    The artifact root is pytest's own cache folder (ignored by git), so later test sessions reuse the folder
    instead of spending a minute de-quantizing again.
    """
    from titlegen_assets.training.base_model import PACKAGED_GEMMA3_270M, resolve_base_model

    root = Path(request.config.cache.mkdir("titlegen-real-model"))
    return Path(resolve_base_model(PACKAGED_GEMMA3_270M, root)), root
