"""TRL + PEFT on CPU or Apple MPS: SFTTrainer with a LoraConfig on the language model's linear layers.

Loss is on the title only: TRL renders the conversational prompt/completion with the prompts module's chat
template and masks every prompt token (``completion_only_loss``). A pretrained (not instruction-tuned) base has
never seen its turn tokens, so their embedding rows are trained too (``train_tokens``; Gemma ties them to the output
head, which is how the model learns to end its turn), written into the frozen embedding in place, with gradients for
those rows alone (``trained_rows``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from titlegen_assets.training import trl_private

#: TRL's private choice of the compact (completion-only) fused-head path, ``_use_triton(device) -> bool`` in
#: ``trl/trainer/utils.py`` (imported there from ``trl/kernels/chunked_logprob.py``) since TRL 1.16.0; absent in 1.15.0.
PRIVATE_DEVICE_CHOICE = "_use_triton"

#: Attention and MLP projections of the language model; vision and audio towers of the multimodal checkpoint are left out.
LANGUAGE_LINEAR = r"^(?!.*(?:vision|audio)).*\.(?:q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$"


def sft_trainer_class(log: Callable[[str], None] = logging.getLogger(__name__).warning):
    """SFTTrainer that, off CUDA/XPU too, sends only the positions that carry loss through the output head.

    TRL 1.16's fused LM head scores only the completion on Triton devices, and every position elsewhere (it keeps
    tile shapes fixed for compiled backends such as Neuron). On a CPU nothing is compiled, and the 262k-row head over
    the prompt is most of a training step, so the same completion-only path is taken there. That choice is TRL's
    private ``trl.trainer.utils._use_triton`` (TRL >= 1.16): where it is missing (TRL 1.15, the GPU pins), TRL's own
    SFTTrainer is used as it is, and the log says so.
    """
    from trl import SFTTrainer

    if not trl_private.has(PRIVATE_DEVICE_CHOICE, log, "training with TRL's own SFTTrainer, whose output head "
                           "scores every position off CUDA"):
        return SFTTrainer

    class CompletionHeadSFTTrainer(SFTTrainer):
        def compute_loss(self, *args, **kwargs):
            with trl_private.swapped(PRIVATE_DEVICE_CHOICE, completion_head_off_cuda):
                return super().compute_loss(*args, **kwargs)

    return CompletionHeadSFTTrainer


def completion_head_off_cuda(on_device: Callable) -> Callable:
    """TRL's ``_use_triton``, answering yes on a CPU or MPS too: the completion-only head path there."""
    return lambda device: device.type in ("cpu", "mps") or on_device(device)


def token_ids(tokenizer, tokens: list[str]) -> list[int]:
    """Vocabulary ids of ``tokens``; a token the tokenizer does not know is an error, not a silent ``<unk>``."""
    ids = tokenizer.convert_tokens_to_ids(tokens)
    unknown = [t for t, i in zip(tokens, ids) if i is None or i == tokenizer.unk_token_id]
    if unknown:
        raise ValueError(f"train_tokens {unknown} are not in the base model's vocabulary; list single tokens such as "
                         "<start_of_turn> and <end_of_turn>")
    return ids


def give_trained_head_its_bias(model) -> None:
    """PEFT 0.21's trainable-tokens wrapper forwards the output head's ``weight`` (with the trained rows) but not its
    ``bias``, which TRL's fused LM head reads (open upstream: huggingface/peft#3649): hand it the wrapped head's own."""
    from peft.utils.other import TrainableTokensWrapper

    head = model.get_output_embeddings()
    if isinstance(head, TrainableTokensWrapper):
        head.bias = head.original_module.bias


def build_trainer(config, base_model: str, train, validation, args_for, callbacks, log: Callable[[str], None] = logging.getLogger(__name__).warning):
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from titlegen_assets.prompts import with_chat_template
    from titlegen_assets.training.sft import conversational

    args = args_for(completion_only_loss=True)
    tokenizer = with_chat_template(AutoTokenizer.from_pretrained(base_model))
    # bf16 trains bf16 weights; fp16 keeps fp32 weights under fp16 autocast (Trainer refuses fp16 master weights)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.bfloat16 if args.bf16 else torch.float32)
    tokens = {"trainable_token_indices": {"embed_tokens": token_ids(tokenizer, config.train_tokens)}} if config.train_tokens else {}
    lora = LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=LANGUAGE_LINEAR, bias="none", task_type="CAUSAL_LM", **tokens,
    )
    trainer = sft_trainer_class(log)(
        model=model, args=args, processing_class=tokenizer, peft_config=lora, callbacks=callbacks,
        train_dataset=conversational(train), eval_dataset=conversational(validation) if validation is not None else None,
    )
    give_trained_head_its_bias(trainer.model)
    if config.train_tokens:
        from titlegen_assets.training.trained_rows import write_in_place

        write_in_place(trainer, log)
    return trainer, tokenizer
