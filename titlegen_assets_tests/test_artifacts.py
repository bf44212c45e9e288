"""Artifact folders are all-or-nothing, also when a process is killed half-way."""

import subprocess
import sys

import pytest

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


LIVE_WRITER = """
import sys, time
from pathlib import Path
from titlegen_assets.versioning.artifacts import atomic_folder
with atomic_folder(Path(sys.argv[1])) as staging:
    (staging / "part.bin").write_bytes(b"x" * 1024)
    print(staging, flush=True)
    sys.stdin.readline()  # hold the folder until told to finish
    (staging / "done.txt").write_text("writer")
"""


def test_a_live_writers_staging_folder_survives_another_runs_sweep_and_both_end_with_one_folder(tmp_path):
    target = tmp_path / "merged" / "v1"
    writer = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, str(target)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    staging = writer.stdout.readline().strip()
    with atomic_folder(target) as mine:  # sweeps leftovers first: the live one must stay
        (mine / "done.txt").write_text("second run")
    assert (target / "done.txt").read_text() == "second run"
    writer.communicate("go\n", timeout=60)
    assert writer.returncode == 0, "the live writer lost its staging folder"
    assert sorted(p.name for p in target.parent.iterdir() if not p.name.startswith(".lock")) == ["v1"]
    assert not list(target.rglob(".staging.lock")) and staging


FULL_DISK_WRITER = """
import resource, signal, sys
from pathlib import Path
from titlegen_assets.versioning.artifacts import atomic_write_text
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
try:
    atomic_write_text(Path(sys.argv[1]), "x" * 100_000)
except OSError as error:
    print(error.errno)
"""


def test_a_write_that_fails_half_way_leaves_no_temporary_file_and_no_target(tmp_path):
    """The disk fills mid-write (a file size limit stands for it) in a process of its own."""
    import errno

    target = tmp_path / "reports" / "eval.jsonl"
    result = subprocess.run([sys.executable, "-c", FULL_DISK_WRITER, str(target)], capture_output=True, text=True)
    assert result.stdout.strip() == str(errno.EFBIG), result.stderr
    assert list(target.parent.iterdir()) == []


def test_text_that_cannot_be_encoded_leaves_no_temporary_file_and_keeps_the_old_file(tmp_path):
    from titlegen_assets.versioning.artifacts import atomic_write_text

    target = atomic_write_text(tmp_path / "Modelfile", "FROM model.gguf\n")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "FROM model.gguf\n" + "\ud800")  # a lone surrogate: not UTF-8
    assert [p.name for p in tmp_path.iterdir()] == ["Modelfile"] and target.read_text() == "FROM model.gguf\n"
