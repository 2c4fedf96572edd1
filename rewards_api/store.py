"""The session store (SPEC.md §2): one module owns the on-disk layout; nothing else builds session paths.

```
<home>/<session_id>/
    env_params.json  agent_params.json  training_params.json       (written when set)
    training_metrics.json  evaluation_metrics.json                 (written at creation)
    session_saved_models/  model_history.json  model.pth  checkpoints/resume.pth
    .rewards/lock                                                  (the session's lock file)
    .rewards/standing.json                                         (its evaluations as this server made
                                                                    them: what the leaderboards read)
<home>/.users/<name>/<session_id>/...                              (another user's sessions, same layout)
```

The local owner's sessions stay at the root, as in the seed. Each user added with ``rewards-api users add``
has a home of their own under ``.users/`` (see :func:`user_home`): a name starting with a dot can never be
a session id, so the two never collide, and the same session id can exist once per user.

Every write is atomic (a temporary file in the same folder, fsync, rename), so a crash leaves the old or the
new file, never a torn one. Read-modify-write goes through :meth:`SessionStore.update`, which holds the
session's lock across threads and processes. Session ids are checked before any path is built, and no path
outside the home folder is ever touched.

Reads come from :data:`DOCUMENT_CACHE`: each document parsed once (and encoded once for the answers), then
checked against its file's identity at every read, so a write by any process is seen at once. Readers get
copies: changing what a read returned never changes the cache.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .params import (
    DEFAULT_ENV_PARAMS,
    DEFAULT_MODEL_CONFIGURATION,
    AgentParams,
    CarShape,
    EnvParams,
    ParameterError,
    TrainingParams,
    check_reward_function,
    is_default_network,
    mismatch_advice,
    parse_any_model_configuration,
    stored_model_configuration,
)
from .safe_json import clean, dumps
from .scores import evaluation_summary, track_figures

try:  # POSIX; without it (Windows) the lock only excludes threads of one process.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DOCUMENTS",
    "SESSION_FILES",
    "SESSION_ID_PATTERN",
    "USERS_DIR",
    "USER_NAME_PATTERN",
    "InvalidSessionId",
    "SessionBusy",
    "SessionError",
    "SessionExists",
    "SessionNotFound",
    "SessionPaths",
    "SessionStore",
    "atomic_write_bytes",
    "atomic_write_json",
    "default_home",
    "read_json",
    "user_home",
    "validate_session_id",
]

SESSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9_]{1,64}$")
"""A session id: 1-64 ASCII letters, digits or underscores (always use ``fullmatch``)."""
SESSION_ID_RULE = "use 1-64 letters, digits or underscores"

DOCUMENTS: tuple[str, ...] = (
    "env_params", "agent_params", "training_params", "training_metrics", "evaluation_metrics",
    "model_history",
)
"""The JSON documents of a session, by name (``model_history`` lives in ``session_saved_models/``)."""
SESSION_FILES: tuple[str, ...] = DOCUMENTS[:5]
"""The documents at the session's top level: the only JSON files allowed there."""
ALL_PARAMS: tuple[str, ...] = SESSION_FILES

SAVED_MODELS_DIR = "session_saved_models"
STATE_DIR = ".rewards"
MAX_STANDING_BYTES = 16 * 1024
"""``.rewards/standing.json`` is read up to this size (it holds a few numbers per evaluated track)."""
MAX_EVALUATION_METRICS_BYTES = 2**20
"""The largest evaluation_metrics.json a session made before standings existed is summarized from (a
server's own evaluations write a few hundred bytes per track); beyond it, the session ranks once evaluated
again. Archives hold no larger one either (:mod:`rewards_api.archive`)."""


def _initial_training_metrics() -> dict[str, Any]:
    return {"plot_scores": [], "plot_mean_scores": []}


def _initial_evaluation_metrics() -> dict[str, Any]:
    return {"training": {"1": {}, "2": {}, "3": {}}, "evaluation": {"1": {}}}


def _initial_model_history() -> dict[str, Any]:
    return {"last_created": {}, "last_trained": {}}


class SessionError(Exception):
    """A problem with a session that the user can fix; ``str()`` says what and how."""

    def __init__(self, message: str, session_id: Any = None) -> None:
        super().__init__(message, session_id)
        self.message = message
        self.session_id = session_id

    def __str__(self) -> str:
        return self.message


class InvalidSessionId(SessionError, ValueError):
    """A session id that is not 1-64 letters, digits or underscores (also a ``ValueError``)."""

    def __init__(self, session_id: Any, message: str | None = None) -> None:
        message = message or f"session id {session_id!r} is not valid: {SESSION_ID_RULE}"
        SessionError.__init__(self, message, session_id)
        self.args = (session_id, message)


class SessionNotFound(SessionError, KeyError):
    """No session with this id (also a ``KeyError``, with a readable ``str()``)."""

    def __init__(self, session_id: Any, message: str | None = None) -> None:
        message = message or (
            f"there is no session {session_id!r}: create it first, or use one of the existing sessions"
        )
        SessionError.__init__(self, message, session_id)
        self.args = (session_id, message)


class SessionBusy(SessionError):
    """Another process trains the session, or changes its parameters: ``str()`` names it."""


class SessionExists(SessionError):
    """A session with this id already exists."""

    def __init__(self, session_id: Any, message: str | None = None) -> None:
        message = message or (
            f"session {session_id!r} already exists: choose another id, or delete it first"
        )
        SessionError.__init__(self, message, session_id)
        self.args = (session_id, message)


def validate_session_id(session_id: Any) -> str:
    """Return ``session_id`` if it is 1-64 ASCII letters, digits or underscores; else InvalidSessionId."""
    if not isinstance(session_id, str) or SESSION_ID_PATTERN.fullmatch(session_id) is None:
        raise InvalidSessionId(session_id)
    return session_id


USERS_DIR = ".users"
"""The folder, in the home folder, that holds the other users' homes and the users file."""
USER_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
"""A user name: 1-32 lower-case letters, digits, "_" or "-", starting with a letter or digit."""
USER_NAME_RULE = "use 1-32 lower-case letters, digits, '_' or '-', starting with a letter or digit"


def user_home(home: Path, user: str | None) -> Path:
    """Where ``user``'s sessions live: the home folder itself for the owner (``None``), else
    ``<home>/.users/<user>``. ValueError for a name that does not follow :data:`USER_NAME_RULE`."""
    if user is None:
        return home
    if not isinstance(user, str) or USER_NAME_PATTERN.fullmatch(user) is None:
        raise ValueError(f"user name {user!r} is not valid: {USER_NAME_RULE}")
    return home / USERS_DIR / user


def default_home() -> Path:
    """The sessions' folder: ``$REWARDS_HOME`` if set, else ``~/.rewards_ai``."""
    configured = os.environ.get("REWARDS_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".rewards_ai"


@dataclass(frozen=True)
class SessionPaths:
    """Every path of one session; build them with :meth:`SessionStore.paths`, never by hand."""

    root: Path
    env_params: Path
    agent_params: Path
    training_params: Path
    training_metrics: Path
    evaluation_metrics: Path
    saved_models: Path
    model_history: Path
    model: Path
    checkpoints: Path
    resume_checkpoint: Path
    state: Path
    lock: Path
    standing: Path

    @classmethod
    def at(cls, root: Path) -> SessionPaths:
        """The layout of a session whose folder is ``root`` (memoized: pathlib joins add up when a
        listing touches every session)."""
        return _layout(cls, root)

    @classmethod
    def _build(cls, root: Path) -> SessionPaths:
        saved = root / SAVED_MODELS_DIR
        state = root / STATE_DIR
        return cls(
            root=root,
            env_params=root / "env_params.json",
            agent_params=root / "agent_params.json",
            training_params=root / "training_params.json",
            training_metrics=root / "training_metrics.json",
            evaluation_metrics=root / "evaluation_metrics.json",
            saved_models=saved,
            model_history=saved / "model_history.json",
            model=saved / "model.pth",
            checkpoints=saved / "checkpoints",
            resume_checkpoint=saved / "checkpoints" / "resume.pth",
            state=state,
            lock=state / "lock",
            standing=state / "standing.json",
        )

    def document(self, name: str) -> Path:
        """The file of a JSON document named in :data:`DOCUMENTS`; ValueError for any other name."""
        if name not in DOCUMENTS:
            raise ValueError(f"unknown session document {name!r}: use one of {', '.join(DOCUMENTS)}")
        return getattr(self, name)


@functools.lru_cache(maxsize=4096)
def _layout(kind: type[SessionPaths], root: Path) -> SessionPaths:
    return kind._build(root)


def _file_mode() -> int:
    """0666 less the process umask, as open() would give a new file (read once, at import)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _file_mode()


def _atomic_write(path: Path, write: Callable[[Any], None], mode: str, file_mode: int | None = None) -> None:
    """Write through ``write(file)`` into a hidden temporary file beside ``path``, fsync, then rename.

    The temporary name starts with "." and ends with ".tmp", so it never looks like a session file, and it
    is removed on any error (the old file, if any, is left as it was).
    """
    path = Path(path)
    encoding = None if "b" in mode else "utf-8"
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, before the rename
        mode, dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False, encoding=encoding
    )
    try:
        with handle:
            # Temporary files are private (0600); the session's files are ordinary ones other tools read.
            os.fchmod(handle.fileno(), _FILE_MODE if file_mode is None else file_mode)
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
        raise


def atomic_write_json(path: Path, data: Any, file_mode: int | None = None) -> None:
    """Write ``data`` as JSON to ``path`` atomically: a crash leaves the old file or the new, never a mix.

    ``file_mode`` (e.g. ``0o600`` for secrets) replaces the usual 0666 less the umask.
    NaN and infinity are refused (ValueError): they are not JSON, and the original front end cannot read them.
    """

    def write(handle: Any) -> None:
        json.dump(data, handle, indent=2, ensure_ascii=False, allow_nan=False)
        handle.write("\n")

    try:
        _atomic_write(path, write, "w", file_mode)
    except UnicodeEncodeError:  # a lone surrogate (user text): U+FFFD instead, so the file stays UTF-8
        data = clean(data, numbers=False)
        _atomic_write(path, write, "w", file_mode)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (for model files), like :func:`atomic_write_json`."""
    _atomic_write(path, lambda handle: handle.write(data), "wb")


def read_json(path: Path, default: Any) -> Any:
    """The JSON in ``path``, or ``default`` if the file does not exist; SessionError if it is not JSON."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return default
    return _parse(raw, path)


MAX_CACHED_DOCUMENTS = 4096
"""The documents the process keeps parsed (:class:`DocumentCache`): 20 per student of a class of 200."""
MAX_CACHED_BYTES = 16 * 2**20
"""Their total size on disk; in memory they take about 3 times that, ~50 MB at most (parsed, plus the
compact JSON): 200 sessions of 700 episodes are 4.4 MB of files."""
MAX_CACHED_FILE_BYTES = 2**20
"""A larger document is parsed at every read: one would push out a classroom's worth of small ones."""
SETTLED_NS = 2 * 10**9
"""A file is cached only once its last change (``st_ctime``) is this old: a timestamp's granularity (1-2 s
on some file systems) must have passed, so that any later change gives it another ``st_ctime``."""


def _copy_json(value: Any) -> Any:
    """A deep copy of parsed JSON (dicts, lists and immutable leaves), 3x faster than copy.deepcopy."""
    if type(value) is dict:
        return {key: _copy_json(item) if type(item) in _CONTAINERS else item for key, item in value.items()}
    if type(value) is list:
        return [_copy_json(item) if type(item) in _CONTAINERS else item for item in value]
    return value


_CONTAINERS = (dict, list)


class _Parsed:
    """One cached document: its parsed form (never handed out: :meth:`SessionStore._load` copies it) and,
    once asked for, its answer encoding (:func:`rewards_api.safe_json.dumps`)."""

    __slots__ = ("data", "encoded")

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.encoded: bytes | None = None

    def json(self) -> bytes:
        if self.encoded is None:  # two threads may both encode: the same bytes, either is kept
            self.encoded = dumps(self.data)
        return self.encoded


_Identity = tuple[int, int, int, int, int]


def _identity(status: os.stat_result) -> _Identity:
    """What changes whenever a file is replaced (a new inode) or rewritten in place (size, times)."""
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns


class DocumentCache:
    """The session documents of this process, parsed, by path and checked against the file's identity
    (device, inode, size, modification and change times) at every read: another process's write, atomic
    (a new inode) or in place, is seen at once. Least recently used documents go first beyond
    ``max_entries`` documents or ``max_bytes`` of files. Thread-safe; the lock never covers file work."""

    def __init__(self, max_entries: int = MAX_CACHED_DOCUMENTS, max_bytes: int = MAX_CACHED_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[_Identity, _Parsed]] = OrderedDict()
        self._bytes = 0
        self._guard = threading.Lock()

    def document(self, path: Path, session_id: str) -> _Parsed | None:
        """The document in ``path``, None if there is none; SessionError if it is not a JSON object."""
        key = str(path)
        try:
            status = os.stat(key)
        except FileNotFoundError:
            self._forget(key)
            return None
        with self._guard:
            cached = self._entries.get(key)
            if cached is not None and cached[0] == _identity(status):
                self._entries.move_to_end(key)
                return cached[1]
        if not stat.S_ISREG(status.st_mode):  # a folder or a device: the error the file's reading gives
            return _Parsed(_checked(read_json(path, {}), path, session_id))
        try:
            with open(key, "rb") as handle:
                status = os.fstat(handle.fileno())  # the identity of exactly what is read
                raw = handle.read()
        except FileNotFoundError:
            return None
        parsed = _Parsed(_checked(_parse(raw, path), path, session_id))
        if time.time_ns() - status.st_ctime_ns >= SETTLED_NS and status.st_size <= MAX_CACHED_FILE_BYTES:
            self._keep(key, _identity(status), parsed)
        return parsed

    def _forget(self, key: str) -> None:
        with self._guard:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= previous[0][2]

    def _keep(self, key: str, identity: _Identity, parsed: _Parsed) -> None:
        self._forget(key)
        with self._guard:
            self._entries[key] = (identity, parsed)
            self._bytes += identity[2]
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, (evicted, _) = self._entries.popitem(last=False)
                self._bytes -= evicted[2]

    def __len__(self) -> int:
        return len(self._entries)


DOCUMENT_CACHE = DocumentCache()
"""The one cache of the process, shared by every SessionStore (the server keeps one store per user)."""


def _parse(raw: bytes, path: Path) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SessionError(f"{path} is not valid JSON ({exc.reason}); fix or delete the file") from exc
    except ValueError as exc:
        raise SessionError(f"{path} is not valid JSON ({exc}); fix or delete the file") from exc


def _checked(data: Any, path: Path, session_id: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SessionError(
            f"{path} holds a JSON {type(data).__name__}, not an object; fix or delete the file", session_id)
    return data


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(key: str) -> threading.Lock:
    """The process-wide thread lock of one session (shared by every SessionStore of this process)."""
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(key, threading.Lock())


def _new_standing() -> dict[str, Any]:
    return {"version": 1, "tracks": {}, "summary": None}


def _standing_from(document: dict[str, Any]) -> dict[str, Any]:
    """A standing from an evaluation document this server wrote (every evaluated numbered track)."""
    standing = _new_standing()
    for mode in ("training", "evaluation"):
        section = document.get(mode)
        for track, metrics in (section.items() if isinstance(section, dict) else ()):
            figures = track_figures(metrics)
            if track.isdigit() and figures is not None:
                standing["tracks"].setdefault(mode, {})[track] = figures
    if standing["tracks"]:
        standing["summary"] = evaluation_summary(standing["tracks"])
    return standing


def _holds_session_files(paths: SessionPaths) -> bool:
    return paths.saved_models.is_dir() or any(paths.document(name).is_file() for name in SESSION_FILES)


def _params_json(paths: SessionPaths, session_id: str) -> bytes:
    """The five top-level documents as one JSON object, from their cached encodings; SessionNotFound when
    the session is gone (deleted since it was listed)."""
    documents = [DOCUMENT_CACHE.document(paths.document(name), session_id) for name in ALL_PARAMS]
    if all(parsed is None for parsed in documents) and not _holds_session_files(paths):
        raise SessionNotFound(session_id)
    return b"{%s}" % b",".join(b'"%s":%s' % (name.encode(), b"{}" if parsed is None else parsed.json())
                               for name, parsed in zip(ALL_PARAMS, documents, strict=True))


def _stamp(now: datetime) -> dict[str, str]:
    return {"date": now.strftime("%Y-%m-%d"), "time": now.strftime("%H:%M:%S.%f")}


def _check_network(shape: CarShape, value: Any) -> None:
    """ParameterError unless ``value`` is a network for the car ``shape`` (with the advice of
    :func:`rewards_api.params.mismatch_advice` for a network of another car)."""
    try:
        shape.parse(value)
    except ParameterError as exc:
        try:
            layers = parse_any_model_configuration(value)
        except ValueError:
            raise exc from None
        raise ParameterError("model_configuration", value, mismatch_advice(exc.accepted, layers, shape)
                             ) from None


class SessionStore:
    """The sessions under one home folder: create, list, delete, lock, read and write their documents."""

    def __init__(self, home: str | Path | None = None) -> None:
        """``home`` defaults to :func:`default_home`; the folder is created on the first write."""
        self.home = Path(home if home is not None else default_home()).expanduser().resolve()
        # Reads are tiny syscalls (a stat per document, the cache does the rest); many threads interleaving
        # them fight over the GIL (a convoy: 40 threads listed sessions 3x slower than one). Reads take
        # turns; they never wait on a session's lock, so the turn is short (a 200-session list: ~15 ms).
        self._reads = threading.Lock()

    # -- layout ---------------------------------------------------------------------------------------------

    def paths(self, session_id: str) -> SessionPaths:
        """The paths of a session (which need not exist); InvalidSessionId for a bad id."""
        validate_session_id(session_id)
        root = self.home / session_id
        # The id is one plain name (checked above) and home is resolved: only a symlink can lead elsewhere.
        if root.is_symlink():
            raise SessionError(
                f"session {session_id!r} is not a folder inside {self.home}; remove {root}", session_id
            )
        return SessionPaths.at(root)

    @staticmethod
    def _is_session(root: Path) -> bool:
        """A real folder holding session_saved_models/ or one of the top-level session files."""
        try:
            real_folder = stat.S_ISDIR(os.lstat(root).st_mode)
        except OSError:
            return False
        return real_folder and _holds_session_files(SessionPaths.at(root))

    def exists(self, session_id: str) -> bool:
        """Whether the session exists (InvalidSessionId for a bad id)."""
        return self._is_session(self.paths(session_id).root)

    def _require(self, session_id: str) -> SessionPaths:
        paths = self.paths(session_id)
        if not self._is_session(paths.root):
            raise SessionNotFound(session_id)
        return paths

    def list_sessions(self) -> list[str]:
        """The ids of the sessions in the home folder, sorted; other files and folders are ignored."""
        with self._reads:
            return self._list_sessions()

    def _list_sessions(self) -> list[str]:
        try:
            with os.scandir(self.home) as entries:  # the entries' types come with them: no stat for those
                folders = [entry.name for entry in entries if SESSION_ID_PATTERN.fullmatch(entry.name)
                           and entry.is_dir(follow_symlinks=False)]
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(name for name in folders if _holds_session_files(SessionPaths.at(self.home / name)))

    # -- life cycle -----------------------------------------------------------------------------------------

    def create(self, session_id: str, now: datetime | None = None) -> dict[str, Any]:
        """Create a session's folders and initial files; return the create_session body (minus status).

        The ``mkdir`` of the session folder is the atomic claim: of two concurrent creators, one gets
        SessionExists. A failure half-way removes what was made.
        """
        paths = self.paths(session_id)
        now = now or datetime.now()
        self.home.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(paths.root)
        except FileExistsError:
            raise SessionExists(session_id) from None
        try:
            paths.state.mkdir()
            with self._locked(paths):
                paths.saved_models.mkdir()
                atomic_write_json(paths.training_metrics, _initial_training_metrics())
                atomic_write_json(paths.evaluation_metrics, _initial_evaluation_metrics())
                atomic_write_json(paths.model_history, _initial_model_history())
        except BaseException:
            shutil.rmtree(paths.root, ignore_errors=True)
            raise
        stamp = _stamp(now)
        return {
            "session_id": session_id,
            "session_creation_date": stamp["date"],
            "session_creation_time": stamp["time"],
            "dir_paths": {
                "session_root_dir": str(paths.root),
                "saved_models_dir": str(paths.saved_models),
            },
            "json_paths": {
                "training_metrics": str(paths.training_metrics),
                "evaluation_metrics": str(paths.evaluation_metrics),
                "model_history": str(paths.model_history),
            },
        }

    def delete(self, session_id: str) -> None:
        """Remove a session and all its files; SessionNotFound if there is none.

        Under the lock the folder is renamed to a hidden name (so the id is free at once and no writer
        sees half a session), then removed.
        """
        paths = self._require(session_id)
        trash = self.home / f".deleted-{session_id}-{secrets.token_hex(4)}"
        with self._locked(paths):
            os.rename(paths.root, trash)
        shutil.rmtree(trash, ignore_errors=True)

    # -- locking --------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def training_mark(self, session_id: str, doing: str) -> Iterator[None]:
        """Mark the session busy while the block runs, for every process: a ``flock`` on
        ``.rewards/training.lock``, which the kernel releases when the holder ends, however it ends. A
        training (``rewards-api train``, a server's worker) and ``rewards-api set`` each hold it;
        :class:`SessionBusy`, naming the holder (``process N is <doing>``), when another holds it.

        Unlike :meth:`lock`, which guards one write, it is held for a whole training: readers and writers
        of documents never wait for it."""
        paths = self._require(session_id)
        if fcntl is None:  # pragma: no cover
            yield
            return
        paths.state.mkdir(exist_ok=True)
        mark = paths.state / "training.lock"
        fd = os.open(mark, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = mark.read_text(encoding="utf-8", errors="replace").strip()[:200] or "another process"
                raise SessionBusy(f"session {session_id!r} is busy ({holder}): wait until it is done, or "
                                  "stop its training, then try again", session_id) from None
            os.ftruncate(fd, 0)
            os.write(fd, f"process {os.getpid()} is {doing}".encode())
            yield
        finally:
            os.close(fd)  # releases the flock

    @contextlib.contextmanager
    def lock(self, session_id: str) -> Iterator[SessionPaths]:
        """Exclusive access to one session across threads and processes; yields its paths.

        Not re-entrant: taking it again in the same thread while holding it deadlocks. SessionNotFound if
        the session does not exist (or is deleted while waiting).
        """
        paths = self._require(session_id)
        with self._locked(paths):
            yield paths

    @contextlib.contextmanager
    def _locked(self, paths: SessionPaths) -> Iterator[None]:
        """Hold the session's thread lock and ``flock`` on ``.rewards/lock``."""
        session_id = paths.root.name
        with _thread_lock(str(paths.lock)):
            if fcntl is None:  # pragma: no cover
                yield
                return
            for _attempt in range(10):
                try:
                    paths.state.mkdir(exist_ok=True)
                    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
                except FileNotFoundError:  # the session folder is gone
                    raise SessionNotFound(session_id) from None
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    try:
                        current = os.stat(paths.lock)
                    except FileNotFoundError:
                        current = None
                    held = os.fstat(fd)
                    if current is not None and (current.st_ino, current.st_dev) == (held.st_ino, held.st_dev):
                        yield
                        return
                    # The session was deleted (and maybe made again) while we waited: that lock is stale.
                    if not paths.root.is_dir():
                        raise SessionNotFound(session_id)
                finally:
                    os.close(fd)  # closing the descriptor releases the flock
            raise SessionError(f"could not lock session {session_id!r}: it keeps being replaced", session_id)

    # -- documents ------------------------------------------------------------------------------------------

    def read(self, session_id: str, name: str) -> dict[str, Any]:
        """A JSON document of the session by name ({} if not written yet).

        Writes are atomic, so reading needs no lock. ValueError for an unknown name, SessionNotFound for
        a missing session, SessionError for a file that is not a JSON object.
        """
        paths = self.paths(session_id)
        path = paths.document(name)
        with self._reads:
            if not self._is_session(paths.root):
                raise SessionNotFound(session_id)
            return self._load(path, session_id)

    @staticmethod
    def _load(path: Path, session_id: str) -> dict[str, Any]:
        """The document in ``path`` ({} if there is none), the caller's own copy: it may change it."""
        parsed = DOCUMENT_CACHE.document(path, session_id)
        return {} if parsed is None else _copy_json(parsed.data)

    def write(self, session_id: str, name: str, data: dict[str, Any]) -> None:
        """Replace a JSON document of the session, atomically and under the session's lock."""
        if not isinstance(data, dict):
            raise TypeError(f"a session document must be a dict, not {type(data).__name__}")
        path = self.paths(session_id).document(name)
        with self.lock(session_id):
            atomic_write_json(path, data)

    def update(
        self, session_id: str, name: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any]:
        """Read-modify-write a document under the session's lock; return what was stored.

        ``change`` gets the current dict ({} if not written yet) and may change it in place and return
        None, or return a new dict. Do not take the session's lock inside ``change``.
        """
        path = self.paths(session_id).document(name)
        with self.lock(session_id):
            current = self._load(path, session_id)
            result = change(current)
            stored = current if result is None else result
            if not isinstance(stored, dict):
                raise TypeError(f"update of {name!r} must give a dict, not {type(stored).__name__}")
            atomic_write_json(path, stored)
        return stored

    # -- evaluations and standings -------------------------------------------------------------------------

    def record_evaluation(self, session_id: str, mode: str, track: str, metrics: dict[str, Any]
                          ) -> dict[str, Any]:
        """Record one track's evaluation: in evaluation_metrics.json (``<mode>.<track>`` and the mode's
        ``total_elapsed_time``, as the original wrote them) and in the session's standing, under one hold of
        the lock; return the evaluation document.

        The standing (``.rewards/standing.json``) keeps the figures of the tracks evaluated on this server
        only, and their summary (see :func:`rewards_api.scores.evaluation_summary`): the leaderboards read
        that small file, never a document whose size or numbers a user controls (an imported archive's).
        """
        with self.lock(session_id) as paths:
            document = self._load(paths.evaluation_metrics, session_id)
            standing = self._standing_file(paths, session_id)
            if standing is None:  # a session evaluated before standings existed: its own results
                standing = _standing_from(document)
            document["session_id"] = session_id
            section = document.get(mode)
            section = document[mode] = section if isinstance(section, dict) else {}
            section[track] = metrics
            section["total_elapsed_time"] = round(sum(
                value["total_elapsed_time"] for value in section.values()
                if isinstance(value, dict) and isinstance(value.get("total_elapsed_time"), (int, float))), 4)
            atomic_write_json(paths.evaluation_metrics, document)
            figures = track_figures(metrics)
            if track.isdigit() and figures is not None:
                standing["tracks"].setdefault(mode, {})[track] = figures
                standing["summary"] = evaluation_summary(standing["tracks"])
            atomic_write_json(paths.standing, standing)
        return document

    def trained_algorithm(self, session_id: str) -> str | None:
        """The learning algorithm that trained the session's model (``model_history.json``
        ``last_trained.algorithm``; absent: ``dqn``, the original's), or ``None`` while it has no model
        and no resume checkpoint."""
        paths = self.paths(session_id)
        if not (paths.model.exists() or paths.resume_checkpoint.exists()):
            return None
        trained = self.read(session_id, "model_history").get("last_trained")
        algorithm = trained.get("algorithm") if isinstance(trained, dict) else None
        return algorithm if algorithm in ("dqn", "ppo") else "dqn"

    def standing(self, session_id: str) -> dict[str, Any] | None:
        """The session's summary for the leaderboards (``score``, and ``record``, ``laps_completed``,
        ``mean_progress``, ``num_trials`` on the evaluation track), from its evaluations on this server;
        ``None`` when it has none (an imported session, until it is evaluated here). Reads a file of at
        most :data:`MAX_STANDING_BYTES`, whatever the session holds."""
        paths = self._require(session_id)
        standing = self._standing_file(paths, session_id)
        if standing is None:
            standing = self._migrate_standing(paths, session_id)
        summary = standing.get("summary")
        return summary if isinstance(summary, dict) and summary.get("score") is not None else None

    @staticmethod
    def _standing_file(paths: SessionPaths, session_id: str) -> dict[str, Any] | None:
        """The standing file, checked (None if there is none; an unreadable one counts as empty)."""
        try:
            with open(paths.standing, "rb") as handle:
                raw = handle.read(MAX_STANDING_BYTES + 1)
        except FileNotFoundError:
            return None
        try:
            standing = clean(json.loads(raw)) if len(raw) <= MAX_STANDING_BYTES else None
        except ValueError:
            standing = None
        if not isinstance(standing, dict) or not isinstance(standing.get("tracks"), dict):
            return _new_standing()
        return standing

    def _migrate_standing(self, paths: SessionPaths, session_id: str) -> dict[str, Any]:
        """The standing of a session evaluated before standings existed, from its evaluation_metrics.json
        (when it is at most :data:`MAX_EVALUATION_METRICS_BYTES`), written once so that it is not read
        again."""
        with self._locked(paths):
            standing = self._standing_file(paths, session_id)
            if standing is not None:
                return standing
            try:
                small = paths.evaluation_metrics.stat().st_size <= MAX_EVALUATION_METRICS_BYTES
            except FileNotFoundError:
                small = True
            try:
                standing = _standing_from(self._load(paths.evaluation_metrics, session_id)) if small \
                    else _new_standing()
            except SessionError:
                standing = _new_standing()
            with contextlib.suppress(OSError):  # a read-only home: summarized again next time
                atomic_write_json(paths.standing, standing)
        return standing

    @staticmethod
    def start_untrusted_standing(root: Path) -> None:
        """Give the session folder ``root`` (an import being unpacked) a standing with no evaluations: what
        its evaluation_metrics.json claims was not measured here, so it ranks once evaluated here."""
        paths = SessionPaths.at(root)
        paths.state.mkdir(exist_ok=True)
        atomic_write_json(paths.standing, {**_new_standing(), "imported": True})

    def all_params(self, session_id: str) -> dict[str, dict[str, Any]]:
        """The five top-level documents (the get_all_params body minus status); {} for those not written."""
        with self._reads:
            paths = self._require(session_id)
            return {name: self._load(paths.document(name), session_id) for name in ALL_PARAMS}

    def all_params_json(self, session_id: str) -> bytes:
        """:meth:`all_params` encoded as :func:`rewards_api.safe_json.dumps` would, from the cache."""
        with self._reads:
            paths = self._require(session_id)
            return _params_json(paths, session_id)

    def all_sessions_json(self) -> bytes:
        """``{session_id: all_params}`` of every session, encoded as :func:`rewards_api.safe_json.dumps`
        would (the get_all_sessions answer): the documents' encodings are cached, so a listing of
        unchanged sessions costs a stat of each file. A session deleted meanwhile is left out."""
        with self._reads:
            parts = []
            for session_id in self._list_sessions():
                try:
                    paths = SessionPaths.at(self.home / session_id)
                    parts.append(b'"%s":%s' % (session_id.encode(), _params_json(paths, session_id)))
                except SessionNotFound:
                    continue
            return b"{%s}" % b",".join(parts)

    # -- writers used by the server and the CLI --------------------------------------------------------------

    def write_env_params(self, session_id: str, params: EnvParams, model_configuration: Any = None
                         ) -> dict[str, Any]:
        """Store env_params.json from checked parameters; return what was written (see :meth:`write_car`)."""
        return self.write_car(session_id, params, model_configuration)[0]

    def write_car(self, session_id: str, params: EnvParams, model_configuration: Any = None,
                  now: datetime | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Store env_params.json, keeping the session's network fit for its car; return what was written
        there and, if agent_params.json was written too, what it holds now (else None).

        The network follows the car (its first ``in`` is the car's observation, its last ``out`` its
        actions). With ``model_configuration`` given, it is checked against the new car and written with
        the env params (the other agent params kept). Without it, a stored network that fits the car is
        kept; a default one (see :func:`rewards_api.params.is_default_network`) is replaced with the car's
        default; one the user chose that does not fit is refused, a ParameterError that says which network
        would (nothing is written). A racing car's session without agent_params.json gets one, with the
        car's default network, so that every reader of the files sees the network it trains.

        A new car (action space, actions or speed range) means a new model, like a new network shape: the
        model history's ``runs`` go. Everything is written under one hold of the lock.
        """
        data = params.model_dump(mode="json", include=set(EnvParams.model_fields))
        shape = params.shape()
        with self.lock(session_id) as paths:
            previous = self._stored_env(paths, session_id)
            agent = self._load(paths.agent_params, session_id)
            network = self._network_for(shape, agent, model_configuration, paths.agent_params.exists())
            new_car = previous is None or previous.car() != params.car()
            written = None
            if network is not None:
                written = {**AgentParams().model_dump(mode="json"), **agent, "model_configuration": network}
                self._store_agent(paths, session_id, written, now, new_model=True)
            elif new_car:
                history = self._load(paths.model_history, session_id)
                if history.pop("runs", None) is not None:
                    atomic_write_json(paths.model_history, history)
            atomic_write_json(paths.env_params, data)
        return data, written

    def _stored_env(self, paths: SessionPaths, session_id: str) -> EnvParams | None:
        """The session's env params (the defaults, a classic car, when not written); None if invalid."""
        try:
            return EnvParams(**self._load(paths.env_params, session_id))
        except (ValueError, TypeError):
            return None

    @staticmethod
    def _network_for(shape: CarShape, agent: dict[str, Any], given: Any, has_file: bool) -> Any:
        """The network to write with a car's env params (None: agent_params.json stays as it is)."""
        if given is not None:
            _check_network(shape, given)
            return stored_model_configuration(given, shape)
        if not has_file or "model_configuration" not in agent:
            return None if shape.action_space == DEFAULT_ENV_PARAMS.action_space else shape.default()
        stored = agent["model_configuration"]
        try:
            parse_any_model_configuration(stored)
        except ValueError:  # not a network at all: training says so; nothing to keep or replace here
            return None
        try:
            _check_network(shape, stored)
        except ParameterError as exc:
            if is_default_network(stored):  # kept, not chosen: the car's own default replaces it
                return shape.default()
            raise ParameterError("model_configuration", stored, f"{exc.accepted}: send that network as "
                                 "model_configuration with these env params (or write the agent params with "
                                 "the default network first)") from None
        return None

    def write_agent_params(
        self, session_id: str, params: AgentParams, now: datetime | None = None
    ) -> dict[str, Any]:
        """Store agent_params.json as sent and set model_history's ``last_created``; return model_history.

        The network is checked against the session's car (env_params.json; when that file is not valid,
        against any car): a ParameterError for ``model_configuration`` names the inputs and outputs the car
        needs. ``last_trained`` is kept. When the network's shape changes, the next training cannot reuse
        the session's model and starts a new one, so its ``runs`` go (they describe the current model only);
        other changes (learning rate, epsilon, ...) keep the model, which the next training continues, and
        its ``runs``. Both files are written under one hold of the lock.
        """
        data = params.model_dump(mode="json", include=set(AgentParams.model_fields))
        with self.lock(session_id) as paths:
            env = self._stored_env(paths, session_id)
            if env is None:
                parse_any_model_configuration(data["model_configuration"])
            else:
                _check_network(env.shape(), data["model_configuration"])
            return self._store_agent(paths, session_id, data, now)

    def _store_agent(self, paths: SessionPaths, session_id: str, data: dict[str, Any], now: datetime | None,
                     new_model: bool = False) -> dict[str, Any]:
        """Write agent_params.json and model_history's ``last_created`` (the lock held); ``runs`` go with a
        new network, or with ``new_model``. Returns model_history."""
        created = {
            **_stamp(now or datetime.now()),
            "loss": data["loss_fn"],
            "optimizer": data["optimizer"],
            "gamma": data["gamma"],
            "epsilon": data["epsilon"],
            "model_config": data["model_configuration"],
        }
        try:
            previous = self._load(paths.agent_params, session_id)
            layers = parse_any_model_configuration(previous.get("model_configuration",
                                                                DEFAULT_MODEL_CONFIGURATION))
            same_network = not new_model and layers == parse_any_model_configuration(
                data["model_configuration"])
        except (SessionError, ValueError):  # the file held no valid network: it cannot be this one
            same_network = False
        atomic_write_json(paths.agent_params, data)
        history = self._load(paths.model_history, session_id)
        history["last_created"] = created
        history.setdefault("last_trained", {})
        if not same_network:
            history.pop("runs", None)
        paths.saved_models.mkdir(exist_ok=True)
        atomic_write_json(paths.model_history, history)
        return history

    def write_training_params(self, session_id: str, params: TrainingParams) -> dict[str, Any]:
        """Store training_params.json from checked parameters; return what was written."""
        data = params.model_dump(mode="json", include=set(TrainingParams.model_fields))
        self.write(session_id, "training_params", data)
        return data

    def write_reward_function(self, session_id: str, source: str) -> dict[str, Any]:
        """Check a reward function, then replace only ``reward_function`` in training_params.json.

        ParameterError if the source is refused. If the file is missing, the other keys get their defaults.
        Returns the stored training parameters.
        """
        check_reward_function(source)
        defaults = TrainingParams.model_construct().model_dump(mode="json")

        def replace(current: dict[str, Any]) -> None:
            for key, value in defaults.items():
                current.setdefault(key, value)
            current["reward_function"] = source

        return self.update(session_id, "training_params", replace)
