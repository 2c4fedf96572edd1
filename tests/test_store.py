"""The session store: the seed's layout, refused ids, atomic writes and a lock that holds across processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import rewards_api.store as store_module
from rewards_api.params import AgentParams, EnvParams, ParameterError, TrainingParams
from rewards_api.safe_json import dumps
from rewards_api.store import (
    DOCUMENTS,
    DocumentCache,
    InvalidSessionId,
    SessionError,
    SessionExists,
    SessionNotFound,
    SessionStore,
    atomic_write_bytes,
    atomic_write_json,
    default_home,
    read_json,
    validate_session_id,
)

FIVE = ["agent_params.json", "env_params.json", "evaluation_metrics.json", "training_metrics.json",
        "training_params.json"]


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "home")


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() + ("/" if p.is_dir() else "") for p in root.rglob("*"))


def test_home_is_made_on_first_write_and_defaults_to_rewards_home(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("REWARDS_HOME", str(tmp_path / "elsewhere"))
    assert default_home() == tmp_path / "elsewhere"
    assert SessionStore().home == (tmp_path / "elsewhere").resolve()
    monkeypatch.delenv("REWARDS_HOME")
    assert default_home() == Path.home() / ".rewards_ai"
    store = SessionStore(str(tmp_path / "home"))
    assert not store.home.exists()
    assert store.list_sessions() == []
    store.create("s")
    assert store.home.is_dir()


def test_create_makes_the_seed_layout(store: SessionStore) -> None:
    now = datetime(2024, 3, 5, 7, 8, 9, 12)
    created = store.create("my_session_1", now=now)
    root = store.home / "my_session_1"
    assert created == {
        "session_id": "my_session_1",
        "session_creation_date": "2024-03-05",
        "session_creation_time": "07:08:09.000012",
        "dir_paths": {"session_root_dir": str(root), "saved_models_dir": str(root / "session_saved_models")},
        "json_paths": {
            "training_metrics": str(root / "training_metrics.json"),
            "evaluation_metrics": str(root / "evaluation_metrics.json"),
            "model_history": str(root / "session_saved_models" / "model_history.json"),
        },
    }
    groups = ("dir_paths", "json_paths")
    assert all(Path(p).is_absolute() for group in groups for p in created[group].values())
    assert tree(root) == [".rewards/", ".rewards/lock", "evaluation_metrics.json", "session_saved_models/",
                          "session_saved_models/model_history.json", "training_metrics.json"]
    metrics = json.loads((root / "training_metrics.json").read_text())
    assert metrics == {"plot_scores": [], "plot_mean_scores": []}
    assert json.loads((root / "evaluation_metrics.json").read_text()) == {
        "training": {"1": {}, "2": {}, "3": {}}, "evaluation": {"1": {}}}
    history = json.loads((root / "session_saved_models" / "model_history.json").read_text())
    assert history == {"last_created": {}, "last_trained": {}}


def test_after_everything_is_written_only_the_five_json_files_are_at_the_top(store: SessionStore) -> None:
    store.create("s")
    store.write_env_params("s", EnvParams())
    store.write_agent_params("s", AgentParams())
    store.write_training_params("s", TrainingParams())
    paths = store.paths("s")
    atomic_write_bytes(paths.model, b"weights")
    paths.checkpoints.mkdir()
    atomic_write_bytes(paths.resume_checkpoint, b"resume")
    assert sorted(p.name for p in paths.root.iterdir() if p.is_file()) == FIVE
    assert paths.resume_checkpoint == paths.root / "session_saved_models" / "checkpoints" / "resume.pth"
    assert paths.lock.parent == paths.state == paths.root / ".rewards"
    assert all(store.read("s", name) for name in DOCUMENTS)


def test_paths_never_leave_home(store: SessionStore, tmp_path: Path) -> None:
    paths = store.paths("abc")
    assert paths.root == store.home / "abc"
    (tmp_path / "outside").mkdir()
    store.home.mkdir()
    (store.home / "link").symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(SessionError, match="not a folder inside"):
        store.paths("link")
    assert "link" not in store.list_sessions()


def test_create_twice_is_refused(store: SessionStore) -> None:
    store.create("twice")
    with pytest.raises(SessionExists, match="'twice' already exists") as caught:
        store.create("twice")
    assert caught.value.session_id == "twice"


@pytest.mark.parametrize(
    "bad", ["../x", "a/b", "", "x" * 65, "abc\n", "é", None, "..", "a b", "/tmp/x", "a.json", 5, b"abc"]
)
def test_invalid_ids_are_refused_and_nothing_is_created(
    store: SessionStore, tmp_path: Path, bad: Any
) -> None:
    before = tree(tmp_path)
    with pytest.raises(InvalidSessionId) as caught:
        validate_session_id(bad)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value) == f"session id {bad!r} is not valid: use 1-64 letters, digits or underscores"
    assert caught.value.session_id == bad
    for action in (store.create, store.delete, store.exists, store.paths, store.all_params,
                   lambda s: store.read(s, "env_params"), lambda s: store.write(s, "env_params", {})):
        with pytest.raises(InvalidSessionId):
            action(bad)
    assert tree(tmp_path) == before


def test_longest_and_simplest_ids_are_accepted(store: SessionStore) -> None:
    for good in ("x" * 64, "a", "Session_42", "_"):
        store.create(good)
    assert store.list_sessions() == sorted(["x" * 64, "a", "Session_42", "_"])


def test_delete_removes_the_folder(store: SessionStore) -> None:
    store.create("gone")
    store.write_env_params("gone", EnvParams())
    store.delete("gone")
    assert not store.exists("gone")
    assert list(store.home.iterdir()) == []
    with pytest.raises(SessionNotFound) as caught:
        store.delete("gone")
    assert str(caught.value).startswith("there is no session 'gone'")
    assert isinstance(caught.value, KeyError)
    store.create("gone")  # the id is free again
    assert store.read("gone", "env_params") == {}


def test_list_sessions_ignores_junk(store: SessionStore) -> None:
    store.create("b_session")
    store.create("a_session")
    (store.home / "empty_folder").mkdir()
    (store.home / "bad-name").mkdir()
    (store.home / "bad-name" / "env_params.json").write_text("{}")
    (store.home / "notes.txt").write_text("hello")
    (store.home / "file_named_like_id").write_text("x")
    (store.home / ".hidden").mkdir()
    old = store.home / "old_style"
    old.mkdir()
    (old / "agent_params.json").write_text("{}")
    assert store.list_sessions() == ["a_session", "b_session", "old_style"]
    assert not store.exists("empty_folder")
    with pytest.raises(SessionNotFound):
        store.read("empty_folder", "env_params")


def test_documents_read_and_write(store: SessionStore) -> None:
    store.create("s")
    assert store.read("s", "env_params") == {}
    assert store.all_params("s") == {
        "env_params": {}, "agent_params": {}, "training_params": {},
        "training_metrics": {"plot_scores": [], "plot_mean_scores": []},
        "evaluation_metrics": {"training": {"1": {}, "2": {}, "3": {}}, "evaluation": {"1": {}}},
    }
    store.write("s", "training_metrics", {"plot_scores": [1, 2], "plot_mean_scores": [1, 1.5]})
    assert store.read("s", "training_metrics")["plot_scores"] == [1, 2]
    with pytest.raises(ValueError, match="unknown session document 'secrets'"):
        store.read("s", "secrets")
    with pytest.raises(ValueError):
        store.write("s", "../../x", {})
    with pytest.raises(SessionNotFound):
        store.read("nobody", "env_params")
    with pytest.raises(SessionNotFound):
        store.write("nobody", "env_params", {})
    assert not (store.home / "nobody").exists()


def test_update_in_place_or_by_returning_a_new_dict(store: SessionStore) -> None:
    store.create("s")
    assert store.update("s", "env_params", lambda d: d.update(car_speed=5)) == {"car_speed": 5}
    assert store.update("s", "env_params", lambda d: {"car_speed": d["car_speed"] + 1}) == {"car_speed": 6}
    assert store.read("s", "env_params") == {"car_speed": 6}


def test_a_corrupt_document_is_a_clear_error(store: SessionStore) -> None:
    store.create("s")
    store.paths("s").env_params.write_text("{not json")
    with pytest.raises(SessionError, match=r"env_params\.json is not valid JSON"):
        store.read("s", "env_params")
    assert read_json(store.home / "missing.json", default=[]) == []


def test_write_agent_params_stores_values_as_sent_and_sets_last_created(store: SessionStore) -> None:
    store.create("s")
    store.update("s", "model_history", lambda h: h.update(last_trained={"record": 12}))
    sent = AgentParams(model_configuration="[[5,49],[49,3]]", learning_rate=0.001, loss_fn="MAE",
                       optimizer="RMSprop", gamma=90, epsilon=20, num_episodes=50)
    history = store.write_agent_params("s", sent, now=datetime(2024, 1, 2, 3, 4, 5, 6))
    stored = json.loads(store.paths("s").agent_params.read_text())
    assert stored == {"model_configuration": "[[5,49],[49,3]]", "learning_rate": 0.001, "loss_fn": "mae",
                      "optimizer": "rmsprop", "gamma": 90, "epsilon": 20, "num_episodes": 50}
    assert isinstance(stored["gamma"], int)
    assert history == {
        "last_created": {"date": "2024-01-02", "time": "03:04:05.000006", "loss": "mae",
                         "optimizer": "rmsprop", "gamma": 90, "epsilon": 20,
                         "model_config": "[[5,49],[49,3]]"},
        "last_trained": {"record": 12},
    }
    assert store.read("s", "model_history") == history

    as_list = store.write_agent_params("s", AgentParams(model_configuration=[[5, 8], [8, 3]], gamma=0.9))
    assert as_list["last_created"]["model_config"] == [[5, 8], [8, 3]]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", as_list["last_created"]["date"])
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{6}", as_list["last_created"]["time"])
    assert store.read("s", "agent_params")["gamma"] == 0.9


def test_a_subclass_with_session_id_writes_only_the_parameters(store: SessionStore) -> None:
    class Request(EnvParams):
        session_id: str

    store.create("s")
    store.write_env_params("s", Request(session_id="s", environment_world=2, mode="Evaluation"))
    assert store.read("s", "env_params") == {"environment_name": "car-race", "environment_world": 2,
                                             "mode": "evaluation", "car_speed": 20}


def test_write_reward_function_replaces_only_the_function(store: SessionStore) -> None:
    store.create("s")
    source = "def reward_function(params):\n    return 2.0\n"
    assert store.write_reward_function("s", source) == {
        "learning_algorithm": "dqn", "enable_wandb": False, "reward_function": source}
    store.write_training_params("s", TrainingParams(enable_wandb=1))
    store.write_reward_function("s", source)
    assert store.read("s", "training_params") == {
        "learning_algorithm": "dqn", "enable_wandb": True, "reward_function": source}
    with pytest.raises(ParameterError, match="line 2"):
        store.write_reward_function("s", "def reward_function(params):\n    return 1 / 0\n")
    assert store.read("s", "training_params")["reward_function"] == source


class Unserialisable:
    """json.dump writes the keys before this one, then fails: a crash half-way through a write."""


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "doc.json"
    atomic_write_json(path, {"version": 1})
    with pytest.raises(TypeError, match="not JSON serializable"):
        atomic_write_json(path, {"version": 2, "padding": "x" * 10_000, "bad": Unserialisable()})
    assert json.loads(path.read_text()) == {"version": 1}
    assert os.listdir(tmp_path) == ["doc.json"]

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk gone"):
        atomic_write_json(path, {"version": 3})
    with pytest.raises(OSError, match="disk gone"):
        atomic_write_bytes(tmp_path / "model.pth", b"weights")
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"version": 1}
    assert os.listdir(tmp_path) == ["doc.json"]


def test_nan_is_refused_and_the_store_is_untouched(store: SessionStore) -> None:
    store.create("s")
    with pytest.raises(ValueError):
        store.write("s", "training_metrics", {"plot_scores": [float("nan")]})
    assert store.read("s", "training_metrics") == {"plot_scores": [], "plot_mean_scores": []}
    assert sorted(p.name for p in store.paths("s").root.iterdir() if p.is_file()) == [
        "evaluation_metrics.json", "training_metrics.json"]


def test_the_temporary_file_never_looks_like_a_session_file(tmp_path: Path, monkeypatch: Any) -> None:
    seen: list[str] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        seen.append(Path(src).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    atomic_write_json(tmp_path / "env_params.json", {})
    assert len(seen) == 1
    assert seen[0].startswith(".") and seen[0].endswith(".tmp")
    assert os.listdir(tmp_path) == ["env_params.json"]


def _increment(document: dict) -> None:
    document["count"] = document.get("count", 0) + 1


def _worker(home: str, times: int) -> None:
    store = SessionStore(home)
    for _ in range(times):
        store.update("shared", "training_metrics", _increment)


def test_concurrent_updates_from_two_processes_lose_nothing(store: SessionStore) -> None:
    store.create("shared")
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    workers = [context.Process(target=_worker, args=(str(store.home), 200)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert store.read("shared", "training_metrics")["count"] == 400


def test_concurrent_updates_from_two_threads_lose_nothing(store: SessionStore) -> None:
    store.create("shared")
    # Two stores, as two request handlers might have: the lock is per session, not per store object.
    workers = [threading.Thread(target=_worker, args=(str(store.home), 200)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert store.read("shared", "training_metrics")["count"] == 400


def test_concurrent_creators_one_wins(store: SessionStore) -> None:
    results: list[str] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        try:
            store.create("race")
            results.append("created")
        except SessionExists:
            results.append("exists")

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == ["created"] + ["exists"] * 7


def test_lock_is_exclusive_and_refuses_a_missing_session(store: SessionStore) -> None:
    store.create("s")
    entered = threading.Event()
    order: list[str] = []

    def other() -> None:
        entered.set()
        with store.lock("s"):
            order.append("other")

    with store.lock("s") as paths:
        assert paths.lock.exists()
        thread = threading.Thread(target=other)
        thread.start()
        entered.wait(5)
        thread.join(0.2)
        order.append("first")
    thread.join(5)
    assert order == ["first", "other"]
    with pytest.raises(SessionNotFound), store.lock("missing"):
        pass
    assert not (store.home / "missing").exists()


def test_session_files_get_ordinary_permissions(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    store.create("perm")
    mask = os.umask(0)
    os.umask(mask)
    for path in (store.paths("perm").training_metrics, store.paths("perm").model_history):
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask


# ----- standings: what the leaderboards read (issue 14, findings 5 and 7) ---------------------------------
def evaluation(record: float, trials: int = 1, laps: int = 0) -> dict[str, Any]:
    return {"num_trials": trials, "record": record, "mean_score": record, "laps_completed": laps,
            "mean_progress": 40.0, "total_elapsed_time": 0.25}


def test_record_evaluation_writes_the_document_and_a_small_finite_standing(store: SessionStore) -> None:
    store.create("huge")
    assert store.standing("huge") is None
    store.record_evaluation("huge", "training", "1", evaluation(1.7e308))
    document = store.record_evaluation("huge", "evaluation", "1", evaluation(1.7e308, laps=1))
    assert document["evaluation"]["1"]["record"] == 1.7e308
    assert document["training"]["total_elapsed_time"] == 0.25
    assert store.read("huge", "evaluation_metrics") == document
    standing = store.standing("huge")  # 1.7e308 + 1.7e308 is infinite: the largest float instead
    assert standing == {"score": 1.7976931348623157e308, "record": 1.7e308, "laps_completed": 1,
                        "mean_progress": 40.0, "num_trials": 1, "best_lap_time": None,  # not timed
                        "best_lap_ratio": None, "reference_lap_time": None, "car": None,
                        "algorithm": None}
    json.dumps(standing, allow_nan=False)
    assert store.paths("huge").standing.stat().st_size < 1024
    top_level = {path.stem for path in store.paths("huge").root.glob("*.json")}
    assert top_level == {"training_metrics", "evaluation_metrics"}  # the standing is in .rewards/


def test_the_standing_is_read_without_the_evaluation_document(store: SessionStore) -> None:
    store.create("big")
    store.record_evaluation("big", "evaluation", "1", evaluation(12.5, trials=5))
    # Whatever the document becomes (60 MB, or not JSON at all), the standing does not read it.
    store.paths("big").evaluation_metrics.write_text("[" * 100_000)
    assert store.standing("big")["score"] == 2.5


def test_a_session_evaluated_before_standings_is_summarized_once(store: SessionStore) -> None:
    store.create("old")
    store.update("old", "evaluation_metrics", lambda document: document["evaluation"].update(
        {"1": evaluation(10.0, trials=2), "random:7": evaluation(999.0)}))
    assert not store.paths("old").standing.exists()
    assert store.standing("old")["score"] == 5.0  # numbered tracks only, as final_eval_score counts them
    assert store.paths("old").standing.exists()
    store.create("too_big")
    store.paths("too_big").evaluation_metrics.write_text(json.dumps(
        {"evaluation": {"1": evaluation(10.0)}, "pad": " " * 2**20}))
    assert store.standing("too_big") is None  # evaluate it again to rank


# -- the cache of parsed documents ------------------------------------------------------------------------


@pytest.fixture
def parses(monkeypatch: Any) -> list[str]:
    """The files parsed from now on; every file counts as settled, so that the cache keeps it at once."""
    parsed: list[str] = []
    parse = store_module._parse

    def counting(raw: bytes, path: Path) -> Any:
        parsed.append(Path(path).name)
        return parse(raw, path)

    monkeypatch.setattr(store_module, "_parse", counting)
    monkeypatch.setattr(store_module, "SETTLED_NS", 0)
    return parsed


def _another_process(code: str, path: Path, *args: str) -> None:
    """Run ``code`` in a new Python process with ``path`` as sys.argv[1], after a pause: the change gets
    another timestamp tick than the cached file (the cache waits SETTLED_NS for that; the tests do not)."""
    time.sleep(0.05)
    subprocess.run([sys.executable, "-c", code, str(path), *args], check=True, timeout=60)


REPLACE = """import os, sys
path, text, mtime = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(path + ".new", "w") as handle:
    handle.write(text)
os.replace(path + ".new", path)
os.utime(path, ns=(mtime, mtime))
"""
"""An atomic rewrite by another program: a new inode, with the old file's size and modification time."""

REWRITE_IN_PLACE = """import os, sys
path, text, mtime = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(path, "r+") as handle:
    handle.truncate(0)
    handle.write(text)
os.utime(path, ns=(mtime, mtime))
"""
"""An editor saving in place: the same inode, keeping the old modification time (as ``cp -p`` does)."""


def test_an_unchanged_document_is_parsed_once(store: SessionStore, parses: list[str]) -> None:
    store.create("cached")
    store.write("cached", "env_params", {"car_speed": 20})
    assert store.read("cached", "env_params") == {"car_speed": 20}
    assert store.read("cached", "env_params") == {"car_speed": 20}
    assert store.all_params("cached")["env_params"] == {"car_speed": 20}
    assert parses.count("env_params.json") == 1


def test_a_fresh_file_is_parsed_at_every_read(store: SessionStore, monkeypatch: Any) -> None:
    # Within SETTLED_NS of its last change, a file could change again with the same timestamps.
    parsed: list[str] = []
    parse = store_module._parse
    monkeypatch.setattr(store_module, "_parse", lambda raw, path: parsed.append(path) or parse(raw, path))
    store.create("fresh")
    for _ in range(3):
        store.read("fresh", "training_metrics")
    assert len(parsed) == 3


def test_returned_documents_cannot_change_the_cache(store: SessionStore, parses: list[str]) -> None:
    store.create("mutable")
    store.write("mutable", "training_metrics", {"plot_scores": [1, 2], "nested": {"a": [{"b": 1}]}})
    expected = {"plot_scores": [1, 2], "nested": {"a": [{"b": 1}]}}
    for read in (lambda: store.read("mutable", "training_metrics"),
                 lambda: store.all_params("mutable")["training_metrics"]):
        document = read()
        document["plot_scores"].append(3)
        document["nested"]["a"][0]["b"] = 2
        document["nested"]["c"] = 1
        document["new"] = True
        assert read() == expected
    assert parses.count("training_metrics.json") == 1  # the copies came from the cache
    assert json.loads(store.all_params_json("mutable"))["training_metrics"] == expected
    assert json.loads(store.all_sessions_json())["mutable"]["training_metrics"] == expected


def test_an_update_changes_its_own_copy_and_is_seen(store: SessionStore, parses: list[str]) -> None:
    store.create("updated")
    store.write("updated", "training_metrics", {"plot_scores": [1]})
    assert store.read("updated", "training_metrics") == {"plot_scores": [1]}
    time.sleep(0.05)
    stored = store.update("updated", "training_metrics", lambda document: document["plot_scores"].append(2))
    assert stored == {"plot_scores": [1, 2]}
    assert store.read("updated", "training_metrics") == {"plot_scores": [1, 2]}
    assert json.loads(store.all_sessions_json())["updated"]["training_metrics"] == {"plot_scores": [1, 2]}


@pytest.mark.parametrize("program", [REPLACE, REWRITE_IN_PLACE], ids=["atomic-rename", "in-place"])
def test_a_write_by_another_process_is_seen(store: SessionStore, parses: list[str], program: str) -> None:
    store.create("shared")
    store.write("shared", "env_params", {"car_speed": 20})
    path = store.paths("shared").env_params
    assert store.read("shared", "env_params") == {"car_speed": 20}
    assert json.loads(store.all_sessions_json())["shared"]["env_params"] == {"car_speed": 20}
    before = path.stat()
    # The atomic rename keeps the size; the rewrite in place changes it. Both keep the modification time.
    text = '{\n  "car_speed": 30\n}\n' if program is REPLACE else '{"car_speed": 300}'
    assert (len(text) == before.st_size) == (program is REPLACE)
    _another_process(program, path, text, str(before.st_mtime_ns))
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    assert (path.stat().st_ino == before.st_ino) == (program is REWRITE_IN_PLACE)
    expected = {"car_speed": 30 if program is REPLACE else 300}
    assert store.read("shared", "env_params") == expected
    assert store.all_params("shared")["env_params"] == expected
    assert json.loads(store.all_params_json("shared"))["env_params"] == expected
    assert json.loads(store.all_sessions_json())["shared"]["env_params"] == expected


def test_a_session_deleted_and_made_again_has_its_new_files(store: SessionStore, parses: list[str]) -> None:
    store.create("again")
    store.write("again", "training_metrics", {"plot_scores": [5], "plot_mean_scores": [5]})
    store.write("again", "env_params", {"car_speed": 20})
    assert store.all_params("again")["env_params"] == {"car_speed": 20}
    assert json.loads(store.all_sessions_json())["again"]["training_metrics"]["plot_scores"] == [5]
    store.delete("again")
    assert store.all_sessions_json() == b"{}"
    time.sleep(0.05)
    store.create("again")
    store.write("again", "env_params", {"car_speed": 30})  # the same size as before
    everything = store.all_params("again")
    assert everything["env_params"] == {"car_speed": 30}
    assert everything["training_metrics"] == {"plot_scores": [], "plot_mean_scores": []}
    assert json.loads(store.all_sessions_json())["again"] == everything


def test_the_encoded_answers_are_those_of_the_documents(store: SessionStore, parses: list[str]) -> None:
    store.create("plain")
    store.write("plain", "env_params", {"text": "é", "number": 1.5, "none": None})
    store.create("hostile")  # NaN, infinity and a lone surrogate, written by hand: null and U+FFFD
    store.paths("hostile").training_metrics.write_text('{"plot_scores": [NaN, -Infinity, 1], "t": "\\ud800"}')
    store.create("empty")
    for name in FIVE:
        store.paths("empty").root.joinpath(name).unlink(missing_ok=True)
    (store.home / "junk").mkdir()
    (store.home / "link").symlink_to(store.paths("plain").root)
    assert store.read("hostile", "training_metrics")["plot_scores"][0] != 0  # NaN, read as it is
    for _ in range(2):  # parsed, then cached
        listed = {name: store.all_params(name) for name in store.list_sessions()}
        assert store.all_sessions_json() == dumps(listed)
        for name in ("plain", "hostile", "empty"):
            assert store.all_params_json(name) == dumps(store.all_params(name))
    assert list(json.loads(store.all_sessions_json())) == ["empty", "hostile", "plain"]
    with pytest.raises(SessionNotFound):
        store.all_params_json("junk")


def test_the_cache_is_bounded(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(store_module, "SETTLED_NS", 0)
    paths = [tmp_path / f"{number}.json" for number in range(4)]
    for path in paths:
        atomic_write_json(path, {"pad": "x" * 100})
    by_count = DocumentCache(max_entries=2)
    for path in paths[:3]:
        by_count.document(path, "s")
    assert len(by_count) == 2
    by_count.document(paths[1], "s")  # the least recently used goes: 2.json, not 1.json
    by_count.document(paths[3], "s")
    by_count.document(tmp_path / "missing.json", "s")
    assert sorted(Path(path).name for path in by_count._entries) == ["1.json", "3.json"]
    size = paths[0].stat().st_size
    by_bytes = DocumentCache(max_bytes=3 * size)
    for path in paths:
        by_bytes.document(path, "s")
    assert len(by_bytes) == 3


def test_readers_and_writers_in_threads_see_whole_documents(store: SessionStore, parses: list[str]) -> None:
    store.create("busy")
    store.write("busy", "training_metrics", {"plot_scores": []})
    failures: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(200):
                scores = store.read("busy", "training_metrics")["plot_scores"]
                assert scores == list(range(len(scores)))
                listed = json.loads(store.all_sessions_json())["busy"]["training_metrics"]["plot_scores"]
                assert listed == list(range(len(listed)))
        except BaseException as exc:  # reported below
            failures.append(exc)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    for count in range(1, 40):
        store.write("busy", "training_metrics", {"plot_scores": list(range(count))})
    for reader in readers:
        reader.join(60)
    assert failures == []
    time.sleep(0.05)
    store.write("busy", "training_metrics", {"plot_scores": [0]})
    assert store.read("busy", "training_metrics") == {"plot_scores": [0]}
