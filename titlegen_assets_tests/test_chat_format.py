"""The Gemma chat format and Ollama's template behaviour, as facts written here (no file outside the repository).

Sources of the facts: the chat template that ``google/gemma-3n-E4B-it``'s tokenizer ships (as printed into
Unsloth's ``unsloth/chat_templates.py``, ``gemma3n_template``), and the TEMPLATE of Ollama's library model
``gemma3n`` (blob e0a42594d802). The project's template must be byte-for-byte Gemma's, and the TEMPLATE the
product gives Ollama must render one request exactly as training rendered it.
"""

import hashlib
from pathlib import Path

import pytest

from titlegen_assets.prompts import (
    END_OF_TURN,
    INSTRUCTION,
    START_OF_TURN,
    article_text,
    chat_template,
    ollama_template,
    prompt_messages,
    training_example,
)

#: sha256 of google/gemma-3n-E4B-it's ``tokenizer.chat_template`` (UTF-8, as Unsloth's gemma3n_template prints it).
GEMMA3N_CHAT_TEMPLATE_SHA256 = "26ddea158c7fcf8fe148daff69795c881e22e532990a34205254c523dbe0882b"

#: Ollama's library gemma3n TEMPLATE (blob e0a42594d802), verbatim: a system message is its own user turn.
OLLAMA_LIBRARY_GEMMA3N_TEMPLATE = """{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if or (eq .Role "user") (eq .Role "system") }}<start_of_turn>user
{{ .Content }}<end_of_turn>
{{ if $last }}<start_of_turn>model
{{ end }}
{{- else if eq .Role "assistant" }}<start_of_turn>model
{{ .Content }}{{ if not $last }}<end_of_turn>
{{ end }}
{{- end }}
{{- end }}"""

ARTICLE = "  記者林雅婷／台北報導\n台北市捷運工程局今天舉行環狀線北段動工典禮，路線全長約14.9公里。  "
TITLE = " 環狀線北段動工 "

#: How Gemma 3n's template renders a request (system folded into the first user turn with "\n\n", contents trimmed,
#: the assistant called "model") and a training example (the title, then the end of the model's turn).
REQUEST = ("<bos><start_of_turn>user\n" + INSTRUCTION + "\n\n記者林雅婷／台北報導\n台北市捷運工程局今天舉行環狀線北段動工典禮，"
           "路線全長約14.9公里。<end_of_turn>\n<start_of_turn>model\n")
EXAMPLE = REQUEST + "環狀線北段動工<end_of_turn>\n"

#: What Ollama's library gemma3n TEMPLATE would feed the model for the same request: two user turns.
LIBRARY_RENDERING = ("<start_of_turn>user\n" + INSTRUCTION + "<end_of_turn>\n<start_of_turn>user\n記者林雅婷／台北報導\n"
                     "台北市捷運工程局今天舉行環狀線北段動工典禮，路線全長約14.9公里。<end_of_turn>\n<start_of_turn>model\n")


def fill(template: str, system: str, prompt: str) -> str:
    """What Ollama renders for one request with this TEMPLATE (only .System and .Prompt are used in ours)."""
    filled = template.replace("{{ .System }}", system).replace("{{ .Prompt }}", prompt)
    assert "{{" not in filled, "the TEMPLATE uses more than .System and .Prompt"
    return filled


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from titlegen_assets.prompts import with_chat_template
    from titlegen_assets.training.smoke import tokenizer_dir

    return with_chat_template(AutoTokenizer.from_pretrained(tokenizer_dir()))


def test_the_one_chat_template_is_gemma3n_s_own_byte_for_byte():
    assert hashlib.sha256(chat_template().encode()).hexdigest() == GEMMA3N_CHAT_TEMPLATE_SHA256


def test_a_request_and_a_training_example_render_as_gemma_renders_them(tokenizer):
    request = tokenizer.apply_chat_template(prompt_messages(ARTICLE), tokenize=False, add_generation_prompt=True)
    assert request == REQUEST
    example = training_example(ARTICLE, TITLE)
    rendered = tokenizer.apply_chat_template(example["prompt"] + example["completion"], tokenize=False)
    assert rendered == EXAMPLE


def test_the_turn_markers_are_single_special_tokens_where_gemma_puts_them(tokenizer):
    ids = tokenizer.apply_chat_template(prompt_messages(ARTICLE), tokenize=True, add_generation_prompt=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    start, end = tokenizer.convert_tokens_to_ids(START_OF_TURN), tokenizer.convert_tokens_to_ids(END_OF_TURN)
    assert ids[:2] == [tokenizer.bos_token_id, start]
    assert ids.count(start) == 2 and ids.count(end) == 1
    # token by token after the article: <end_of_turn> "\n" <start_of_turn> "model" "\n"
    tail = tokenizer.convert_ids_to_tokens(ids[ids.index(end):])
    assert tail[0] == END_OF_TURN and tail[2] == START_OF_TURN and tokenizer.convert_tokens_to_string(tail[3:]) == "model\n"


def test_the_ollama_template_gives_the_model_exactly_the_training_prompt():
    served = fill(ollama_template(), INSTRUCTION, article_text(ARTICLE))
    assert "<bos>" + served == REQUEST  # the runner adds <bos> itself


def test_the_library_gemma3n_template_would_have_served_a_different_prompt():
    assert 'or (eq .Role "user") (eq .Role "system")' in OLLAMA_LIBRARY_GEMMA3N_TEMPLATE
    assert "<bos>" + LIBRARY_RENDERING != REQUEST
    assert fill(ollama_template(), INSTRUCTION, article_text(ARTICLE)) != LIBRARY_RENDERING


def test_every_saved_model_folder_ships_the_one_template(smoke_base_model):
    assert (Path(smoke_base_model) / "chat_template.jinja").read_text() == chat_template()
