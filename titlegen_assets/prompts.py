"""The one prompt: training examples, eval generation, the Ollama TEMPLATE and latency requests all come from here.

Gemma 3n's own chat template folds a ``system`` message into the first user turn as ``system + "\\n\\n"``
and trims every message's content, so a request is rendered as::

    <bos><start_of_turn>user\\n{INSTRUCTION}\\n\\n{article}<end_of_turn>\\n<start_of_turn>model\\n

``ollama_template`` reproduces exactly that text (without ``<bos>``, which the runner adds itself).
"""

from __future__ import annotations

INSTRUCTION = "你是新聞編輯。請為下面這篇新聞寫一個繁體中文標題，只輸出標題本身，不要解釋。"

#: Generation cap for one title, in tokens: the eval gate, the merged model's sample and Ollama's num_predict.
TITLE_MAX_NEW_TOKENS = 48

#: Stop sequence of a Gemma turn; also the last token that carries training loss.
END_OF_TURN = "<end_of_turn>"


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
    return "<start_of_turn>user\n{{ .System }}\n\n{{ .Prompt }}" + END_OF_TURN + "\n<start_of_turn>model\n"
