"""Export and import of sessions: a faithful round trip, and hostile archives refused with nothing written."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import struct
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from click.testing import Result
from typer.testing import CliRunner

from rewards_api.agents.dqn import DQNSettings, QNetwork
from rewards_api.archive import (
    DOCUMENT_LIMITS,
    MANIFEST_NAME,
    MAX_DOCUMENT_BYTES,
    ArchiveError,
    ArchiveTooLarge,
    archive_members,
    export_session,
    import_session,
)
from rewards_api.cli import app
from rewards_api.cloud import local_leaderboard
from rewards_api.params import AgentParams, EnvParams, TrainingParams
from rewards_api.runs.evaluate import evaluate
from rewards_api.runs.train import Trainer, TrainingOptions
from rewards_api.store import SessionExists, SessionStore

FAST = TrainingOptions(num_cars=8, seed=0, settings=DQNSettings(learning_starts=64, batch_size=32))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> SessionStore:
    """A home with session "racer": trained a few episodes (model, checkpoint, metrics) and evaluated."""
    store = SessionStore(tmp_path_factory.mktemp("source") / "home")
    store.create("racer")
    store.write_env_params("racer", EnvParams(environment_world=2))
    store.write_agent_params("racer", AgentParams(num_episodes=8, model_configuration="[[5, 9], [9, 3]]"))
    store.write_training_params("racer", TrainingParams())
    Trainer(store, "racer", FAST).run()
    evaluate(store, "racer", mode="training", track=2, num_trials=1)
    return store


@pytest.fixture(scope="module")
def exported(trained: SessionStore, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    buffer = io.BytesIO()
    export_session(trained, "racer", buffer)
    return buffer.getvalue()


def session_files(root: Path) -> dict[str, bytes]:
    """Every file of a session folder but its lock, by path relative to the folder."""
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*"))
            if path.is_file() and ".rewards" not in path.parts}


def test_export_then_import_on_another_home_gives_the_same_session(trained: SessionStore, tmp_path: Path
                                                                   ) -> None:
    archive = tmp_path / "racer.zip"
    manifest = export_session(trained, "racer", archive)
    assert manifest["format"] == "rewards-session" and manifest["session_id"] == "racer"
    with zipfile.ZipFile(archive) as opened:
        names = set(opened.namelist())
    # The whole session: the six documents, the best model and the resume checkpoint; never the lock.
    assert names == {MANIFEST_NAME, *archive_members()}
    assert not any(".rewards" in name or name.endswith(".tmp") for name in names)

    other = SessionStore(tmp_path / "elsewhere")
    assert import_session(other, archive) == "racer"
    assert other.list_sessions() == ["racer"]
    assert session_files(other.paths("racer").root) == session_files(trained.paths("racer").root)
    assert not [entry.name for entry in other.home.iterdir() if entry.name.startswith(".")]

    # The imported model drives, and the resume checkpoint loads without unpickling code.
    metrics = evaluate(other, "racer", mode="training", track=2, num_trials=1)
    assert metrics["num_trials"] == 1
    assert other.read("racer", "evaluation_metrics")["training"]["2"] == metrics
    checkpoint = torch.load(other.paths("racer").resume_checkpoint, weights_only=True)
    assert checkpoint["episodes"] == 8


def test_an_existing_id_is_refused_and_left_alone_and_as_gives_a_new_id(
    trained: SessionStore, exported: bytes, tmp_path: Path
) -> None:
    before = session_files(trained.paths("racer").root)
    with pytest.raises(SessionExists, match=r"already exists.*--as NEW_ID.*session_id=NEW_ID"):
        import_session(trained, io.BytesIO(exported))
    assert session_files(trained.paths("racer").root) == before

    home = SessionStore(tmp_path / "home")
    assert import_session(home, io.BytesIO(exported), "copy_1") == "copy_1"
    assert session_files(home.paths("copy_1").root) == before
    with pytest.raises(ValueError, match="not valid"):
        import_session(home, io.BytesIO(exported), "../evil")


# ----- hostile archives -----------------------------------------------------------------------------------


Member = tuple[zipfile.ZipInfo | str, bytes]


def rebuild(exported: bytes, extra: list[Member] = (), drop: tuple[str, ...] = (),
            replace: dict[str, bytes] | None = None, manifest: bool = True, relist: bool = True) -> bytes:
    """The exported archive with members dropped, replaced or added; its manifest lists them all with
    their true checksums (unless not ``relist``), so that only the flaw under test is wrong."""
    replace = replace or {}
    members: list[Member] = []
    with zipfile.ZipFile(io.BytesIO(exported)) as source:
        stored = json.loads(source.read(MANIFEST_NAME))
        for name in source.namelist():
            if name != MANIFEST_NAME and name not in drop:
                members.append((name, replace.get(name, source.read(name))))
    members.extend(extra)
    stored["files"] = stored["files"] if not relist else {
        (entry if isinstance(entry, str) else entry.filename): {"size": len(data),
                                                                "sha256": hashlib.sha256(data).hexdigest()}
        for entry, data in members
    }
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        warnings.simplefilter("ignore")  # "Duplicate name": one case wants a duplicate
        if manifest:
            archive.writestr(MANIFEST_NAME, json.dumps(stored))
        for entry, data in members:
            archive.writestr(entry, data)
    return buffer.getvalue()


def declare_size(archive: bytes, name: str, size: int) -> bytes:
    """The archive with ``name``'s uncompressed size in the central directory changed to ``size``."""
    patched = bytearray(archive)
    position = 0
    while (position := archive.find(b"PK\x01\x02", position)) >= 0:
        length = struct.unpack_from("<H", archive, position + 28)[0]
        if archive[position + 46 : position + 46 + length] == name.encode():
            struct.pack_into("<I", patched, position + 24, size)
            return bytes(patched)
        position += 4
    raise AssertionError(f"{name} is not in the archive")


def link(name: str) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(name)
    entry.external_attr = (stat.S_IFLNK | 0o777) << 16
    return entry


class RunsCode:
    """Pickles to a call of ``os.system``: what a booby-trapped model.pth would do on a plain torch.load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def saved(value: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """A 65 KB archive whose training_metrics.json expands to 65 MB (more than a document may)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST_NAME, json.dumps({"format": "rewards-session", "format_version": 1,
                                                    "session_id": "bomb", "files": {}}))
        with archive.open("training_metrics.json", "w") as member:
            for _ in range(MAX_DOCUMENT_BYTES // 2**20 + 1):
                member.write(b" " * 2**20)
    return buffer.getvalue()


HOSTILE = {
    "zip slip": (lambda e, m: rebuild(e, [("../escaped.json", b"{}")]), ArchiveError, "outside the session"),
    "deep zip slip": (lambda e, m: rebuild(e, [("session_saved_models/../../escaped.json", b"{}")]),
                      ArchiveError, "outside the session"),
    "absolute path": (lambda e, m: rebuild(e, [(str(m.parent / "escaped.json"), b"{}")]), ArchiveError,
                      "absolute path"),
    "drive letter": (lambda e, m: rebuild(e, [("C:/escaped.json", b"{}")]), ArchiveError, "absolute path"),
    "backslashes": (lambda e, m: rebuild(e, [("..\\escaped.json", b"{}")]), ArchiveError, "backslashes"),
    "symlink": (lambda e, m: rebuild(e, [(link("escaped.json"), b"/etc/passwd")]), ArchiveError,
                "symbolic link"),
    "symlink over a session file": (
        lambda e, m: rebuild(e, [(link("env_params.json"), b"/etc/passwd")], drop=("env_params.json",)),
        ArchiveError, "symbolic link"),
    "unknown file": (lambda e, m: rebuild(e, [("notes.txt", b"hello")]), ArchiveError,
                     "not a file a session holds"),
    "duplicate member": (lambda e, m: rebuild(e, [("env_params.json", b"{}")]), ArchiveError, "twice"),
    "too many entries": (lambda e, m: rebuild(e, [(f"folder_{n}/", b"") for n in range(5000)]),
                         ArchiveTooLarge, r"has 5,0\d\d entries"),
    "declared 3 GB": (lambda e, m: declare_size(e, "training_metrics.json", 3_000_000_000), ArchiveTooLarge,
                      "would expand to 3,000,000,000 bytes"),
    "understated size": (lambda e, m: declare_size(e, "training_metrics.json", 10), ArchiveError,
                         "damaged"),
    "no manifest": (lambda e, m: rebuild(e, manifest=False), ArchiveError, "no manifest.json"),
    "tampered file": (
        lambda e, m: rebuild(e, replace={"env_params.json": b'{"car_speed": 60}'}, relist=False),
        ArchiveError, "does not match its checksum"),
    "missing file": (lambda e, m: rebuild(e, drop=("session_saved_models/model.pth",), relist=False),
                     ArchiveError, "misses 'session_saved_models/model.pth'"),
    "bad json": (lambda e, m: rebuild(e, replace={"env_params.json": b'{"mode": "training",'}), ArchiveError,
                 "'env_params.json' is not valid JSON"),
    "nan in json": (lambda e, m: rebuild(e, replace={"training_metrics.json": b'{"plot_scores": [NaN]}'}),
                    ArchiveError, "NaN is not a JSON value"),
    "bad parameters": (lambda e, m: rebuild(e, replace={"agent_params.json": b'{"learning_rate": 7}'}),
                       ArchiveError, "learning_rate"),
    "pickled code as the model": (
        lambda e, m: rebuild(e, replace={"session_saved_models/model.pth": saved(RunsCode(m))}),
        ArchiveError, "not a model this server can load safely"),
    "pickled code as the checkpoint": (
        lambda e, m: rebuild(e, replace={"session_saved_models/checkpoints/resume.pth":
                                         saved({"agent": RunsCode(m)})}),
        ArchiveError, "not a model this server can load safely"),
    "model of another shape": (
        lambda e, m: rebuild(e, replace={"session_saved_models/model.pth":
                                         saved(QNetwork([(5, 4), (4, 3)]).state_dict())}),
        ArchiveError, "does not fit"),
    "not a zip": (lambda e, m: b"PK\x03\x04 but not really a zip", ArchiveError, "not a zip archive"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_archive_is_refused_and_nothing_is_written(case: str, exported: bytes, tmp_path: Path
                                                             ) -> None:
    marker = tmp_path / "escaped.json"  # where an escape or pickled code would write
    build, error, message = HOSTILE[case]
    data = build(exported, marker)
    store = SessionStore(tmp_path / "home")
    store.create("kept")
    before = session_files(store.paths("kept").root)
    with pytest.raises(error, match=message):
        import_session(store, io.BytesIO(data), "victim")
    assert not marker.exists()
    assert store.list_sessions() == ["kept"] and not store.exists("victim")
    assert sorted(entry.name for entry in store.home.iterdir()) == ["kept"]  # no half-imported folder
    assert session_files(store.paths("kept").root) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["home"]


def test_a_zip_bomb_is_refused_before_it_is_expanded(bomb: bytes, tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "home")
    expanded = (MAX_DOCUMENT_BYTES // 2**20 + 1) * 2**20
    with pytest.raises(ArchiveTooLarge, match=rf"training_metrics\.json' would expand to {expanded:,} bytes"):
        import_session(store, io.BytesIO(bomb))
    assert not store.home.exists() or not list(store.home.iterdir())


def with_document(exported: bytes, name: str, data: bytes) -> bytes:
    """The exported archive with member ``name`` replaced by ``data`` (its manifest entry made to match)."""
    source, buffer = zipfile.ZipFile(io.BytesIO(exported)), io.BytesIO()
    manifest = json.loads(source.read(MANIFEST_NAME))
    manifest["files"][name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST_NAME, json.dumps(manifest))
        for member in source.namelist():
            if member != MANIFEST_NAME:
                archive.writestr(member, data if member == name else source.read(member))
    return buffer.getvalue()


def test_each_document_has_its_own_bound_and_a_small_zip_of_a_large_one_is_refused(
        exported: bytes, tmp_path: Path) -> None:
    """Issue 14, finding 7: 65 KB of zip held a 60 MB evaluation_metrics.json, which every leaderboard then
    read. A session's evaluations are a few hundred bytes a track: more than 1 MiB is refused."""
    assert DOCUMENT_LIMITS["evaluation_metrics"] == 2**20 and DOCUMENT_LIMITS["env_params"] <= 2**16
    padding = b" " * DOCUMENT_LIMITS["evaluation_metrics"]
    padded = b'{"training": {}, "evaluation": {}, "pad": "' + padding + b'"}'
    archive = with_document(exported, "evaluation_metrics.json", padded)
    assert len(archive) < 64 * 2**10
    store = SessionStore(tmp_path / "home")
    with pytest.raises(ArchiveTooLarge, match=r"evaluation_metrics\.json' would expand to .* more than the "
                       r"1,048,576 allowed"):
        import_session(store, io.BytesIO(archive))
    assert not store.home.exists() or not list(store.home.iterdir())


@pytest.mark.parametrize("number", ["1e999", "-1e999", "1" * 400])
def test_numbers_beyond_a_float_are_refused(exported: bytes, tmp_path: Path, number: str) -> None:
    """Issue 14, finding 5: NaN and Infinity were refused, but not 1e999 (infinite once read)."""
    metrics = ('{"evaluation": {"1": {"num_trials": 1, "record": ' + number
               + ', "laps_completed": 1, "mean_progress": 100.0}}}').encode()
    store = SessionStore(tmp_path / "home")
    with pytest.raises(ArchiveError, match=r"evaluation_metrics\.json' is not valid JSON .*beyond the range"):
        import_session(store, io.BytesIO(with_document(exported, "evaluation_metrics.json", metrics)))
    assert not store.home.exists() or not list(store.home.iterdir())


def test_imported_evaluations_are_kept_but_rank_only_once_evaluated_here(exported: bytes, tmp_path: Path
                                                                         ) -> None:
    """Issue 14, finding 5: a forged record of 123,456,789 ranked first. The import keeps the file as it
    came, but the session's standing starts empty; an evaluation here ranks it by that evaluation alone."""
    forged = {"training": {"1": {"num_trials": 1, "record": 123456789, "laps_completed": 1,
                                 "mean_progress": 100.0, "total_elapsed_time": 1.0}},
              "evaluation": {"1": {"num_trials": 1, "record": 123456789, "laps_completed": 1,
                                   "mean_progress": 100.0, "total_elapsed_time": 1.0}}}
    store = SessionStore(tmp_path / "home")
    archive = with_document(exported, "evaluation_metrics.json", json.dumps(forged).encode())
    assert import_session(store, io.BytesIO(archive), "forged") == "forged"
    assert store.read("forged", "evaluation_metrics") == forged  # kept as it came, for the owner to see
    assert store.standing("forged") is None
    assert local_leaderboard(store.home) == []

    metrics = evaluate(store, "forged", mode="evaluation", track=1, num_trials=1)
    standing = store.standing("forged")
    assert standing["score"] == pytest.approx(metrics["record"]) and standing["num_trials"] == 1
    assert store.read("forged", "evaluation_metrics")["training"]["1"]["record"] == 123456789
    assert [row.score for row in local_leaderboard(store.home)] == [standing["score"]]


# ----- the command line ---------------------------------------------------------------------------------


def said(result: Result) -> str:
    """What a command printed, with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_export_and_import_commands(trained: SessionStore, tmp_path: Path) -> None:
    runner = CliRunner()
    archive = tmp_path / "racer.zip"
    source = ["--home", str(trained.home)]
    done = runner.invoke(app, [*source, "export", "racer", str(archive)])
    assert done.exit_code == 0, done.output
    assert "Exported session racer" in said(done) and archive.exists()
    again = runner.invoke(app, [*source, "export", "racer", str(archive)])
    assert again.exit_code == 2 and "--force" in said(again)
    assert runner.invoke(app, [*source, "export", "racer", str(archive), "--force"]).exit_code == 0

    target = ["--home", str(tmp_path / "laptop")]
    done = runner.invoke(app, [*target, "import", str(archive)])
    assert done.exit_code == 0, done.output
    assert "as session racer" in said(done)
    refused = runner.invoke(app, [*target, "import", str(archive)])
    assert refused.exit_code == 2 and "--as NEW_ID" in said(refused)
    done = runner.invoke(app, [*target, "import", str(archive), "--as", "racer_2"])
    assert done.exit_code == 0 and SessionStore(tmp_path / "laptop").list_sessions() == ["racer", "racer_2"]
    missing = runner.invoke(app, [*target, "import", str(tmp_path / "nothing.zip")])
    assert missing.exit_code == 2 and "no such file" in said(missing)
