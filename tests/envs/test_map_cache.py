"""The radar maps' disk cache: keyed by the track's data, shared, and never stale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rewards_api.envs import radar
from rewards_api.envs.map_cache import cache_path
from rewards_api.envs.tracks import Track, get_track


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("REWARDS_CACHE_DIR", str(folder))
    radar.radar_maps.cache_clear()
    yield folder
    radar.radar_maps.cache_clear()


def small_track(width: float = 40.0, shift: float = 0.0) -> Track:
    angles = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    points = np.stack([150 + 90 * np.cos(angles) + shift, 120 - 70 * np.sin(angles)], axis=1)
    return Track("oval", points, width, (300, 240))


def measured(track: Track) -> np.ndarray:
    return radar._measure(radar._margin_grid(track).ravel(), track.asphalt, *track.size)


def test_maps_are_measured_once_then_read_from_disk(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    track = small_track()
    assert not radar.is_measured(track)
    first = radar.radar_maps(track)
    assert radar.is_measured(track) and len(list(cache.glob("radar-*.npy"))) == 1
    radar.radar_maps.cache_clear()
    calls: list[int] = []
    monkeypatch.setattr(radar, "_measure", lambda *args: calls.append(1) or np.zeros(1))
    again = radar.radar_maps(track)
    assert calls == []  # read, not measured
    assert np.array_equal(again, first) and not again.flags.writeable
    assert type(again) is np.ndarray  # a plain array over the mapped file


def test_a_changed_track_is_measured_again_under_its_own_key(cache: Path) -> None:
    track, wider, moved = small_track(), small_track(width=46.0), small_track(shift=7.0)
    maps = radar.radar_maps(track)
    for changed in (wider, moved):
        assert not radar.is_measured(changed)
        assert np.array_equal(radar.radar_maps(changed), measured(changed))
        assert not np.array_equal(radar.radar_maps(changed), maps)
    assert len(list(cache.glob("radar-*.npy"))) == 3


def test_a_damaged_entry_is_measured_again_and_replaced(cache: Path) -> None:
    track = small_track()
    good = radar.radar_maps(track).copy()
    path = next(cache.glob("radar-*.npy"))
    path.write_bytes(path.read_bytes()[: 1000])  # cut short
    radar.radar_maps.cache_clear()
    assert np.array_equal(radar.radar_maps(track), good)
    radar.radar_maps.cache_clear()
    np.save(path, np.zeros((3, 3), dtype=np.uint8))  # the wrong array
    assert np.array_equal(radar.radar_maps(track), good)
    assert np.load(path).shape == good.shape  # replaced by the right one


def test_an_unwritable_cache_still_gives_the_maps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("REWARDS_CACHE_DIR", str(blocker / "cache"))
    radar.radar_maps.cache_clear()
    track = small_track()
    assert np.array_equal(radar.radar_maps(track), measured(track))
    assert not radar.is_measured(track)


def test_the_key_covers_the_radar_constants(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    track = get_track(2)
    path = cache_path("radar", radar._key(radar._margin_grid(track)))
    monkeypatch.setattr(radar, "RADAR_RANGE", radar.RADAR_RANGE - 1)
    assert cache_path("radar", radar._key(radar._margin_grid(track))) != path
    assert path.parent == cache  # the folder $REWARDS_CACHE_DIR names
