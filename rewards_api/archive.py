"""Moving a session between machines: export it as a zip, import such a zip as a new session.

An archive holds the session's files at their paths inside the session folder, plus ``manifest.json``::

    manifest.json                                   {"format", "format_version", "session_id", "exported_at",
                                                     "rewards_version", "files": {name: {"size", "sha256"}}}
    env_params.json  agent_params.json  training_params.json  training_metrics.json  evaluation_metrics.json
    session_saved_models/model_history.json  session_saved_models/model.pth
    session_saved_models/checkpoints/resume.pth

Lock files and temporary files are never exported. An import trusts nothing in the archive: it refuses
member names that are absolute, hold ``..``, backslashes or a drive letter, symbolic links, any file not in
the list above, too many entries, too many bytes once uncompressed (declared sizes are checked first, and
the bytes actually read are counted), a missing or unknown manifest, files that do not match it, JSON that
does not parse or holds numbers beyond a float's range (``1e999``), a document larger than its bound
(:data:`DOCUMENT_LIMITS`), parameters that are not valid, and models that do not load with
``torch.load(..., weights_only=True)`` (which never runs pickled code). The evaluation results an archive
brings are kept in its evaluation_metrics.json but not trusted: the session's standing starts empty
(:meth:`~rewards_api.store.SessionStore.start_untrusted_standing`), so it is ranked only once evaluated on
this server, from those evaluations alone. The files go into a hidden folder
in the home folder, are checked there, and the folder is renamed into place: a session is imported whole or
not at all, and nothing already saved is touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import re
import secrets
import shutil
import stat
import struct
import zipfile
import zlib
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import IO, Any

import pydantic

from . import __version__
from .params import (
    DEFAULT_AGENT_PARAMS,
    MAX_LAYER_SIZE,
    MAX_LAYERS,
    REWARD_CHECKED,
    AgentParams,
    EnvParams,
    TrainingParams,
    first_error_message,
)
from .store import (
    DOCUMENTS,
    MAX_EVALUATION_METRICS_BYTES,
    SessionExists,
    SessionPaths,
    SessionStore,
    atomic_write_bytes,
    validate_session_id,
)

__all__ = [
    "ARCHIVE_FORMAT",
    "DOCUMENT_LIMITS",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "MAX_ARCHIVE_BYTES",
    "MAX_CHECKPOINT_BYTES",
    "MAX_DOCUMENT_BYTES",
    "MAX_ENTRIES",
    "MAX_MODEL_BYTES",
    "ArchiveError",
    "ArchiveTooLarge",
    "archive_members",
    "export_session",
    "import_session",
]

ARCHIVE_FORMAT = "rewards-session"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
MAX_ENTRIES = 32
"""Entries an archive may hold: the session's files and their folders number about a dozen."""
MAX_DOCUMENT_BYTES = 16 * 2**20
"""The largest JSON document once uncompressed: a 100,000-episode history (training_metrics.json, and
model_history.json, which repeats its scores) is a few megabytes. Each document has its own bound:
:data:`DOCUMENT_LIMITS`."""
DOCUMENT_LIMITS: dict[str, int] = {
    "env_params": 64 * 2**10,
    "agent_params": 64 * 2**10,
    "training_params": 4 * 2**20,  # the reward function's source (a request body is at most 1 MB)
    "training_metrics": MAX_DOCUMENT_BYTES,
    "evaluation_metrics": MAX_EVALUATION_METRICS_BYTES,  # a few hundred bytes per evaluated track
    "model_history": MAX_DOCUMENT_BYTES,
}
"""Each JSON document's bound once uncompressed, by name (beyond it, the import is refused with 413)."""
_LARGEST_WEIGHTS = MAX_LAYERS * (MAX_LAYER_SIZE + 1) * MAX_LAYER_SIZE * 4  # float32 weights and biases
MAX_MODEL_BYTES = _LARGEST_WEIGHTS * 3 // 2
"""model.pth of the largest network the parameters allow, with room for PyTorch's container."""
MAX_CHECKPOINT_BYTES = 4 * _LARGEST_WEIGHTS * 3 // 2
"""The resume checkpoint: two networks and Adam's two moments of the largest network, with room."""
MAX_ARCHIVE_BYTES = 512 * 2**20
"""Every member once uncompressed: the largest model, its checkpoint and its documents fit."""
_MAX_MANIFEST_BYTES = 2**20
_MAX_CENTRAL_DIRECTORY_BYTES = 2**20  # MAX_ENTRIES entries take a few kilobytes
_CHUNK = 2**20
_EXPORT_HINT = "make the archive with `rewards-api export SESSION FILE.zip` (or GET /api/v1/export)"

PathOrFile = str | os.PathLike[str] | IO[bytes]


class ArchiveError(ValueError):
    """An archive that cannot be imported (or a file that cannot be written); ``str()`` says why and what
    to do. ``status`` is the HTTP status the server answers with (422)."""

    status = 422


class ArchiveTooLarge(ArchiveError):
    """An archive with too many entries or too many bytes once uncompressed (a 413)."""

    status = 413


def archive_members() -> dict[str, str]:
    """The files an archive may hold, by member name (their path in the session folder, with "/"), each to
    the attribute of :class:`~rewards_api.store.SessionPaths` that names it."""
    layout = SessionPaths.at(Path("session"))
    attributes = [*DOCUMENTS, "model", "resume_checkpoint"]
    return {getattr(layout, name).relative_to(layout.root).as_posix(): name for name in attributes}


_MEMBERS = archive_members()
_FOLDERS = {f"{parent}/" for name in _MEMBERS for parent in PurePosixPath(name).parents if str(parent) != "."}
"""Folder entries some zip tools add (``session_saved_models/``): allowed, and skipped."""
_MODELS = {name for name, attribute in _MEMBERS.items() if attribute in ("model", "resume_checkpoint")}
_LIMITS = {name: {"model": MAX_MODEL_BYTES, "resume_checkpoint": MAX_CHECKPOINT_BYTES,
                  **DOCUMENT_LIMITS}[attribute] for name, attribute in _MEMBERS.items()}


# ----- export ----------------------------------------------------------------------------------------------


def _zip_entry(name: str, when: datetime) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(name, date_time=when.timetuple()[:6])
    entry.compress_type = zipfile.ZIP_DEFLATED
    entry.external_attr = (stat.S_IFREG | 0o644) << 16  # a plain file for unzip tools, never a link
    return entry


def export_session(store: SessionStore, session_id: str, target: PathOrFile,
                   now: datetime | None = None) -> dict[str, Any]:
    """Write ``session_id`` as a zip archive to ``target`` (a path or a binary file); return the manifest.

    The files are read under the session's lock, so the documents in the archive belong together. A path is
    written atomically (a temporary file beside it, then a rename); an existing file there is replaced.
    SessionNotFound for an unknown session, ArchiveError when ``target`` cannot be written.
    """
    now = now or datetime.now(timezone.utc)
    contents: dict[str, bytes] = {}
    with store.lock(session_id) as paths:
        for name, attribute in _MEMBERS.items():
            with contextlib.suppress(FileNotFoundError):
                contents[name] = getattr(paths, attribute).read_bytes()
    manifest = {
        "format": ARCHIVE_FORMAT,
        "format_version": FORMAT_VERSION,
        "session_id": session_id,
        "exported_at": now.isoformat(timespec="seconds"),
        "rewards_version": __version__,
        "files": {name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                  for name, data in contents.items()},
    }

    buffer = io.BytesIO()
    local = now.astimezone()  # zip tools show entry times as local times
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(_zip_entry(MANIFEST_NAME, local), json.dumps(manifest, indent=2) + "\n")
        for name, data in contents.items():
            archive.writestr(_zip_entry(name, local), data)
    if not isinstance(target, (str, os.PathLike)):
        target.write(buffer.getvalue())
        return manifest
    path = Path(target)
    if path.is_dir():
        raise ArchiveError(f"{path} is a folder: give the archive a file name, such as "
                           f"{path / 'session.zip'}")
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except FileNotFoundError:
        raise ArchiveError(f"cannot write {path}: the folder {path.parent} does not exist; create it or "
                           "choose another place") from None
    except PermissionError:
        raise ArchiveError(f"cannot write {path}: the folder {path.parent} is not writable; choose another "
                           "place") from None
    return manifest


# ----- import ----------------------------------------------------------------------------------------------

_DRIVE = re.compile(r"^[A-Za-z]:")


def _check_name(entry: zipfile.ZipInfo) -> str | None:
    """The member name if it is a session file; None for a folder entry of the layout; else ArchiveError."""
    name = entry.filename
    shown = f"archive member {name!r}"
    if "\\" in name:
        raise ArchiveError(f"{shown} uses backslashes: archives use '/' only; {_EXPORT_HINT}")
    if name.startswith("/") or _DRIVE.match(name):
        raise ArchiveError(f"{shown} is an absolute path: every member must lie inside the session; "
                           f"{_EXPORT_HINT}")
    if ".." in name.split("/"):
        raise ArchiveError(f"{shown} leads outside the session ('..'): refused; {_EXPORT_HINT}")
    if stat.S_ISLNK(entry.external_attr >> 16):
        raise ArchiveError(f"{shown} is a symbolic link: archives hold plain files only; {_EXPORT_HINT}")
    if entry.flag_bits & 0x1:
        raise ArchiveError(f"{shown} is encrypted: export the session again without a password")
    if name in _FOLDERS:
        return None
    if name not in _MEMBERS:
        raise ArchiveError(f"{shown} is not a file a session holds: an archive holds {MANIFEST_NAME} and "
                           f"{', '.join(_MEMBERS)}; {_EXPORT_HINT}")
    return name


def _check_entries(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The session files of the archive by name, after checking every entry's name and declared size."""
    entries = archive.infolist()
    if len(entries) > MAX_ENTRIES:
        raise ArchiveTooLarge(f"the archive has {len(entries):,} entries; a session archive has at most "
                              f"{MAX_ENTRIES}: {_EXPORT_HINT}")
    files: dict[str, zipfile.ZipInfo] = {}
    manifest_seen = False
    total = 0
    for entry in entries:
        if entry.filename == MANIFEST_NAME:
            if manifest_seen:
                raise ArchiveError(f"the archive holds {MANIFEST_NAME} twice: {_EXPORT_HINT}")
            manifest_seen = True
            limit = _MAX_MANIFEST_BYTES
        else:
            name = _check_name(entry)
            if name is None:
                continue
            if name in files:
                raise ArchiveError(f"the archive holds {name!r} twice: {_EXPORT_HINT}")
            files[name] = entry
            limit = _LIMITS[name]
        if entry.file_size > limit:
            raise ArchiveTooLarge(f"archive member {entry.filename!r} would expand to {entry.file_size:,} "
                                  f"bytes, more than the {limit:,} allowed: refused")
        total += entry.file_size
    if total > MAX_ARCHIVE_BYTES:
        raise ArchiveTooLarge(f"the archive would expand to {total:,} bytes, more than the "
                              f"{MAX_ARCHIVE_BYTES:,} allowed: refused")
    if not manifest_seen:
        raise ArchiveError(f"the archive has no {MANIFEST_NAME}: it was not made by rewards; {_EXPORT_HINT}")
    return files


def _copy_member(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, out: IO[bytes]) -> str:
    """Copy one member to ``out``, reading at most its declared size; return the SHA-256 of what was read."""
    digest = hashlib.sha256()
    read = 0
    with archive.open(entry) as member:
        while chunk := member.read(_CHUNK):
            read += len(chunk)
            if read > entry.file_size:  # zipfile stops at the declared size; this guards that promise
                raise ArchiveTooLarge(f"archive member {entry.filename!r} expands beyond the "
                                      f"{entry.file_size:,} bytes it declares: refused")
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _read_manifest(archive: zipfile.ZipFile) -> dict[str, Any]:
    buffer = io.BytesIO()
    _copy_member(archive, archive.getinfo(MANIFEST_NAME), buffer)
    manifest = _parse_json(buffer.getvalue(), MANIFEST_NAME)
    if manifest.get("format") != ARCHIVE_FORMAT:
        raise ArchiveError(f"{MANIFEST_NAME} does not describe a rewards session (format "
                           f"{manifest.get('format')!r}, expected {ARCHIVE_FORMAT!r}): {_EXPORT_HINT}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ArchiveError(f"{MANIFEST_NAME} has no valid format_version: {_EXPORT_HINT}")
    if version > FORMAT_VERSION:
        raise ArchiveError(f"the archive's format version is {version}, newer than this rewards "
                           f"({__version__}) reads ({FORMAT_VERSION}): upgrade rewards on this machine")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(info, dict) and isinstance(info.get("sha256"), str) for info in files.values()
    ):
        raise ArchiveError(f"{MANIFEST_NAME} has no valid list of files: {_EXPORT_HINT}")
    return manifest


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: valid JSON syntax, but infinite as a number
        raise ValueError(f"{text[:40]} is beyond the range of a number")
    return value


def _finite_int(text: str) -> int:
    value = int(text)
    try:
        float(value)
    except OverflowError:
        raise ValueError(f"the integer {text[:40]}... is beyond the range of a number") from None
    return value


def _parse_json(data: bytes, name: str) -> dict[str, Any]:
    """A JSON object from ``data`` whose numbers are all finite (NaN, infinity and numbers beyond a float's
    range such as ``1e999`` refused); ArchiveError otherwise."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not a JSON value")

    try:
        value = json.loads(data.decode("utf-8"), parse_constant=refuse, parse_float=_finite_float,
                           parse_int=_finite_int)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ArchiveError(f"archive member {name!r} is not valid JSON ({exc}): the archive is damaged; "
                           f"{_EXPORT_HINT}") from None
    if not isinstance(value, dict):
        raise ArchiveError(f"archive member {name!r} holds a JSON {type(value).__name__}, not an object: "
                           f"the archive is damaged; {_EXPORT_HINT}")
    return value


def _check_documents(folder: Path, present: set[str]) -> list[tuple[int, int]] | None:
    """Parse every JSON document and check the parameters; return the model's layers (None if unknown)."""
    layers = None
    for name in sorted(present - _MODELS):
        document = _parse_json((folder / name).read_bytes(), name)
        kind = {"env_params": EnvParams, "agent_params": AgentParams, "training_params": TrainingParams}.get(
            _MEMBERS[name])
        if kind is None:
            continue
        try:
            # The reward function is code: it is not run here (only its type is checked); training checks it.
            params = kind.model_validate(document, context=REWARD_CHECKED)
        except pydantic.ValidationError as exc:
            raise ArchiveError(f"archive member {name!r} is not valid: {first_error_message(exc)}; fix it "
                               "in the session it came from and export it again") from None
        if isinstance(params, AgentParams):
            layers = params.config().layers
    return layers


def _check_models(folder: Path, present: set[str], layers: list[tuple[int, int]] | None) -> None:
    """Load each model with ``weights_only=True`` (no pickled code runs); model.pth must fit ``layers``
    (the default model's when the archive has no agent_params.json, as training would use)."""
    import torch

    from .agents.dqn import QNetwork

    layers = layers or DEFAULT_AGENT_PARAMS.config().layers
    for name in sorted(present & _MODELS):
        try:
            state = torch.load(folder / name, map_location="cpu", weights_only=True)
        except Exception as exc:  # any failure to load is a refusal; the cause is in the message
            raise ArchiveError(f"archive member {name!r} is not a model this server can load safely "
                               f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}): "
                               "refused") from None
        if not isinstance(state, dict):
            raise ArchiveError(f"archive member {name!r} holds a {type(state).__name__}, not saved weights: "
                               "refused")
        if _MEMBERS[name] == "model":
            try:
                QNetwork(layers).load_state_dict(state)
            except (RuntimeError, TypeError, AttributeError) as exc:
                raise ArchiveError(f"archive member {name!r} does not fit the session's model_configuration "
                                   f"{[list(layer) for layer in layers]} ({str(exc).splitlines()[0]}): "
                                   "refused") from None


def _unpack(archive: zipfile.ZipFile, files: dict[str, zipfile.ZipInfo], manifest: dict[str, Any],
            folder: Path) -> None:
    """Write the session files into ``folder``, checking each against the manifest."""
    listed = manifest["files"]
    unknown = sorted(set(listed) - set(files))
    if unknown:
        raise ArchiveError(f"the archive misses {', '.join(map(repr, unknown))}, listed in its "
                           f"{MANIFEST_NAME}: it is damaged or incomplete; {_EXPORT_HINT}")
    if not any(_MEMBERS[name] in DOCUMENTS for name in files):
        raise ArchiveError(f"the archive holds no session documents: {_EXPORT_HINT}")
    for name, entry in files.items():
        if name not in listed:
            raise ArchiveError(f"archive member {name!r} is not listed in {MANIFEST_NAME}: refused")
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("xb") as out:
            digest = _copy_member(archive, entry, out)
            out.flush()
            os.fsync(out.fileno())
        if digest != listed[name]["sha256"]:
            raise ArchiveError(f"archive member {name!r} does not match its checksum in {MANIFEST_NAME}: "
                               f"the archive is damaged; {_EXPORT_HINT}")


_END_RECORD = struct.Struct("<4s4H2LH")  # the zip's end-of-central-directory record
_END_SIGNATURE = b"PK\x05\x06"


def _check_directory_size(handle: IO[bytes]) -> None:
    """Refuse a zip whose central directory lists too many entries *before* zipfile parses it (it would
    build an object per entry: a 64 MB upload could list a million). Reads the end record only."""
    size = handle.seek(0, os.SEEK_END)
    tail_size = min(size, _END_RECORD.size + 0xFFFF)  # the record, and a comment of at most 64 KB
    handle.seek(size - tail_size)
    tail = handle.read(tail_size)
    handle.seek(0)
    found = tail.rfind(_END_SIGNATURE)
    if found < 0 or len(tail) - found < _END_RECORD.size:
        return  # not a zip: zipfile says so
    _, _, _, _, entries, directory_bytes, _, _ = _END_RECORD.unpack_from(tail, found)
    # 0xFFFF entries means "see the zip64 record": more than a session archive ever holds.
    if entries > MAX_ENTRIES or directory_bytes > _MAX_CENTRAL_DIRECTORY_BYTES:
        raise ArchiveTooLarge(f"the archive has {entries:,} entries ({directory_bytes:,} bytes of "
                              f"directory); a session archive has at most {MAX_ENTRIES}: {_EXPORT_HINT}")


def _open_archive(source: PathOrFile) -> zipfile.ZipFile:
    shown = str(source) if isinstance(source, (str, os.PathLike)) else "the uploaded body"
    try:
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as handle:
                _check_directory_size(handle)
        else:
            _check_directory_size(source)
        return zipfile.ZipFile(source)
    except FileNotFoundError:
        raise ArchiveError(f"{shown}: no such file; give the path of a .zip made by `rewards-api export`"
                           ) from None
    except IsADirectoryError:
        raise ArchiveError(f"{shown} is a folder: give the path of a .zip made by `rewards-api export`"
                           ) from None
    except PermissionError:
        raise ArchiveError(f"{shown} cannot be read (permission denied): give a readable file") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise ArchiveError(f"{shown} is not a zip archive ({exc}): {_EXPORT_HINT}") from None


def import_session(store: SessionStore, source: PathOrFile, session_id: str | None = None) -> str:
    """Import an archive made by :func:`export_session` as a new session of ``store``; return its id.

    ``source`` is a path or a seekable binary file. The id is ``session_id`` if given, else the one in the
    manifest. SessionExists (suggesting another id) if that session exists, InvalidSessionId for a bad
    id, ArchiveError (ArchiveTooLarge for a zip bomb) for an archive that is refused; nothing is written
    then. See the module's docstring for the checks.
    """
    if session_id is not None:
        validate_session_id(session_id)
    with _open_archive(source) as archive:
        try:
            files = _check_entries(archive)
            manifest = _read_manifest(archive)
            target = session_id if session_id is not None else _manifest_id(manifest)
            if store.exists(target):
                raise _exists(target)
            store.home.mkdir(parents=True, exist_ok=True)
            # Hidden (a session id never starts with "."), so that nothing half-imported ever lists.
            staging = store.home / f".importing-{target}-{secrets.token_hex(4)}"
            staging.mkdir()
            try:
                _unpack(archive, files, manifest, staging)
                _check_models(staging, set(files), _check_documents(staging, set(files)))
                SessionPaths.at(staging).saved_models.mkdir(exist_ok=True)  # what makes a folder a session
                # Its evaluation results are the archive's claims: it ranks once evaluated here.
                SessionStore.start_untrusted_standing(staging)
                _move_into_place(store, staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            raise ArchiveError(f"the archive is damaged or uses a compression this server cannot read "
                               f"({exc}): {_EXPORT_HINT}") from None
    return target


def _manifest_id(manifest: dict[str, Any]) -> str:
    exported = manifest.get("session_id")
    try:
        return validate_session_id(exported)
    except ValueError:
        raise ArchiveError(f"the archive's session id {exported!r} is not valid here: import it under a new "
                           "id (rewards-api import FILE.zip --as NEW_ID, or ?session_id=NEW_ID)") from None


def _exists(session_id: str) -> SessionExists:
    return SessionExists(session_id, f"session {session_id!r} already exists here: import it under another "
                         "id (rewards-api import FILE.zip --as NEW_ID, or POST /api/v1/import?session_id="
                         "NEW_ID), or delete the existing session first")


def _move_into_place(store: SessionStore, staging: Path, session_id: str) -> None:
    """Rename the checked folder to the session's: atomic, and never over an existing session.

    ``mkdir`` claims the id (as :meth:`SessionStore.create` does), so a concurrent create or import gets
    "exists"; the rename then replaces that empty folder in one step.
    """
    root = store.paths(session_id).root
    try:
        os.mkdir(root)
    except FileExistsError:
        raise _exists(session_id) from None
    try:
        os.rename(staging, root)
    except BaseException:
        with contextlib.suppress(OSError):
            os.rmdir(root)
        raise
