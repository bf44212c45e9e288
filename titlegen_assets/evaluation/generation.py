"""Greedy title generation with a Hugging Face model, prompted exactly as in training (the prompts module)."""

from __future__ import annotations

from titlegen_assets.prompts import prompt_messages, stop_token_ids
from titlegen_assets.training.processing import text_tokenizer


def generate_titles(model, tokenizer, contents: list[str], max_new_tokens: int, batch_size: int = 8) -> list[str]:
    """One title per article: chat template with the generation prompt, left-padded batches, stop at end of turn.

    ``tokenizer`` may be a processor (Unsloth's Gemma 3n): the prompts go in as ``text=``, and the rendered
    template already starts with ``<bos>``, so no special token is added a second time.
    """
    import torch

    text = text_tokenizer(tokenizer)
    stop = stop_token_ids(text)
    titles = []
    for start in range(0, len(contents), batch_size):
        prompts = [
            tokenizer.apply_chat_template(prompt_messages(c), tokenize=False, add_generation_prompt=True)
            for c in contents[start : start + batch_size]
        ]
        batch = tokenizer(text=prompts, return_tensors="pt", padding=True, padding_side="left",
                          add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            output = model.generate(  # text only: a processor's token_type_ids say nothing here
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=max_new_tokens,
                do_sample=False, eos_token_id=stop, pad_token_id=text.pad_token_id,
            )
        for row in output[:, batch["input_ids"].shape[1] :].tolist():
            cut = next((i for i, token in enumerate(row) if token in stop), len(row))
            titles.append(text.decode(row[:cut], skip_special_tokens=True).strip())
    return titles
