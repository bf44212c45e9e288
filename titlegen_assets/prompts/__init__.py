"""The one prompt: training examples, eval generation, the Ollama TEMPLATE and latency requests all come from here.

Gemma 3n's own chat template folds a ``system`` message into the first user turn as ``system + "\\n\\n"``
and trims every message's content, so a request is rendered as::

    <bos><start_of_turn>user\\n{INSTRUCTION}\\n\\n{article}<end_of_turn>\\n<start_of_turn>model\\n

``ollama_template`` reproduces exactly that text (without ``<bos>``, which the runner adds itself).

That chat template ships here (``chat_template.jinja``, Gemma 3n's own; Gemma 3's renders text the same way and
differs only in its image placeholder) and is written into every model folder the product saves, so a base model
without one (the pretrained Gemma 3 270M) renders the same text as Gemma 3n.
"""

from __future__ import annotations

from importlib import resources

INSTRUCTION = "你是新聞編輯。請為下面這篇新聞寫一個繁體中文標題，只輸出標題本身，不要解釋。"

#: Generation cap for one title, in tokens: the eval gate, the merged model's sample and Ollama's num_predict.
TITLE_MAX_NEW_TOKENS = 48

#: Greedy decoding, as the eval gate decodes (transformers' ``do_sample=False``, no repetition penalty), in the
#: option names llama-server and Ollama share; Ollama's own default repeat_penalty is 1.1, so it is pinned too.
GREEDY = {"temperature": 0.0, "top_k": 1, "repeat_penalty": 1.0}

#: The Gemma turn markers (single special tokens). END_OF_TURN is the stop sequence and the last token that carries
#: training loss; USER_TURN and MODEL_TURN open the turns (Unsloth's train_on_responses_only masks on them).
START_OF_TURN, END_OF_TURN = "<start_of_turn>", "<end_of_turn>"
USER_TURN, MODEL_TURN = f"{START_OF_TURN}user\n", f"{START_OF_TURN}model\n"


def chat_template() -> str:
    """The Gemma turn format as a Jinja chat template (the one ``tokenizer.apply_chat_template`` renders)."""
    return (resources.files("titlegen_assets.prompts") / "chat_template.jinja").read_text(encoding="utf-8")


def with_chat_template(tokenizer):
    """Give ``tokenizer`` the project's chat template; ``save_pretrained`` then writes it into the model folder."""
    tokenizer.chat_template = chat_template()
    return tokenizer


def stop_token_ids(tokenizer) -> list[int]:
    """``<eos>`` and ``<end_of_turn>``: a title ends with the model's turn."""
    return [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(END_OF_TURN)]


def with_generation_stops(generation_config, tokenizer):
    """A ``GenerationConfig`` that stops at ``<end_of_turn>`` too (a pretrained base stops only at ``<eos>``)."""
    generation_config.eos_token_id = stop_token_ids(tokenizer)
    generation_config.bos_token_id = tokenizer.bos_token_id
    generation_config.pad_token_id = tokenizer.pad_token_id
    return generation_config


def article_text(content: str) -> str:
    """The user turn's text; trimmed the way the chat template trims it, so every consumer sees the same string."""
    return content.strip()


def prompt_messages(content: str, instruction: str = INSTRUCTION) -> list[dict[str, str]]:
    """Messages for one request: the instruction as the system message, the article as the user message."""
    return [
        {"role": "system", "content": instruction},
        {"role": "user", "content": article_text(content)},
    ]


def training_example(content: str, title: str, instruction: str = INSTRUCTION) -> dict[str, list[dict[str, str]]]:
    """One conversational prompt/completion example: the request, and the reference title as the model's answer.

    TRL renders both with the tokenizer's chat template and puts loss on the completion only.
    """
    return {"prompt": prompt_messages(content, instruction), "completion": [{"role": "assistant", "content": title.strip()}]}


def ollama_template() -> str:
    """Ollama TEMPLATE (Go template) that renders one request like Gemma 3n's chat template does.

    ``.System`` carries the instruction (the Modelfile's SYSTEM) and ``.Prompt`` the article. Ollama's library
    gemma3n template renders a system message as a separate user turn, which is not what training saw.
    """
    return USER_TURN + "{{ .System }}\n\n{{ .Prompt }}" + END_OF_TURN + "\n" + MODEL_TURN
