"""PEFT's trainable-token rows written into the frozen embedding in place, not into a fresh copy of it on each read.

PEFT 0.21's ``TrainableTokensLayer.get_merged_weights`` returns ``weight.index_copy(0, rows, trained)``: a new
262k × 640 matrix (670 MB in fp32 for Gemma 3 270M) on every read of the embedding's or the tied output head's
``weight`` — four a forward under TRL's fused head, about a sixth of a CPU training step (benchmarks/RESULTS.md).
Writing the trained rows into the frozen matrix gives the same values, and passing back only those rows of the
gradient gives the same gradients; the original rows are written back when training ends, so the base model is
left as it was loaded. Where PEFT no longer has the names this relies on, PEFT's own path is kept and the log says so.
Imported by the TRL backend only (it imports torch).
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable

import torch

#: PEFT's method that builds the matrix with the trained rows (``peft/tuners/trainable_tokens/layer.py``, 0.21),
#: called for the layer's forward and for every read of its wrapper's ``weight``; and the layer attributes it reads.
MERGED_WEIGHTS = "get_merged_weights"
LAYER_ATTRIBUTES = ("base_layer", "token_indices", "trainable_tokens_delta", "trainable_tokens_original")


def write_in_place(trainer, log: Callable[[str], None] = logging.getLogger(__name__).warning) -> int:
    """Give each trainable-tokens layer of ``trainer.model`` the in-place merge, and restore the original rows when
    training ends; returns how many layers took it (0 where there are none, or PEFT's names are missing)."""
    from peft.tuners import trainable_tokens

    layer_class = getattr(trainable_tokens, "TrainableTokensLayer", None)
    layers = [m for m in trainer.model.modules() if layer_class and isinstance(m, layer_class)]
    missing = [name for name in (MERGED_WEIGHTS, *LAYER_ATTRIBUTES) if layers and not hasattr(layers[0], name)]
    if layer_class is None or missing:
        log(f"PEFT {peft_version()} has no {'TrainableTokensLayer' if layer_class is None else ', '.join(missing)}: "
            "trained token rows, if any, use PEFT's own merge, a copy of the whole embedding on each read")
        return 0
    if not layers:
        return 0
    for layer in layers:
        setattr(layer, MERGED_WEIGHTS, types.MethodType(merged_in_place, layer))
    trainer.add_callback(restore_callback(layers))
    return len(layers)


def merged_in_place(layer, active_adapters):
    """``get_merged_weights`` without the copy: the frozen matrix itself, holding the active adapters' rows."""
    weight = layer.base_layer.weight
    for name in active_adapters:
        index = row_index(layer, name, weight.device)
        weight = TrainedRows.apply(weight, layer.trainable_tokens_delta[name].to(weight), index)
    return weight


def row_index(layer, adapter: str, device) -> torch.Tensor:
    return torch.tensor(layer.token_indices[adapter], device=device)


def restore_original_rows(layers) -> None:
    """Write each adapter's original rows back into its frozen matrix (tied layers share theirs: done twice, same)."""
    with torch.no_grad():
        for layer in layers:
            weight = layer.base_layer.weight
            for name, original in layer.trainable_tokens_original.items():
                weight.data.index_copy_(0, row_index(layer, name, weight.device), original.to(weight))


def restore_callback(layers):
    from transformers import TrainerCallback

    class RestoreOriginalRows(TrainerCallback):
        def on_train_end(self, args, state, control, **kwargs):
            restore_original_rows(layers)

    return RestoreOriginalRows()


class TrainedRows(torch.autograd.Function):
    """Forward: the frozen matrix with ``rows`` written in at ``index`` (through ``.data``: rewriting the same values
    within a step must not bump the version autograd checks). Backward: those rows of the gradient, all that
    ``index_copy`` passes to its source."""

    @staticmethod
    def forward(ctx, weight, rows, index):
        weight.data.index_copy_(0, index, rows.detach())
        ctx.save_for_backward(index)
        return weight.view_as(weight)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        return None, grad.index_select(0, index), None


def peft_version() -> str:
    from importlib.metadata import version

    return version("peft")
