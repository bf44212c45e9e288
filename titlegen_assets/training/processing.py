"""A processor or a tokenizer: what the text-only paths need from the ``processing_class`` a loader returns.

Unsloth returns an ``AutoProcessor`` for a multimodal checkpoint (Gemma 3n) and a tokenizer for a text-only one.
A processor's first positional argument is images and it carries no token ids of its own, so callers pass
``text=`` and ask token-level questions (``bos_token``, ``eos_token_id``, ``decode``) of its text tokenizer.
"""

from __future__ import annotations


def text_tokenizer(processing_class):
    """The tokenizer itself, or a processor's ``.tokenizer``."""
    from transformers import ProcessorMixin

    return processing_class.tokenizer if isinstance(processing_class, ProcessorMixin) else processing_class
