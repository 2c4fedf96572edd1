"""Users: names, hashed tokens kept private, revocation, and the folders their sessions live in."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from rewards_api.store import SessionStore, user_home
from rewards_api.users import UserError, UserRegistry, hash_token

COMMAND = str(Path(sys.executable).parent / "rewards-api")


def test_a_token_is_kept_only_as_its_hash_in_a_private_file(tmp_path: Path) -> None:
    registry = UserRegistry(tmp_path)
    token = registry.add("alice")
    text = registry.path.read_text()
    assert token not in text
    assert json.loads(text)["alice"]["token_sha256"] == hash_token(token)
    assert stat.S_IMODE(os.stat(registry.path).st_mode) == 0o600
    assert registry.authenticate(token) == "alice"
    assert registry.authenticate(token + "x") is None
    assert registry.authenticate("") is None


def test_users_get_their_own_folder_that_no_session_id_can_name(tmp_path: Path) -> None:
    registry = UserRegistry(tmp_path)
    registry.add("alice")
    home = user_home(tmp_path, "alice")
    assert home == tmp_path / ".users" / "alice" and home.is_dir()
    owner, alice = SessionStore(tmp_path), SessionStore(home)
    owner.create("s1")
    alice.create("s1")
    assert owner.list_sessions() == ["s1"] and alice.list_sessions() == ["s1"]
    assert owner.paths("s1").root != alice.paths("s1").root


@pytest.mark.parametrize("name", ["", "Alice", "../x", "a/b", ".users", "-x", "x" * 33, "é", "a b", None])
def test_bad_names_are_refused_and_nothing_is_written(tmp_path: Path, name: object) -> None:
    registry = UserRegistry(tmp_path)
    with pytest.raises(UserError, match="not valid"):
        registry.add(name)  # type: ignore[arg-type]
    assert not registry.path.exists()
    if name is not None:  # None is the owner, whose sessions are at the root
        with pytest.raises(ValueError, match="not valid"):
            user_home(tmp_path, name)  # type: ignore[arg-type]


def test_adding_twice_and_removing_a_stranger_are_refused(tmp_path: Path) -> None:
    registry = UserRegistry(tmp_path)
    registry.add("bob")
    with pytest.raises(UserError, match="already exists"):
        registry.add("bob")
    with pytest.raises(UserError, match="no user 'carol'"):
        registry.remove("carol")


def test_a_running_server_sees_added_and_removed_users_without_a_restart(tmp_path: Path) -> None:
    serving = UserRegistry(tmp_path)  # the server's registry, loaded once
    assert serving.authenticate("anything") is None
    cli = UserRegistry(tmp_path)  # another process's
    token = cli.add("alice")
    assert serving.authenticate(token) == "alice"
    sessions = cli.remove("alice")
    assert serving.authenticate(token) is None
    assert sessions.home == tmp_path / ".users" / "alice" and sessions.home.is_dir()  # nothing deleted


def test_the_users_commands(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([COMMAND, "--home", str(tmp_path), "users", *args], capture_output=True,
                              text=True, timeout=60)

    added = run("add", "alice")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    assert UserRegistry(tmp_path).authenticate(token) == "alice"
    listed = run("list")
    assert "alice" in listed.stdout and token not in listed.stdout
    again = run("add", "alice")
    assert again.returncode != 0 and "already exists" in again.stderr
    bad = run("add", "../root")
    assert bad.returncode != 0 and "not valid" in bad.stderr
    removed = run("remove", "alice")
    assert removed.returncode == 0 and "kept" in removed.stdout
    assert UserRegistry(tmp_path).authenticate(token) is None
