import subprocess
import sys

from titlegen_assets.definitions import defs

DATA_ASSETS = {"raw_dataset", "cleaned_splits"}


def test_definitions_expose_the_data_assets_and_their_blocking_checks():
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert DATA_ASSETS <= keys
    checks = {(k.asset_key.to_user_string(), k.name) for k in defs.resolve_asset_graph().asset_check_keys}
    assert {("cleaned_splits", "splits_not_empty"), ("cleaned_splits", "no_leakage_between_splits")} <= checks


def test_dagster_definitions_validate_passes(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "titlegen_assets.definitions"],
        capture_output=True, text=True, env={**_env(), "DAGSTER_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_importing_the_definitions_pulls_in_no_heavy_library():
    code = ("import sys, titlegen_assets.definitions as d; "
            "print(sorted(m for m in ('torch','transformers','datasets','unsloth','trl','peft') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def _env():
    import os

    return {k: v for k, v in os.environ.items()}
