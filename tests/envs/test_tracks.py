"""Tracks: the built-in loops, seeded random tracks, look-up grids and radar maps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewards_api.envs.radar import HEADING_X, HEADING_Y, NUM_HEADINGS, radar_maps
from rewards_api.envs.tracks import (
    EVALUATION_SIZE,
    TRAINING_SIZE,
    WAYPOINT_SPACING,
    _random_track,
    builtin_track,
    get_track,
    random_track,
)

BUILTIN = [("training", 1), ("training", 2), ("training", 3), ("evaluation", 1)]


@pytest.mark.parametrize(("mode", "number"), BUILTIN)
def test_builtin_tracks_are_valid_loops(mode: str, number: int) -> None:
    track = builtin_track(mode, number)
    assert track.problems() == []
    assert track.size == (TRAINING_SIZE if mode == "training" else EVALUATION_SIZE)
    gaps = np.hypot(*track.segments.T)
    assert gaps.min() > 0.8 * WAYPOINT_SPACING and gaps.max() < 1.2 * WAYPOINT_SPACING
    assert track.length > 2000


@pytest.mark.parametrize(("mode", "number"), BUILTIN)
def test_builtin_tracks_start_on_a_straight_on_the_heading_grid(mode: str, number: int) -> None:
    track = builtin_track(mode, number)
    headings = np.degrees(np.arctan2(-track.segments[:12, 1], track.segments[:12, 0]))
    assert np.ptp(headings) < 3.0
    assert abs(headings[0] / 15.0 - round(headings[0] / 15.0)) * 15.0 < 3.0


def test_builtin_tracks_are_distinct() -> None:
    masks = [builtin_track("training", n).asphalt for n in (1, 2, 3)]
    for i in range(3):
        for j in range(i + 1, 3):
            overlap = (masks[i] & masks[j]).sum() / (masks[i] | masks[j]).sum()
            assert overlap < 0.6, (i + 1, j + 1, overlap)


def test_random_tracks_are_deterministic_valid_and_varied() -> None:
    a, b = random_track(7), random_track(7)
    assert a is b or np.array_equal(a.waypoints, b.waypoints)
    _random_track.cache_clear()
    assert np.array_equal(random_track(7).waypoints, a.waypoints)
    lengths = set()
    for seed in range(20):
        track = random_track(seed)
        assert track.problems() == [], seed
        lengths.add(round(track.length))
    assert len(lengths) >= 15


def test_get_track_resolves_every_spelling() -> None:
    assert get_track(2) is builtin_track("training", 2)
    assert get_track("track-3.png") is builtin_track("training", 3)
    assert get_track("1", "evaluation") is builtin_track("evaluation", 1)
    assert get_track("random:5").name == "random:5"
    assert get_track("random:5", "evaluation").size == EVALUATION_SIZE


@pytest.mark.parametrize(
    ("track", "mode", "message"),
    [
        (4, "training", "training tracks are 1, 2, 3"),
        (2, "evaluation", "evaluation tracks are 1"),
        ("random:abc", "training", "random:SEED"),
        (1, "racing", "mode must be"),
    ],
)
def test_get_track_errors_say_what_is_accepted(track: object, mode: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_track(track, mode)  # type: ignore[arg-type]


def test_grids_agree_with_the_centre_line() -> None:
    track = builtin_track("training", 1)
    rng = np.random.default_rng(0)
    ys, xs = np.nonzero(track.asphalt)
    for i in rng.choice(len(xs), 200, replace=False):
        px, py = xs[i] + 0.5, ys[i] + 0.5
        d = np.hypot(track.waypoints[:, 0] - px, track.waypoints[:, 1] - py)
        assert track.center_distance[ys[i], xs[i]] == pytest.approx(d.min(), abs=1e-3)
        assert track.nearest_waypoint[ys[i], xs[i]] == np.argmin(d)
    assert not track.asphalt[0, 0] and track.asphalt[tuple(track.waypoints[0, ::-1].astype(int))]


def test_radar_maps_match_a_pixel_by_pixel_march() -> None:
    track = builtin_track("training", 2)
    maps = radar_maps(track)
    assert maps.shape == (NUM_HEADINGS, *track.asphalt.shape)
    rng = np.random.default_rng(1)
    ys, xs = np.nonzero(track.asphalt)
    errors = []
    for i in rng.choice(len(xs), 150, replace=False):
        k = int(rng.integers(NUM_HEADINGS))
        x0, y0 = float(xs[i]), float(ys[i])  # maps are measured from integer points
        distance = 200.0
        for step in np.arange(0.0, 200.0, 0.25):
            px, py = int(x0 + HEADING_X[k] * step), int(y0 + HEADING_Y[k] * step)
            inside = 0 <= px < track.size[0] and 0 <= py < track.size[1]
            if not inside or not track.asphalt[py, px]:
                distance = step
                break
        errors.append(abs(float(maps[k, ys[i], xs[i]]) - distance))
    assert np.median(errors) <= 1.0
    assert np.percentile(errors, 95) <= 3.0
    assert maps[:, ~track.asphalt].max() == 0


def test_straight_ahead_radar_reads_the_straight() -> None:
    track = builtin_track("training", 1)
    maps = radar_maps(track)
    x, y = track.waypoints[0]
    heading = round(math.degrees(math.atan2(-track.segments[0, 1], track.segments[0, 0])) / 15) % 24
    side = maps[(heading + 4) % 24, int(y), int(x)]
    assert side == pytest.approx(track.half_width / math.sin(math.radians(60)), abs=2)
