"""What pyproject.toml declares is what the product imports: nothing unused, nothing undeclared (deptry)."""

import shutil
import subprocess
import sys
from pathlib import Path


def test_declared_dependencies_match_the_imports():
    deptry = shutil.which("deptry", path=str(Path(sys.executable).parent)) or "deptry"
    done = subprocess.run([deptry, "."], cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
