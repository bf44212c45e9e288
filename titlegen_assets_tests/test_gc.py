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


def _stand_in(instance, root, name, version, metadata, output=None) -> str:
    """One real materialization of asset ``name`` at data version ``version`` (a run of a stand-in asset under that
    key), its step output written by the production IO manager under ``root`` (as TITLEGEN_HOME places it); returns
    the run id."""
    import os
    from unittest import mock

    from titlegen_assets.defs.io_manager import ManifestIOManager
    from titlegen_assets.defs.resources import ArtifactStore

    @dg.asset(name=name)
    def stand_in() -> dg.MaterializeResult[dict]:
        return dg.MaterializeResult(value=output or {"version": version}, data_version=dg.DataVersion(version),
                                    metadata=metadata)

    with mock.patch.dict(os.environ, {"TITLEGEN_HOME": str(root)}):
        return dg.materialize([stand_in], instance=instance,
                              resources={"io_manager": ManifestIOManager(artifacts=ArtifactStore())}).run_id


def test_gc_reads_only_the_last_keep_evaluations_of_each_check(tmp_path, monkeypatch):
    """Five evaluations of one check, a window of two: gc keeps what those two name, and no record beyond them is
    read from the event log (an unbounded read slows every gc as the history grows)."""
    check = dg.AssetCheckKey(dg.AssetKey("cleaned_splits"), "splits_not_empty")
    reports = [tmp_path / "artifacts" / "reports" / "eval" / f"v{n}" for n in range(5)]
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        _stand_in(instance, tmp_path / "artifacts", "cleaned_splits", "v0", {})
        for report in reports:  # oldest first
            instance.report_runless_asset_event(dg.AssetCheckEvaluation(
                asset_key=check.asset_key, check_name=check.name, passed=True,
                metadata={"path": dg.MetadataValue.path(str(report))}))
        storage, read = instance.event_log_storage, []
        for method in ("get_asset_check_execution_history", "get_event_records"):
            monkeypatch.setattr(storage, method, _counting(getattr(storage, method), read))

        referenced = gc.referenced_paths(instance, keep_last=2)

    assert referenced & set(reports) == set(reports[-2:])
    assert len(read) == 2


def _counting(method, read: list):
    """``method``, appending every record it returns to ``read``."""
    def counted(*args, **kwargs):
        records = method(*args, **kwargs)
        read.extend(records)
        return records
    return counted


def _folders(root, *entries, days=30):
    """Version folders ``kind/version`` under ``root``, each holding a file, all last written ``days`` ago."""
    for entry in entries:
        (root / entry).mkdir(parents=True, exist_ok=True)
        (root / entry / "part.bin").write_bytes(b"x" * 100)
        _age(root / entry, days)


def _listed(out: str, verb: str = "would remove ") -> set[str]:
    return {line.split(" (")[0].removeprefix(verb) for line in out.splitlines() if line.startswith(verb)}


def test_gc_keeps_what_is_in_service_or_published_with_its_lineage_and_says_why(artifact_root, tmp_path,
                                                                                 monkeypatch, capsys):
    """The champion (named by the latest hf_repo) and the model the latest ollama_model serves survive however many
    challengers were merged after them: their merged folder, GGUFs, adapter, splits and raw data, each listed with
    the reason; a model whose step-output manifest is gone keeps its merged folder and GGUFs and says so. What an
    older hf_repo materialization named is not protected."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    root = artifact_root
    path = lambda *parts: dg.MetadataValue.path(str(root.joinpath(*parts)))  # noqa: E731
    champion_inputs = {"lora_adapter": "lora-champ", "cleaned_splits": "splits-champ", "raw_dataset": "raw-champ"}
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        for version, inputs in (("old", {"lora_adapter": "lora-old", "cleaned_splits": "splits-old"}),
                                ("champ", champion_inputs), ("served", {"lora_adapter": "lora-served"})):
            run_id = _stand_in(instance, root, "merged_hf_model", version, {"path": path("merged", version)},
                               {"version": version, "inputs": inputs})
        (root / "manifests" / "merged_hf_model" / f"{run_id}.json").unlink()  # the served model's lineage is lost
        _stand_in(instance, root, "hf_repo", "h-old", {"merged_version": "old", "path": path("hub", "h-old")})
        _stand_in(instance, root, "hf_repo", "h-champ", {"merged_version": "champ", "path": path("hub", "h-champ")})
        _stand_in(instance, root, "ollama_model", "o-served",
                  {"merged_version": "served", "modelfile_path": path("ollama", "o-served", "Modelfile")})
        for challenger in ("c1", "c2"):  # merged after them: with --keep 1 only c2's own folders are referenced
            _stand_in(instance, root, "merged_hf_model", challenger, {"path": path("merged", challenger)},
                      {"version": challenger, "inputs": {"lora_adapter": f"lora-{challenger}"}})
    _folders(root, *(f"{kind}/{v}" for kind in ("merged", "gguf") for v in ("old", "champ", "served", "c1", "c2")),
             "adapters/lora-old", "adapters/lora-champ", "adapters/lora-served", "splits/splits-old",
             "splits/splits-champ", "raw/raw-champ", "hub/h-old", "hub/h-champ", "ollama/o-served")

    assert gc.main(["gc", "--keep", "1", "--dry-run", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert _listed(out) == {str(root / entry) for entry in (
        "merged/old", "gguf/old", "merged/c1", "gguf/c1", "adapters/lora-old", "splits/splits-old", "hub/h-old",
        "adapters/lora-served")}
    kept = {line for line in out.splitlines() if line.startswith("kept ")}
    assert {"kept merged/champ: in service (hf_repo)",
            "kept gguf/champ: GGUFs of merged/champ, in service (hf_repo)",
            "kept adapters/lora-champ: adapter of merged/champ, in service (hf_repo)",
            "kept splits/splits-champ: splits of merged/champ, in service (hf_repo)",
            "kept raw/raw-champ: raw data of merged/champ, in service (hf_repo)",
            "kept hub/h-champ: published by hf_repo (merged/champ)",
            "kept gguf/served: GGUFs of merged/served, in service (ollama_model)",
            "kept ollama/o-served: served by ollama_model (merged/served)"} <= kept
    served = next(line for line in kept if line.startswith("kept merged/served: in service (ollama_model); "))
    assert "lineage could not be read" in served and "no manifest at" in served

    assert gc.main(["gc", "--keep", "1", "--root", str(root)]) == 0
    assert "kept merged/champ: in service (hf_repo)" in capsys.readouterr().out
    assert all((root / kind / v).is_dir() for kind in ("merged", "gguf") for v in ("champ", "served", "c2"))
    assert all((root / entry).is_dir() for entry in ("adapters/lora-champ", "splits/splits-champ", "raw/raw-champ"))
    assert not (root / "merged" / "old").exists() and not (root / "gguf" / "c1").exists()


def test_in_service_reasons_name_every_consumer_and_read_a_lineage_without_raw_data(tmp_path):
    """One model both published and served, whose manifest predates raw_dataset in the lineage: every folder of its
    lineage is kept, each reason naming both consumers."""
    root = tmp_path
    service = gc.InService(version="m1", by=("ollama_model", "hf_repo"),
                           folders={root / "hub" / "h1" / "README.md": "hf_repo"},
                           inputs={"lora_adapter": "a1", "cleaned_splits": "s1"})
    assert gc.in_service_reasons(root, [service]) == {
        root / "merged" / "m1": "in service (ollama_model, hf_repo)",
        root / "gguf" / "m1": "GGUFs of merged/m1, in service (ollama_model, hf_repo)",
        root / "adapters" / "a1": "adapter of merged/m1, in service (ollama_model, hf_repo)",
        root / "splits" / "s1": "splits of merged/m1, in service (ollama_model, hf_repo)",
        root / "hub" / "h1": "published by hf_repo (merged/m1)",
    }


def _an_instance(tmp_path, monkeypatch, root):
    """A Dagster instance under DAGSTER_HOME with one materialization (gc refuses an empty one)."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        _stand_in(instance, root, "raw_dataset", "r0", {"path": dg.MetadataValue.path(str(root / "raw" / "r0"))})


def test_gc_never_removes_a_held_lock_a_live_staging_folder_or_a_running_training_work_folder(
        artifact_root, tmp_path, monkeypatch, capsys):
    """A training that has run for a month: its version lock, its staging folder and its work folder stay, however
    old; the dead leftovers beside them (a lock nobody holds, a staging folder whose maker died, a work folder whose
    lock is free) go."""
    from titlegen_assets.versioning.artifacts import atomic_folder, version_lock

    root = artifact_root
    _an_instance(tmp_path, monkeypatch, root)
    adapters = root / "adapters"
    _folders(root, "adapters/.work-dead", "adapters/.tmp-dead-0000", "raw/r0")
    (adapters / ".lock-dead").touch()
    with version_lock(adapters / "running"), atomic_folder(adapters / "running") as staging:
        (staging / "adapter.bin").write_bytes(b"x" * 100)
        _folders(root, "adapters/.work-running")
        for path in (adapters / ".lock-running", adapters / ".lock-dead", staging, adapters / ".work-running"):
            _age(path, 30)

        assert gc.main(["gc", "--dry-run", "--root", str(root)]) == 0
        out = capsys.readouterr().out
        dead = {str(adapters / name) for name in (".lock-dead", ".tmp-dead-0000", ".work-dead")}
        assert _listed(out) == dead
        assert f"kept adapters/{staging.name}: being written (its staging lock is held)" in out
        assert "kept adapters/.lock-running: held by a run making adapters/running" in out
        assert "kept adapters/.work-running: work folder of adapters/running, which a run is making" in out

        assert gc.main(["gc", "--root", str(root)]) == 0
        assert _listed(capsys.readouterr().out, "removing ") == dead
        assert staging.is_dir() and (adapters / ".lock-running").is_file() and (adapters / ".work-running").is_dir()
        assert not any((adapters / name).exists() for name in (".lock-dead", ".tmp-dead-0000", ".work-dead"))
    assert (adapters / "running" / "adapter.bin").is_file()


def _opened(path: Path) -> int:
    """How many descriptors of this process have ``path`` open (Linux: /proc/self/fd)."""
    return sum(1 for fd in Path("/proc/self/fd").iterdir() if os.path.realpath(fd) == str(path))


def test_version_lock_takes_the_lock_file_now_at_its_path_when_gc_removed_the_one_it_waited_on(tmp_path):
    """gc removes a free lock file while holding it; a run that opened that file and waited must then lock the file
    at the path (else a third run locks a new file and two runs make one version at once)."""
    import fcntl
    import threading

    from titlegen_assets.versioning.artifacts import version_lock

    target = tmp_path / "merged" / "v1"
    target.parent.mkdir()
    lock = tmp_path / "merged" / ".lock-v1"
    entered = threading.Event()
    with open(lock, "a") as gc_handle:
        fcntl.flock(gc_handle, fcntl.LOCK_EX)  # what gc holds while it removes a free lock file

        def run():
            with version_lock(target):
                entered.set()
                release.wait(10)

        release = threading.Event()
        waiter = threading.Thread(target=run)
        waiter.start()
        deadline = time.time() + 10
        while _opened(lock) < 2 and time.time() < deadline:  # until the waiter has opened this file and waits on it
            time.sleep(0.01)
        assert _opened(lock) == 2
        lock.unlink()
    assert entered.wait(10)
    try:
        assert lock.is_file()
        with open(lock, "rb") as probe:  # a third run would lock this file: it must find it taken
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            else:
                raise AssertionError(f"nobody holds {lock}: a third run would make v1 alongside the waiter")
    finally:
        release.set()
        waiter.join()


def test_gc_never_follows_a_link_out_of_the_artifact_root(artifact_root, tmp_path, monkeypatch, capsys):
    """A kind folder, a report kind and a version entry that are links to folders outside the root holding old
    files: gc lists nothing there and removes nothing there."""
    root = artifact_root
    _an_instance(tmp_path, monkeypatch, root)
    outside = tmp_path / "elsewhere"
    _folders(outside, "models/precious", "latency/precious", "loose/precious")
    _folders(root, "raw/r0")
    (root / "merged").symlink_to(outside / "models", target_is_directory=True)
    (root / "reports").mkdir()
    (root / "reports" / "latency").symlink_to(outside / "latency", target_is_directory=True)
    (root / "gguf").mkdir()
    (root / "gguf" / "linked").symlink_to(outside / "loose" / "precious", target_is_directory=True)
    os.utime(root / "gguf" / "linked", (1, 1), follow_symlinks=False)

    assert gc.main(["gc", "--dry-run", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert str(outside) not in "".join(line for line in out.splitlines() if not line.startswith("kept "))
    assert _listed(out) == {str(root / "gguf" / "linked")}  # the link itself, never what it points at
    assert "kept merged: a symbolic link" in out and "kept reports/latency: a symbolic link" in out

    assert gc.main(["gc", "--root", str(root)]) == 0
    assert all((outside / kind / "precious" / "part.bin").is_file() for kind in ("models", "latency", "loose"))
    assert (root / "merged").is_symlink() and not (root / "gguf" / "linked").is_symlink()
