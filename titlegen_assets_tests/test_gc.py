"""`titlegen gc` against a real Dagster instance (SQLite under a DAGSTER_HOME of its own) and two materializations."""

import os
import time
from pathlib import Path

import dagster as dg

from titlegen_assets.data.sources import sample_path
from titlegen_assets.defs.data_assets import cleaned_splits, cleaned_splits_checks, raw_dataset
from titlegen_assets.versioning import gc


def _materialize(resources, instance, run_config):
    result = dg.materialize([raw_dataset, cleaned_splits, cleaned_splits_checks], resources=resources,
                            instance=instance, run_config=run_config)
    return {name: result.output_for_node(name)["path"] for name in ("raw_dataset", "cleaned_splits")}


def _age(path, days):
    then = time.time() - days * 86400
    for p in [path, *path.rglob("*")]:
        os.utime(p, (then, then), follow_symlinks=False)


def test_gc_removes_only_what_the_last_materializations_do_not_reference(resources, artifact_root, tmp_path,
                                                                          monkeypatch, capsys):
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    news = tmp_path / "news.jsonl"
    news.write_text("".join(sample_path().read_text(encoding="utf-8").splitlines(keepends=True)[1:]), encoding="utf-8")
    with dg.DagsterInstance.get() as instance:
        first = _materialize(resources, instance, {"ops": {"raw_dataset": {"config": {"source": "sample"}}}})
        second = _materialize(resources, instance, {"ops": {"raw_dataset": {"config": {"source": "file", "path": str(news)}}}})
    old_staging = artifact_root / "merged" / ".tmp-v9-dead"
    young_staging = artifact_root / "merged" / ".tmp-v10-running"
    orphan_gguf = artifact_root / "gguf" / "v-of-a-removed-model"
    for folder in (old_staging, young_staging, orphan_gguf):
        folder.mkdir(parents=True)
        (folder / "part.bin").write_bytes(b"x" * 1000)
    for path in (*first.values(), *second.values(), old_staging, orphan_gguf):
        _age(Path(path), 2)
    doomed = {str(p) for p in (*first.values(), old_staging, orphan_gguf)}

    assert gc.main(["gc", "--keep", "1", "--dry-run"]) == 0
    listed = capsys.readouterr().out
    assert {line.split(" (")[0].removeprefix("would remove ") for line in listed.splitlines()[:-1]} == doomed
    assert "would free" in listed and all(Path(p).exists() for p in doomed)

    assert gc.main(["gc", "--keep", "1"]) == 0
    assert not any(Path(p).exists() for p in doomed)
    assert all(Path(p).is_dir() for p in second.values()) and young_staging.is_dir()

    assert gc.main(["gc", "--keep", "2", "--dry-run"]) == 0  # nothing more to collect
    assert capsys.readouterr().out.splitlines()[-1].startswith("would free 0 bytes in 0 version(s)")


def test_gc_refuses_an_instance_without_materializations(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("TITLEGEN_HOME", str(tmp_path / "artifacts"))
    assert gc.main(["gc", "--dry-run"]) == 2
    assert "set DAGSTER_HOME to the deployment's" in capsys.readouterr().err
