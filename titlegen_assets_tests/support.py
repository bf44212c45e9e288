"""Helpers the test modules share: the demo run config and materializations through the production Definitions."""

from importlib import resources as pkg_resources

import dagster as dg
import yaml

from titlegen_assets.definitions import defs


def shipped_config(name: str) -> dict:
    """One of the run configs the package ships (``configs/<name>``), as a dict."""
    return yaml.safe_load((pkg_resources.files("titlegen_assets") / "configs" / name).read_text())


def demo_config(max_steps: int = 4, **eval_overrides) -> dict:
    """The shipped smoke config (smoke model, thresholds 0), shortened for tests; ``eval_overrides`` change the eval
    gate's thresholds. The real demo (configs/demo.yaml) trains Gemma 3 270M: minutes, not seconds."""
    config = shipped_config("smoke.yaml")
    config["ops"]["lora_adapter"]["config"]["max_steps"] = max_steps
    config["ops"]["eval_gate"]["config"].update(eval_overrides)
    return config


def config_for(selection: list[str], config: dict, checks: bool = True) -> dict:
    """The part of a run config that a selection takes (Dagster refuses config for ops outside the selection)."""
    ops = set(selection) | ({"eval_gate"} if checks and "merged_hf_model" in selection else set())
    return {"ops": {name: value for name, value in config["ops"].items() if name in ops}}


def materialize(selection: list[str], run_config: dict | None = None, instance=None, checks: bool = True,
                **resource_overrides):
    """Materialize ``selection`` (with its checks unless ``checks`` is false) using the production resources, IO
    manager included; tests point them at a temporary TITLEGEN_HOME and swap only the external systems."""
    assets = dg.AssetSelection.assets(*selection)
    return dg.materialize(
        [*defs.assets, *defs.asset_checks], selection=assets if checks else assets.without_checks(),
        run_config=config_for(selection, run_config, checks) if run_config else None,
        resources={**defs.resources, **resource_overrides}, instance=instance, raise_on_error=False,
    )


def step_error(result, step: str) -> str:
    """The error text of a failed step in an in-process run."""
    return next(e for e in result.get_step_failure_events() if e.step_key == step).event_specific_data.error.to_string()


def write_gguf(path, architecture: str = "gemma3", file_type=None):
    """A minimal GGUF file (one tensor), written with the ``gguf`` package; ``file_type`` sets ``general.file_type``."""
    import numpy as np
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), architecture)
    writer.add_block_count(1)
    if file_type is not None:
        writer.add_file_type(int(file_type))
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def trl_cpu_training_blocker() -> str | None:
    """Why TRL's SFTTrainer cannot train on a CPU with the installed TRL, or None where it can.

    TRL 1.15.0 (constraints/gpu.txt) computes every SFT loss, in training and evaluation, through its fused LM head
    (``trl/trainer/utils.py`` ``add_fused_lm_head`` -> ``trl/kernels/chunked_logprob.py`` ``ChunkedLogProbFunction``),
    which launches a Triton kernel on every device: on a CPU tensor Triton raises ``RuntimeError: 0 active drivers``.
    No public SFTConfig option avoids it (``compute_loss_func`` and label smoothing still call the fused head for the
    metrics). TRL 1.16.0 added a PyTorch fold off CUDA/XPU (``_use_triton(device)``), so CPU training needs >= 1.16.
    """
    from importlib.metadata import version

    from packaging.version import Version

    installed = version("trl")
    if Version(installed) < Version("1.16"):
        return (f"TRL {installed} cannot train on a CPU (its fused LM head runs a Triton kernel: '0 active drivers'); "
                "the GPU pins train on CUDA, the CPU pins (TRL 1.16) train here")
    return None


def ollama_at(monkeypatch, server):
    """The production Ollama resource pointed at ``server`` the way a deployment points it: OLLAMA_HOST (the address
    is not run config)."""
    from titlegen_assets.defs.resources import OllamaServer

    monkeypatch.setenv("OLLAMA_HOST", server.host)
    return OllamaServer()
