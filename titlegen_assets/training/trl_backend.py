"""TRL + PEFT on CPU or Apple MPS: SFTTrainer with a LoraConfig on the language model's linear layers.

Loss is on the title only: TRL renders the conversational prompt/completion with the prompts module's chat
template and masks every prompt token (``completion_only_loss``).
"""

from __future__ import annotations

#: Attention and MLP projections of the language model; vision and audio towers of the multimodal checkpoint are left out.
LANGUAGE_LINEAR = r"^(?!.*(?:vision|audio)).*\.(?:q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$"


def build_trainer(config, base_model: str, train, validation, args_for, callbacks):
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    from titlegen_assets.prompts import with_chat_template
    from titlegen_assets.training.sft import conversational

    args = args_for(completion_only_loss=True)
    tokenizer = with_chat_template(AutoTokenizer.from_pretrained(base_model))
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.bfloat16 if args.bf16 else torch.float32)
    lora = LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=LANGUAGE_LINEAR, bias="none", task_type="CAUSAL_LM",
    )
    trainer = SFTTrainer(
        model=model, args=args, processing_class=tokenizer, peft_config=lora, callbacks=callbacks,
        train_dataset=conversational(train), eval_dataset=conversational(validation) if validation is not None else None,
    )
    return trainer, tokenizer
