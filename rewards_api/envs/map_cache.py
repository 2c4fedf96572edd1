"""Radar maps kept on disk, so that a process building a track's maps does it once per machine, not once
per training.

Measuring a track's radar maps (:func:`rewards_api.envs.radar.radar_maps`) takes 1-2 s of CPU; every
training worker and evaluation child needs the maps of its tracks. They are stored as ``.npy`` files under
:func:`cache_dir`, named by a digest of everything they are computed from (the track's distance grid, its
size and width, and the radar's constants), so a changed track, or a changed measurement, is a new name:
an entry is never stale, only unused. A file is read memory-mapped and read-only: the processes training
on one track share one copy of its maps in the page cache.

Entries are written to a temporary file and renamed into place, so a reader never sees half a file and two
processes computing the same maps at once both succeed. A file that does not hold the expected array (cut
short, changed by hand) is measured again and replaced. When the folder cannot be written the maps are
computed and kept in memory only.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Part of every key: raise it when what a map holds changes in a way its inputs do not show."""


def cache_dir() -> Path:
    """``$REWARDS_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/rewards-api`` (``~/.cache/rewards-api``)."""
    configured = os.environ.get("REWARDS_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "rewards-api"


def digest(*parts: object) -> str:
    """A hex digest of arrays (their dtype, shape and bytes) and other values (their ``repr``)."""
    hasher = hashlib.blake2b(digest_size=16)
    hasher.update(f"v{FORMAT_VERSION}".encode())
    for part in parts:
        if isinstance(part, np.ndarray):
            array = np.ascontiguousarray(part)
            hasher.update(f"|{array.dtype.str}{array.shape}|".encode())
            hasher.update(memoryview(array).cast("B"))
        else:
            hasher.update(f"|{part!r}|".encode())
    return hasher.hexdigest()


def cache_path(kind: str, key: str) -> Path:
    """Where the array of ``kind`` with ``key`` is stored (whether or not it is yet)."""
    return cache_dir() / f"{kind}-{key}.npy"


def cached_array(kind: str, key: str, shape: tuple[int, ...], dtype: np.dtype | type,
                 compute: Callable[[], np.ndarray]) -> np.ndarray:
    """The array stored as ``<cache_dir>/<kind>-<key>.npy`` (read-only, memory-mapped) if it holds
    ``shape`` and ``dtype``; otherwise ``compute()``, stored there for next time, and returned read-only."""
    path = cache_path(kind, key)
    with contextlib.suppress(OSError, ValueError):
        stored = np.load(path, mmap_mode="r", allow_pickle=False)
        if stored.shape == shape and stored.dtype == np.dtype(dtype):
            return np.asarray(stored)  # a plain read-only array over the mapped file
        log.warning("%s does not hold a %s array of shape %s; measuring it again", path, kind, shape)
    array = compute()
    if array.shape != shape or array.dtype != np.dtype(dtype):
        raise ValueError(f"{kind}: computed an array of {array.shape} {array.dtype}, not {shape} {dtype}")
    try:
        _store(path, array)
    except OSError as exc:
        log.info("radar maps not cached in %s: %s", path.parent, exc)
    array.setflags(write=False)
    return array


def _store(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.save(file, array, allow_pickle=False)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
