"""The code location stays light to import (the UI and the daemon reload it often) and loads from an installed
package; test_ui.py serves it for real."""

import json
import os
import subprocess
import sys
from pathlib import Path

import titlegen_assets

REPOSITORY = Path(titlegen_assets.__file__).parent.parent


def test_importing_the_definitions_pulls_in_no_heavy_library():
    code = ("import sys, titlegen_assets.definitions as d; "
            "print(sorted(m for m in ('torch','transformers','datasets','unsloth','trl','peft','rensa') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


#: What the code location defines, printed by a Python process that imports it (public Definitions API only).
SUMMARY = """
import json, dagster as dg, titlegen_assets.definitions as d
from titlegen_assets.defs.guard import check_specs
dg.Definitions.validate_loadable(d.defs)
print(json.dumps({"file": d.__file__, "assets": sorted(k.to_user_string() for k in d.defs.resolve_all_asset_keys()),
                  "checks": sorted(s.key.to_user_string() for s in check_specs()),
                  "jobs": sorted(j.name for j in d.defs.jobs), "schedules": sorted(s.name for s in d.defs.schedules),
                  "sensors": sorted(s.name for s in d.defs.sensors)}))
"""


def _summary(cwd: Path, pythonpath: str | None = None) -> dict:
    env = {**os.environ, **({"PYTHONPATH": pythonpath} if pythonpath else {})}
    result = subprocess.run([sys.executable, "-c", SUMMARY], capture_output=True, text=True, cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_an_installed_package_loads_every_definition_without_the_projects_pyproject(tmp_path):
    """The Docker image pip-installs the package into site-packages (not editable): the loader must find defs/ there,
    with no pyproject.toml above it (``load_from_defs_folder`` would need one with ``[tool.dg]``)."""
    site = tmp_path / "site-packages"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(REPOSITORY)], check=True, capture_output=True)
    installed = _summary(tmp_path, pythonpath=str(site))
    checkout = _summary(REPOSITORY)

    assert Path(installed.pop("file")).is_relative_to(site)
    assert not any((folder / "pyproject.toml").exists() for folder in site.parents)
    assert installed == {key: value for key, value in checkout.items() if key != "file"}
    assert installed["assets"] and installed["checks"] and installed["jobs"] and installed["schedules"]
