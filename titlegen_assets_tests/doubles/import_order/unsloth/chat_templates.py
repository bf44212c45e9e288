"""``unsloth.chat_templates`` of the stand-in package: the double's ``train_on_responses_only``."""

from titlegen_assets_tests.doubles.unsloth_double import train_on_responses_only  # noqa: F401
