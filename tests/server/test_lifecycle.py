"""Model cards, score charts, export and import over HTTP, on a real server; each user sees only their own."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from conftest import Server
from PIL import Image

from rewards_api.agents.dqn import DQNSettings, QNetwork
from rewards_api.cards import MEAN_COLOUR, SCORE_COLOUR
from rewards_api.params import AgentParams, TrainingParams
from rewards_api.runs.evaluate import evaluate
from rewards_api.runs.train import Trainer, TrainingOptions
from rewards_api.store import SessionStore, atomic_write_bytes
from rewards_api.users import UserRegistry

V1 = "/api/v1"
ZIP = {"Content-Type": "application/zip"}


def fresh_id(prefix: str = "lc") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def trained(server: Server) -> str:
    """A session of the server's owner, trained a few episodes and evaluated on training track 1."""
    session = fresh_id()
    with server.client() as api:
        assert api.post(f"{V1}/create_session", params={"session_id": session}).status_code == 200
        api.post(f"{V1}/write_env_params", json={"session_id": session, "environment_world": 1})
    store = SessionStore(server.home)
    store.write_agent_params(session, AgentParams(num_episodes=8))
    store.write_training_params(session, TrainingParams())
    options = TrainingOptions(num_cars=8, settings=DQNSettings(learning_starts=64, batch_size=32))
    Trainer(store, session, options).run()
    evaluate(store, session, mode="training", track=1, num_trials=1)
    return session


def session_files(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*"))
            if path.is_file() and ".rewards" not in path.parts}


def colour_pixels(png: bytes, colour: tuple[int, int, int]) -> int:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))[30:]  # below the legend
    return int(np.all(pixels == np.array(colour), axis=-1).sum())


def test_the_model_card_and_its_chart(api: httpx.Client, server: Server, trained: str) -> None:
    card = api.get(f"{V1}/model_info", params={"session_id": trained})
    assert card.status_code == 200, card.text
    body = card.json()
    history = SessionStore(server.home).read(trained, "model_history")
    assert body["status"] == 200 and body["session_id"] == trained
    assert body["created"]["date"] == history["last_created"]["date"]
    assert body["last_trained"]["time"] == history["last_trained"]["time"]
    assert body["model"]["layers"] == [[5, 9], [9, 3]] and body["model"]["parameters"] == 84
    assert body["trained_model"] is True and body["episodes_trained"] == 8
    assert body["record"] == history["last_trained"]["record"]
    assert body["evaluation"]["training"]["1"]["num_trials"] == 1
    assert body["evaluation"]["evaluation"]["1"] is None
    assert body["runs"] == history.get("runs", [])
    score = api.get(f"{V1}/final_eval_score", params={"session_id": trained}).json()["score"]
    assert body["final_eval_score"] == score

    chart = api.get(f"{V1}/model_plot.png", params={"session_id": trained})
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(chart.content)).size == (320, 160)
    assert colour_pixels(chart.content, SCORE_COLOUR) > 50 and colour_pixels(chart.content, MEAN_COLOUR) > 50
    larger = api.get(f"{V1}/model_plot.png", params={"session_id": trained, "width": 640, "height": 320})
    assert Image.open(io.BytesIO(larger.content)).size == (640, 320)

    too_wide = api.get(f"{V1}/model_plot.png", params={"session_id": trained, "width": 50_000})
    assert too_wide.status_code == 422 and "width" in too_wide.json()["message"]
    for path in ("model_info", "model_plot.png", "export"):
        missing = api.get(f"{V1}/{path}", params={"session_id": "nobody_here"})
        assert missing.status_code == 404 and "there is no session 'nobody_here'" in missing.json()["message"]
        odd = api.get(f"{V1}/{path}", params={"session_id": "../etc"})
        assert odd.status_code == 422 and odd.json()["errors"][0]["parameter"] == "session_id"


def test_export_then_import_round_trip(api: httpx.Client, server: Server, trained: str) -> None:
    exported = api.get(f"{V1}/export", params={"session_id": trained})
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
    assert exported.headers["content-disposition"] == f'attachment; filename="{trained}.zip"'

    copy = fresh_id("copy")
    imported = api.post(f"{V1}/import", params={"session_id": copy}, content=exported.content, headers=ZIP)
    assert imported.status_code == 200, imported.text
    assert imported.json() == {"status": 200, "session_id": copy, "message": f"session imported as {copy!r}"}
    assert session_files(server.home / copy) == session_files(server.home / trained)
    original = api.get(f"{V1}/get_all_params", params={"session_id": trained}).json()
    assert api.get(f"{V1}/get_all_params", params={"session_id": copy}).json() == original
    assert api.get(f"{V1}/model_info", params={"session_id": copy}).json()["trained_model"] is True

    # An existing id is a 409 that says how to import anyway; what is saved is left alone.
    for params in ({}, {"session_id": copy}):
        before = session_files(server.home / (params.get("session_id") or trained))
        conflict = api.post(f"{V1}/import", params=params, content=exported.content, headers=ZIP)
        assert conflict.status_code == 409 and "?session_id=NEW_ID" in conflict.json()["message"]
        assert session_files(server.home / (params.get("session_id") or trained)) == before


def with_member(archive: bytes, name: str, data: bytes) -> bytes:
    """The archive with one more member, listed in its manifest with its true checksum."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(buffer, "w") as target:
        manifest = json.loads(source.read("manifest.json"))
        manifest["files"][name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        target.writestr("manifest.json", json.dumps(manifest))
        for member in source.namelist():
            if member != "manifest.json":
                target.writestr(member, source.read(member))
        target.writestr(name, data)
    return buffer.getvalue()


def test_hostile_uploads_are_refused_and_nothing_is_written(api: httpx.Client, server: Server, trained: str
                                                            ) -> None:
    exported = api.get(f"{V1}/export", params={"session_id": trained}).content
    before = sorted(path.name for path in server.home.iterdir())
    victim = fresh_id("victim")

    def upload(content: bytes, headers: dict[str, str] = ZIP) -> httpx.Response:
        return api.post(f"{V1}/import", params={"session_id": victim}, content=content, headers=headers)

    slip = upload(with_member(exported, "../../escaped.json", b"{}"))
    assert slip.status_code == 422 and "outside the session" in slip.json()["message"]
    pickled = upload(with_member(exported, "notes.txt", b"hello"))
    assert pickled.status_code == 422 and "not a file a session holds" in pickled.json()["message"]
    assert upload(b"not a zip at all").status_code == 422
    empty = upload(b"")
    assert empty.status_code == 422 and "empty" in empty.json()["message"]
    form = api.post(f"{V1}/import", params={"session_id": victim}, files={"file": ("a.zip", exported)})
    assert form.status_code == 415 and "application/zip" in form.json()["message"]
    odd = api.post(f"{V1}/import", params={"session_id": "../x"}, content=exported, headers=ZIP)
    assert odd.status_code == 422 and odd.json()["errors"][0]["parameter"] == "session_id"

    assert sorted(path.name for path in server.home.iterdir()) == before
    assert not (server.home.parent / "escaped.json").exists()


def test_uploads_have_their_own_bound(api: httpx.Client, server: Server) -> None:
    """Archives are bigger than the 1 MB of any other body, up to max_upload_bytes (64 MB)."""
    session = fresh_id("big")
    store = SessionStore(server.home)
    store.create(session)
    layers = [(5, 512), (512, 768), (768, 3)]
    store.write_agent_params(session, AgentParams(model_configuration=json.dumps(layers)))
    buffer = io.BytesIO()
    torch.save(QNetwork(layers).state_dict(), buffer)
    atomic_write_bytes(store.paths(session).model, buffer.getvalue())
    archive = api.get(f"{V1}/export", params={"session_id": session}).content
    assert len(archive) > 1_000_000
    imported = api.post(f"{V1}/import", params={"session_id": f"{session}_2"}, content=archive, headers=ZIP)
    assert imported.status_code == 200, imported.text

    def chunks() -> Iterator[bytes]:  # 65 MB, sent without a Content-Length
        for _ in range(65):
            yield b"\0" * 1_000_000

    refused = api.post(f"{V1}/import", content=chunks(), headers=ZIP)
    assert refused.status_code == 413
    assert "larger than 64,000,000 bytes" in refused.json()["message"]
    assert "rewards-api import" in refused.json()["message"]
    assert api.get("/health").status_code == 200


def test_another_users_session_is_a_404_and_imports_go_to_the_callers_home(
    api: httpx.Client, server: Server, trained: str
) -> None:
    name = f"lc{uuid.uuid4().hex[:6]}"
    token = UserRegistry(server.home).add(name)
    exported = api.get(f"{V1}/export", params={"session_id": trained}).content
    with server.client(token) as user:
        for path in ("model_info", "model_plot.png", "export"):
            theirs = user.get(f"{V1}/{path}", params={"session_id": trained})
            assert theirs.status_code == 404 and trained in theirs.json()["message"]
        # The same id is free in the user's own home: the import lands there, the owner's is untouched.
        before = session_files(server.home / trained)
        imported = user.post(f"{V1}/import", content=exported, headers=ZIP)
        assert imported.status_code == 200 and imported.json()["session_id"] == trained
        assert (server.home / ".users" / name / trained / "session_saved_models" / "model.pth").exists()
        assert session_files(server.home / trained) == before
        assert user.get(f"{V1}/model_info", params={"session_id": trained}).json()["trained_model"] is True
        assert trained in user.get(f"{V1}/get_all_sessions").json()


def test_the_endpoints_and_their_errors_are_documented(server: Server) -> None:
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    for path, method in (("model_info", "get"), ("model_plot.png", "get"), ("export", "get"),
                         ("import", "post")):
        operation = paths[f"{V1}/{path}"][method]
        assert {"404", "409", "413", "422"} <= set(operation["responses"]), path
    assert "image/png" in paths[f"{V1}/model_plot.png"]["get"]["responses"]["200"]["content"]
    assert "application/zip" in paths[f"{V1}/export"]["get"]["responses"]["200"]["content"]
    assert "application/zip" in paths[f"{V1}/import"]["post"]["requestBody"]["content"]
