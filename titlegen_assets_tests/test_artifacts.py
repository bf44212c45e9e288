"""Artifact folders are all-or-nothing, also when a process is killed half-way."""

import subprocess
import sys

from titlegen_assets.versioning.artifacts import atomic_folder

KILLED_WRITER = """
import os, sys
from pathlib import Path
from titlegen_assets.versioning.artifacts import atomic_folder
with atomic_folder(Path(sys.argv[1])) as staging:
    (staging / "half.bin").write_bytes(b"x" * 1024)
    os._exit(9)  # like SIGKILL: no cleanup code runs
"""


def test_a_killed_writer_leaves_no_target_and_the_next_run_sweeps_its_staging_folder(tmp_path):
    target = tmp_path / "adapters" / "v1"
    subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)], check=False)
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(".tmp-v1-")], "the kill left its staging"

    with atomic_folder(target) as staging:
        (staging / "done.txt").write_text("ok")
    assert sorted(p.name for p in target.parent.iterdir()) == ["v1"]
    assert (target / "done.txt").read_text() == "ok"


def test_an_existing_version_is_kept_and_the_new_copy_discarded(tmp_path):
    target = tmp_path / "v1"
    with atomic_folder(target) as staging:
        (staging / "first.txt").write_text("1")
    with atomic_folder(target) as staging:
        (staging / "second.txt").write_text("2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1"] and (target / "first.txt").is_file()
    assert not (target / "second.txt").exists()
