"""The code location stays light to import (the UI and the daemon reload it often); test_ui.py serves it for real."""

import subprocess
import sys


def test_importing_the_definitions_pulls_in_no_heavy_library():
    code = ("import sys, titlegen_assets.definitions as d; "
            "print(sorted(m for m in ('torch','transformers','datasets','unsloth','trl','peft','rensa') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
