"""A stand-in ``unsloth`` package that records what was imported before it, then behaves as the Unsloth double.

Real Unsloth 2026.10.7 checks the same thing at import (``unsloth/_gpu_init.py``: ``critical_modules = ["trl",
"transformers", "peft"]``, ``already_imported = [mod for mod in critical_modules if mod in sys.modules]``, then a
warning that its patches are not applied to them). This package is put first on ``sys.path`` of a fresh process; it
appends one JSON line to the file named by ``TITLEGEN_UNSLOTH_IMPORT_RECORD``: the modules of those three packages
already in ``sys.modules``.
"""

import json
import os
import sys

_BEFORE = sorted(name for name in sys.modules if name.split(".")[0] in ("trl", "transformers", "peft"))
with open(os.environ["TITLEGEN_UNSLOTH_IMPORT_RECORD"], "a") as _record:
    _record.write(json.dumps({"imported_before_unsloth": _BEFORE, "dagster_loaded": "dagster" in sys.modules}) + "\n")

from titlegen_assets_tests.doubles.unsloth_double import FastModel  # noqa: E402,F401

from . import chat_templates  # noqa: E402,F401
