"""Tracks: the built-in loops, their difficulties, seeded random tracks, look-up grids and radar maps."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rewards_api
from rewards_api.envs.physics import MAX_SPEED, MAX_STEERING, PIXELS_PER_METRE, WHEELBASE, speed_profile
from rewards_api.envs.pilot import pilot_actions
from rewards_api.envs.radar import HEADING_X, HEADING_Y, NUM_HEADINGS, radar_maps
from rewards_api.envs.reference import line_radii, racing_line, reference_lap_time
from rewards_api.envs.tracks import (
    ALL_NAMED_TRACKS,
    DIFFICULTIES,
    EVALUATION_NAMED_TRACKS,
    EVALUATION_SIZE,
    NAMED_TRACKS,
    RACING_TRACKS,
    TRAINING_SIZE,
    WAYPOINT_SPACING,
    Track,
    _random_track,
    builtin_track,
    builtin_tracks,
    get_track,
    named_track,
    random_track,
    track_mode,
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
    assert get_track("random:5:expert") is random_track(5, TRAINING_SIZE, "expert")
    assert get_track(" random:5:Expert ", "evaluation").name == "random:5:expert"
    assert get_track("random:5:expert", "evaluation").size == EVALUATION_SIZE
    for name in NAMED_TRACKS + RACING_TRACKS:
        assert get_track(name) is named_track(name) is get_track(name, "evaluation")
    assert get_track("gauntlet", "evaluation") is named_track("gauntlet")


@pytest.mark.parametrize(
    ("track", "mode", "message"),
    [
        (4, "training", "training tracks are 1, 2, 3"),
        (2, "evaluation", "evaluation tracks are 1"),
        ("random:abc", "training", "random:SEED"),
        ("random:42:hard", "training", "'hard' is not known: .*beginner, intermediate, advanced, expert"),
        ("random:4x:expert", "training", "whole number SEED and DIFFICULTY one of beginner, intermediate"),
        ("monza", "training", "serpent.*hairpin-alley"),
        ("gauntlet", "training", "'gauntlet' is an evaluation track, held out from training"),
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


# ----- every built-in track: valid, graded, and timed ---------------------------------------------------
BUILTIN_NAMES = [track.name for track in builtin_tracks()]


def test_there_are_at_least_twelve_builtin_tracks_of_every_difficulty() -> None:
    tracks = builtin_tracks()
    assert len(tracks) >= 12 and len(set(BUILTIN_NAMES)) == len(tracks)
    assert BUILTIN_NAMES[:8] == ["training-1", "training-2", "training-3", "evaluation-1", *NAMED_TRACKS]
    assert {track.difficulty for track in tracks} == set(DIFFICULTIES)
    assert len(RACING_TRACKS + EVALUATION_NAMED_TRACKS) >= 5


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_every_builtin_track_is_a_valid_timed_loop(name: str) -> None:
    track = next(track for track in builtin_tracks() if track.name == name)
    assert track.problems() == []
    assert track.difficulty in DIFFICULTIES and track.description
    assert 5.0 < reference_lap_time(track) < 40.0
    gaps = np.hypot(*track.segments.T)
    assert gaps.min() > 0.8 * WAYPOINT_SPACING and gaps.max() < 1.2 * WAYPOINT_SPACING
    # Both cars can follow the centre line: the racing car's full lock turns on 28 px, the classic car's 38.
    full_lock = WHEELBASE / math.tan(math.radians(MAX_STEERING)) * PIXELS_PER_METRE
    assert track.curvature_radii().min() > max(full_lock, 38.0)
    # The start is on a straight, heading along the 15-degree grid the classic car turns on.
    headings = np.degrees(np.arctan2(-track.segments[:12, 1], track.segments[:12, 0]))
    assert np.ptp(headings) < 3.0
    assert abs(headings[0] / 15.0 - round(headings[0] / 15.0)) * 15.0 < 3.0


def _tight_share(track: Track) -> float:
    """Share of the centre line in bends tighter than 80 px (a cornering speed under 2.2 m/s)."""
    return float(np.mean(track.curvature_radii() < 80.0))


def test_difficulties_are_graded() -> None:
    by_level = {level: [t for t in builtin_tracks() if t.difficulty == level] for level in DIFFICULTIES}
    widths = [np.mean([t.width for t in by_level[level]]) for level in DIFFICULTIES]
    tight = [np.mean([_tight_share(t) for t in by_level[level]]) for level in DIFFICULTIES]
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 4, widths
    assert tight == sorted(tight) and len(set(tight)) == 4, tight
    beginner, expert = by_level["beginner"], by_level["expert"]
    assert max(t.width for t in expert) <= 55 < 75 < min(t.width for t in beginner)
    assert min(_tight_share(t) for t in expert) > max(_tight_share(t) for t in beginner)


def _hardest_braking(track: Track, within_px: float = 150.0) -> tuple[float, float]:
    """The reference lap's top speed along its racing line, and the most speed (m/s) it sheds within
    ``within_px`` of driving: braking from a straight into a bend."""
    line = racing_line(track)
    spacing = np.hypot(*(np.roll(line, -1, axis=0) - line).T)
    speeds = speed_profile(line_radii(line), spacing)
    ahead = int(within_px / WAYPOINT_SPACING)
    drops = [speeds[i] - speeds[i:i + ahead].min() for i in range(len(speeds))]
    return float(speeds.max()), float(max(drops))


@pytest.mark.parametrize("name", ["drag-strip", "hairpin-alley", "needle", "gauntlet"])
def test_the_racing_tracks_have_straights_into_braking_zones(name: str) -> None:
    """The fastest lap reaches top speed on a straight and then brakes hard, from 4 m/s to under 2.2,
    into a hairpin; the beginner's speedway has no such bend."""
    top, braking = _hardest_braking(named_track(name))
    assert top == pytest.approx(MAX_SPEED) and braking > 1.8, (top, braking)
    assert named_track(name).width <= 65
    assert _hardest_braking(named_track("speedway"))[1] < 1.6


def test_the_evaluation_tracks_are_held_out() -> None:
    held_out = [t.name for t in builtin_tracks() if track_mode(t) == "evaluation"]
    assert held_out == ["evaluation-1", *EVALUATION_NAMED_TRACKS] and "gauntlet" in held_out
    assert named_track("gauntlet").difficulty == "expert"
    for name in ALL_NAMED_TRACKS:
        assert (track_mode(named_track(name)) == "evaluation") == (name in EVALUATION_NAMED_TRACKS)
    # The training set is as it was: 1-3 by number, and the named training tracks by name.
    assert [get_track(n).name for n in (1, 2, 3)] == ["training-1", "training-2", "training-3"]
    for number in (1, 2, 3):
        assert track_mode(get_track(number)) == "training"
    assert track_mode(get_track(1, "evaluation")) == "evaluation"


def _drive(name: str, action_space: str, driver: Callable[[Any], Any], limit: int = 3000) -> dict[str, Any]:
    env = gym.make(rewards_api.ENV_ID, track=name, mode="evaluation", action_space=action_space).unwrapped
    env.reset(seed=0)
    for _ in range(limit):
        _, _, terminated, truncated, info = env.step(driver(env.car))
        if terminated or truncated:
            return info
    raise AssertionError(f"{name}: the episode never ended")


def _racing_driver(track: Track, pace: float) -> Callable[[Any], list[float]]:
    """Pure pursuit of the reference's racing line, at ``pace`` times the reference's speed there."""
    line = racing_line(track)
    spacing = np.hypot(*(np.roll(line, -1, axis=0) - line).T)
    speeds = speed_profile(line_radii(line), spacing)[:-1]

    def drive(car: Any) -> list[float]:
        here = int(np.argmin(np.hypot(line[:, 0] - car.x, line[:, 1] - car.y)))
        tx, ty = line[(here + 4 + int(car.speed * 4)) % len(line)]
        aim = (math.atan2(car.y - ty, tx - car.x) - car.yaw + math.pi) % (2 * math.pi) - math.pi
        reach = max(math.hypot(tx - car.x, ty - car.y), 1.0) / PIXELS_PER_METRE
        steering = math.degrees(math.atan2(2 * WHEELBASE * math.sin(aim), reach))
        return [float(np.clip(steering, -MAX_STEERING, MAX_STEERING)),
                float(np.clip(pace * speeds[(here + 2) % len(line)], 0.5, MAX_SPEED))]

    return drive


@pytest.mark.parametrize("name", RACING_TRACKS + EVALUATION_NAMED_TRACKS)
def test_both_cars_lap_every_racing_track(name: str) -> None:
    """The original car (it turns on 38 px) laps with its centre-line pilot; the racing car laps close to
    the reference at its pace, and leaves the track when it takes the narrow tracks' bends too fast."""
    classic = _drive(name, "classic", lambda car: int(pilot_actions(car)[0]))
    assert classic["lap_complete"] is True, classic
    track = named_track(name)
    racing = _drive(name, "continuous", _racing_driver(track, 0.95))
    assert racing["lap_complete"] is True and not racing["offtrack"], racing
    assert racing["time"] <= 1.1 * reference_lap_time(track)
    if track.difficulty == "expert":
        too_fast = _drive(name, "continuous", _racing_driver(track, 1.3))
        assert too_fast["offtrack"] and not too_fast["lap_complete"], too_fast


# ----- random tracks with a difficulty -------------------------------------------------------------------
def test_random_seed_is_the_original_generators_track() -> None:
    """``random:SEED`` draws exactly what it drew before difficulties existed (recorded from that code)."""
    recorded = {
        (7, TRAINING_SIZE): (244, 60.0, 175464.6394, (507.8394, 267.757), (324.7817, 483.1591)),
        (7, EVALUATION_SIZE): (281, 60.0, 229332.4544, (641.0852, 269.4377), (475.9738, 514.0161)),
        (42, TRAINING_SIZE): (247, 75.0, 184368.005, (390.0098, 216.9315), (458.141, 528.2373)),
        (42, EVALUATION_SIZE): (287, 75.0, 239796.7362, (495.8315, 216.5811), (622.8066, 488.1094)),
    }
    for (seed, size), (count, width, total, first, hundredth) in recorded.items():
        mode = "training" if size == TRAINING_SIZE else "evaluation"
        track = get_track(f"random:{seed}", mode)
        assert track.name == f"random:{seed}" and track.description == f"Random practice track (seed {seed})"
        assert (track.num_waypoints, track.width) == (count, width)
        assert float(track.waypoints.sum()) == pytest.approx(total, abs=1e-3)
        assert track.waypoints[0] == pytest.approx(first, abs=1e-3)
        assert track.waypoints[100] == pytest.approx(hundredth, abs=1e-3)
        # "intermediate" is the original generator: the same loop under its own name.
        same = get_track(f"random:{seed}:intermediate", mode)
        assert same.name == f"random:{seed}:intermediate" and same.difficulty == "intermediate"
        assert np.array_equal(same.waypoints, track.waypoints) and same.width == track.width


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_random_tracks_with_a_difficulty_are_deterministic_and_valid(difficulty: str) -> None:
    first = [random_track(seed, TRAINING_SIZE, difficulty) for seed in range(8)]
    _random_track.cache_clear()
    for seed, track in enumerate(first):
        again = get_track(f"random:{seed}:{difficulty}")
        assert again is not track and np.array_equal(again.waypoints, track.waypoints)
        assert again.width == track.width and again.difficulty == difficulty
        assert track.problems() == [], (seed, difficulty)
        assert track.name == f"random:{seed}:{difficulty}"
    assert len({round(t.length) for t in first}) >= 6
    big = random_track(3, EVALUATION_SIZE, difficulty)
    assert big.size == EVALUATION_SIZE and big.problems() == []


def test_random_difficulties_are_graded() -> None:
    seeds = range(10)
    tracks = {level: [random_track(s, TRAINING_SIZE, level) for s in seeds] for level in DIFFICULTIES}
    widths = {level: {t.width for t in tracks[level]} for level in DIFFICULTIES}
    for easier, harder in itertools.pairwise(DIFFICULTIES):
        assert min(widths[easier]) > max(widths[harder]), (easier, harder, widths)
    tightest = {level: [float(t.curvature_radii().min()) for t in tracks[level]] for level in DIFFICULTIES}
    assert min(tightest["beginner"]) >= 100 and max(tightest["expert"]) <= 60
    assert max(tightest["advanced"]) <= 75
    mean_tightest = [np.mean(tightest[level]) for level in DIFFICULTIES]
    assert mean_tightest == sorted(mean_tightest, reverse=True), mean_tightest
    # Harder tracks have more bends, and more S-bends: more turning in all (a plain loop turns 360 degrees).
    turning = [np.mean([_total_turning(t) for t in tracks[level]]) for level in DIFFICULTIES]
    assert turning == sorted(turning) and len(set(turning)) == 4, turning
    assert turning[0] == pytest.approx(360.0, abs=1.0) and turning[3] > 450.0


def _total_turning(track: Track) -> float:
    """Degrees the centre line turns in a lap, left and right turns both counted."""
    angles = np.arctan2(track.segments[:, 1], track.segments[:, 0])
    return float(np.degrees(np.abs((np.roll(angles, -1) - angles + np.pi) % (2 * np.pi) - np.pi).sum()))
