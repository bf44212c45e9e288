"""PEFT's trainable-token rows written into the frozen embedding in place, not into a fresh copy of it on each read.

PEFT 0.21's ``TrainableTokensLayer.get_merged_weights`` returns ``weight.index_copy(0, rows, trained)``: a new
262k × 640 matrix (670 MB in fp32 for Gemma 3 270M) on every read of the embedding's or the tied output head's
``weight`` — four a forward under TRL's fused head, about a sixth of a CPU training step (benchmarks/RESULTS.md).
Writing the trained rows into the frozen matrix gives the same values, and passing back only those rows of the
gradient gives the same gradients. The embedding's lookup sends its gradient back sparse (``nn.Embedding.sparse``):
dense, it is another 262k × 640 matrix of zeros each step, filled on fresh pages, for the few rows that are kept.
TRL's fused output head would also build the head's whole gradient (another 262k × 640 of zeros, and a product over
the whole vocabulary) for the two rows it trains: ``HeadRows`` gives those rows their gradient from the head's own
log-probabilities instead, and the head's matrix none. The original rows and the embedding's own ``sparse`` are put
back when training ends, so the base model is left as it was loaded. Where PEFT or TRL no longer has the names this
relies on, their own path is kept and the log says so.
Imported by the TRL backend only (it imports torch).
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable

import torch

from titlegen_assets.training import trl_private
from titlegen_assets.training.environment import package_version

#: PEFT's method that builds the matrix with the trained rows (``peft/tuners/trainable_tokens/layer.py``, 0.21),
#: called for the layer's forward and for every read of its wrapper's ``weight``; and the layer attributes it reads.
MERGED_WEIGHTS = "get_merged_weights"
LAYER_ATTRIBUTES = ("base_layer", "token_indices", "trainable_tokens_delta", "trainable_tokens_original")
#: TRL's private fused-head function (``trl/trainer/utils.py``, from ``trl/kernels/chunked_logprob.py``, TRL >= 1.16),
#: looked up in that module's globals on every fused forward: ``apply(hidden, weight, bias, targets, temperature,
#: chunk_size, final_logit_softcapping, logit_scale, outputs)`` -> (log_probs, entropy, ...).
FUSED_HEAD = "_ChunkedLogProbFunction"
#: The attribute a merged weight carries: the trained rows and their indices in it.
ROWS = "_titlegen_trained_rows"


def write_in_place(trainer, log: Callable[[str], None] = logging.getLogger(__name__).warning) -> int:
    """Give each trainable-tokens layer of ``trainer.model`` the in-place merge, and restore the original rows when
    training ends; returns how many layers took it (0 where there are none, or PEFT's names are missing)."""
    from peft.tuners import trainable_tokens

    layer_class = getattr(trainable_tokens, "TrainableTokensLayer", None)
    layers = [m for m in trainer.model.modules() if layer_class and isinstance(m, layer_class)]
    missing = [name for name in (MERGED_WEIGHTS, *LAYER_ATTRIBUTES) if layers and not hasattr(layers[0], name)]
    if layer_class is None or missing:
        names = "TrainableTokensLayer" if layer_class is None else ", ".join(missing)
        log(f"PEFT {package_version('peft')} has no {names}: "
            "trained token rows, if any, use PEFT's own merge, a copy of the whole embedding on each read")
        return 0
    if not layers:
        return 0
    for layer in layers:
        setattr(layer, MERGED_WEIGHTS, types.MethodType(merged_in_place, layer))
    dense = [layer.base_layer for layer in layers  # a frozen lookup: no optimizer ever sees its sparse gradient
             if isinstance(layer.base_layer, torch.nn.Embedding) and not layer.base_layer.sparse
             and not layer.base_layer.weight.requires_grad]
    for embedding in dense:
        embedding.sparse = True
    trainer.add_callback(restore_callback(layers, dense))
    head_rows_in_fused_head(trainer, log)
    return len(layers)


def head_rows_in_fused_head(trainer, log: Callable[[str], None]) -> None:
    """While ``trainer`` computes a loss, TRL's fused head is ``HeadRows``; the backward runs on the graph made then."""
    if not trl_private.has(FUSED_HEAD, log, "the trained rows of a tied output head get their gradient from TRL's "
                           "own, a 262k-row gradient of the whole head on each step"):
        return
    compute_loss = trainer.compute_loss

    def compute_loss_with_head_rows(*args, **kwargs):
        with trl_private.swapped(FUSED_HEAD, HeadRows):
            return compute_loss(*args, **kwargs)

    trainer.compute_loss = compute_loss_with_head_rows


def merged_in_place(layer, active_adapters):
    """``get_merged_weights`` without the copy: the frozen matrix itself, holding the active adapters' rows."""
    weight, trained = layer.base_layer.weight, []
    for name in active_adapters:
        index, rows = row_index(layer, name, weight.device), layer.trainable_tokens_delta[name].to(weight)
        weight = TrainedRows.apply(weight, rows, index)
        trained.append((rows, index))
    setattr(weight, ROWS, trained)
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


def restore_callback(layers, sparse_embeddings):
    from transformers import TrainerCallback

    class RestoreOriginalRows(TrainerCallback):
        def on_train_end(self, args, state, control, **kwargs):
            restore_original_rows(layers)
            for embedding in sparse_embeddings:
                embedding.sparse = False

    return RestoreOriginalRows()


class TrainedRows(torch.autograd.Function):
    """Forward: the frozen matrix with ``rows`` written in at ``index`` (through ``.data``: rewriting the same values
    within a step must not bump the version autograd checks). Backward: those rows of the gradient, all that
    ``index_copy`` passes to its source (from a sparse gradient too, which the embedding's lookup sends)."""

    @staticmethod
    def forward(ctx, weight, rows, index):
        weight.data.index_copy_(0, index, rows.detach())
        ctx.save_for_backward(index)
        return weight.view_as(weight)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        rows = grad.index_select(0, index)
        return None, rows.to_dense() if rows.is_sparse else rows, None


class HeadRows:
    """TRL's fused head on the frozen matrix, plus a term worth zero whose gradient is the trained rows' own.

    For a token with target ``y``, d log p(y) / d row_k = (1[y = k] - p_k) * dz_k/dy_k * logit_scale * hidden, where
    y_k = hidden . row_k is the row's raw logit and z_k the kernel's transform of it (softcap, temperature). The
    kernel returns log p(y); with z_y from the target's row, log Z = z_y - log p(y) gives p_k = exp(z_k - log Z). Only
    the log-probabilities get the term: the SFT loss is theirs (TRL's entropy output is logged, not trained on).
    """

    def __init__(self, fused):
        self.fused = fused

    def apply(self, hidden, weight, bias, targets, temperature, chunk_size, final_logit_softcapping=None,
              logit_scale=1.0, *rest):
        trained = getattr(weight, ROWS, None)
        if not trained or bias is not None or not torch.is_grad_enabled():
            return self.fused.apply(hidden, weight, bias, targets, temperature, chunk_size, final_logit_softcapping,
                                    logit_scale, *rest)
        frozen = weight.detach()
        per_token = self.fused.apply(hidden, frozen, bias, targets, temperature, chunk_size,
                                     final_logit_softcapping, logit_scale, *rest)
        rows = torch.cat([r for r, _ in trained])
        index = torch.cat([i for _, i in trained])
        seen = hidden.detach()
        with torch.no_grad():
            z_target, _ = transformed(torch.einsum("nh,nh->n", seen, frozen[targets]) * logit_scale,
                                      final_logit_softcapping, temperature)
            log_z = z_target - per_token[0].detach()
            z_rows, slope = transformed(seen @ frozen[index].T * logit_scale, final_logit_softcapping, temperature)
            weight_of_row = ((targets[:, None] == index).to(seen.dtype) - torch.exp(z_rows - log_z[:, None]))
            weight_of_row = weight_of_row * slope * logit_scale
        term = ((seen @ rows.T) * weight_of_row).sum(-1)
        return (per_token[0] + (term - term.detach()), *per_token[1:])


def transformed(logits, softcap, temperature):
    """The fused head's transform of scaled logits (``trl/kernels/chunked_logprob.py``) and its derivative."""
    if softcap:
        squashed = torch.tanh(logits / softcap)
        return softcap * squashed / temperature, (1 - squashed * squashed) / temperature
    return logits / temperature, torch.full_like(logits, 1 / temperature)
