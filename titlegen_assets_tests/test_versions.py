"""Versions know the code, proven across processes: each run is its own `dagster asset materialize` process, sharing
one artifact root and one Dagster instance, as the run containers of the Docker stack share a volume and PostgreSQL."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from titlegen_assets.versioning.code_version import PACKAGE
from titlegen_assets_tests.support import demo_config

DATA = "raw_dataset,cleaned_splits"


def edited_package(tmp_path: Path, module: str, edit) -> Path:
    """A copy of titlegen_assets with one module's text changed by ``edit``; returns the folder for PYTHONPATH."""
    root = tmp_path / f"edited-{Path(module).parent.name or Path(module).stem}"
    shutil.copytree(PACKAGE, root / "titlegen_assets", ignore=shutil.ignore_patterns("__pycache__"))
    path = root / "titlegen_assets" / module
    changed = edit(path.read_text(encoding="utf-8"))
    assert changed != path.read_text(encoding="utf-8")
    path.write_text(changed, encoding="utf-8")
    return root


def materialize_cli(select: str, config: dict, artifacts: Path, dagster_home: Path, pythonpath: Path | None = None,
                    check: bool = True):
    """One `dagster asset materialize` process; returns its combined output (and, with ``check``, fails the test if
    the run failed)."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    config_file = dagster_home / "run_config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    env = {**os.environ, "TITLEGEN_HOME": str(artifacts), "DAGSTER_HOME": str(dagster_home)}
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    done = subprocess.run([sys.executable, "-m", "dagster", "asset", "materialize", "-m", "titlegen_assets.definitions",
                           "--select", select, "-c", str(config_file)], capture_output=True, text=True, env=env,
                          cwd=dagster_home)  # dagster puts the working directory first on sys.path
    assert done.returncode == 0 or not check, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def folders(artifacts: Path, kind: str) -> dict[str, float]:
    return {p.name: p.stat().st_mtime for p in (artifacts / kind).iterdir() if not p.name.startswith(".")}


def only(config: dict, *ops: str) -> dict:
    return {"ops": {name: config["ops"][name] for name in ops}}


def test_a_changed_cleaning_rule_makes_new_splits_and_an_unchanged_rerun_writes_nothing(tmp_path):
    artifacts, config = tmp_path / "artifacts", only(demo_config(), "raw_dataset", "cleaned_splits")
    materialize_cli(DATA, config, artifacts, tmp_path / "home")
    first = folders(artifacts, "splits")
    assert len(first) == 1

    materialize_cli(DATA, config, artifacts, tmp_path / "home")
    assert folders(artifacts, "splits") == first, "an unchanged re-run must reuse the folder, not rewrite it"

    new_rule = ("\n\n_clean_rows_before = clean_rows\n\n\ndef clean_rows(rows, rules, **options):\n"
                "    return _clean_rows_before([r for r in rows if '颱風' not in str(r.get('content'))], rules, **options)\n")
    edited = edited_package(tmp_path, "data/cleaning.py", lambda text: text + new_rule)
    materialize_cli(DATA, config, artifacts, tmp_path / "home", pythonpath=edited)
    after = folders(artifacts, "splits")
    assert len(after) == 2 and set(first) < set(after), "a changed cleaning rule must make a new version"
    assert after[next(iter(first))] == next(iter(first.values())), "the earlier version is left as it was"


def test_a_changed_instruction_trains_a_new_adapter_from_splits_another_process_produced(tmp_path):
    artifacts = tmp_path / "artifacts"
    config = only(demo_config(max_steps=2), "raw_dataset", "cleaned_splits", "lora_adapter")
    materialize_cli(f"{DATA},lora_adapter", config, artifacts, tmp_path / "home")
    assert len(folders(artifacts, "adapters")) == 1

    edited = edited_package(tmp_path, "prompts/__init__.py", lambda text: re.sub(
        r'^INSTRUCTION = .*$', 'INSTRUCTION = "請替這則新聞下一個標題。"', text, count=1, flags=re.M))
    # lora_adapter alone, in another process: cleaned_splits is loaded from the shared artifact root
    log = materialize_cli("lora_adapter", only(config, "lora_adapter"), artifacts, tmp_path / "home", edited)
    adapters = folders(artifacts, "adapters")
    assert len(adapters) == 2, log[-2000:]
    assert "reusing it" not in log
