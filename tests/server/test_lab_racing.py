"""The web lab's racing pieces without a browser: the picture of the actions, the server's verdict on them
beside the right field, and lap times beside the reference (and old evaluations shown as before)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree

from rewards_api.envs.catalogue import catalogue_json
from rewards_api.envs.physics import DEFAULT_ACTIONS, GRIP, MAX_SPEED, WHEELBASE
from rewards_api.ui import frame
from rewards_api.ui.car import (
    FAN_HEIGHT,
    action_effect,
    action_fan_svg,
    actions_problems,
    default_actions,
    speed_colours,
    turn_radius,
)
from rewards_api.ui.models import EVALUATION_COLUMNS, best_lap, car_text, evaluation_rows, reference_lap

SVG = "{http://www.w3.org/2000/svg}"
TIMES = "\N{MULTIPLICATION SIGN}"
LAP = f"12.3 s (1.18{TIMES} reference)"
OLD_METRICS = {"num_trials": 5, "record": 57.4, "mean_score": 40.0, "laps_completed": 5,
               "mean_progress": 100.0, "total_elapsed_time": 1.2, "evaluated_at": "2026-12-01T10:00:00Z"}
RACING_METRICS = {**OLD_METRICS, "laps_completed": 3, "mean_progress": 81.234, "completion_percent": 81.23,
                  "best_lap_time": 12.3, "mean_lap_time": 13.1, "off_track_count": 2,
                  "reference_lap_time": 10.42, "best_lap_ratio": 1.18, "car": "discrete"}


def rays(svg: str) -> dict[int, tuple[float, float, str]]:
    """Each drawn action's ray end (x, y) and colour, by action number (1-based, as the picture's titles)."""
    root = ElementTree.fromstring(svg)
    found = {}
    for group in root.iter(f"{SVG}g"):
        line = group.find(f"{SVG}line")
        found[int(group.get("data-action"))] = (float(line.get("x2")), float(line.get("y2")),
                                                line.get("stroke"))
    return found


def test_the_fan_draws_each_action_at_its_angle_as_long_as_its_speed() -> None:
    actions = [{"steering_angle": 30, "speed": 1.0}, {"steering_angle": 0, "speed": 4.0},
               {"steering_angle": -15, "speed": 2.0}, {"steering_angle": 0, "speed": 2.0}]
    svg = action_fan_svg(actions)
    assert svg.startswith("<svg") and f'height="{FAN_HEIGHT}"' in svg
    drawn = rays(svg)
    assert sorted(drawn) == [1, 2, 3, 4]
    origin_x = float(ElementTree.fromstring(svg).find(f"{SVG}g").find(f"{SVG}line").get("x1"))
    origin_y = float(ElementTree.fromstring(svg).find(f"{SVG}g").find(f"{SVG}line").get("y1"))
    left, straight_fast, right, straight_slow = (drawn[n] for n in (1, 2, 3, 4))
    assert left[0] < origin_x < right[0]  # + is left
    assert math.isclose(straight_fast[0], origin_x) and straight_fast[1] < straight_slow[1] < origin_y
    length = {n: math.hypot(x - origin_x, y - origin_y) for n, (x, y, _) in drawn.items()}
    assert math.isclose(length[2], 2 * length[4], rel_tol=1e-3)  # length follows speed
    assert math.isclose(length[3], length[4], rel_tol=1e-3)
    angle = math.degrees(math.atan2(origin_x - left[0], origin_y - left[1]))
    assert math.isclose(angle, 30, abs_tol=0.5)  # drawn to scale
    assert drawn[3][2] == drawn[4][2] != drawn[2][2] != drawn[1][2]  # one colour per speed
    assert "2 m/s" in svg and "4 m/s" in svg  # the legend


def test_the_fan_leaves_out_unfinished_rows_and_takes_no_text() -> None:
    svg = action_fan_svg([{"steering_angle": None, "speed": 2}, {"steering_angle": 10, "speed": math.inf},
                          {"steering_angle": "<script>", "speed": 1}, {"steering_angle": 5, "speed": 1}])
    assert sorted(rays(svg)) == [4] and "<script" not in svg
    assert len(rays(action_fan_svg(default_actions()))) == len(DEFAULT_ACTIONS) == 15


def test_speeds_get_colours_from_slow_blue_to_fast_red() -> None:
    colours = speed_colours([4.0, 1.5, 2.5, 1.5])
    assert list(colours) == [1.5, 2.5, 4.0] and len(set(colours.values())) == 3
    assert colours[1.5] == "#3478c6" and colours[4.0] == "#d63031"


def test_what_an_action_does_includes_the_grip_limit() -> None:
    assert turn_radius(0, 4.0) is None
    radius, grip = turn_radius(30, 4.0)
    assert grip and math.isclose(radius, MAX_SPEED**2 / GRIP)
    radius, grip = turn_radius(30, 0.5)
    assert not grip and math.isclose(radius, WHEELBASE / math.tan(math.radians(30)))
    assert action_effect({"steering_angle": 15, "speed": 2.5}) == \
        "15° left at 2.5 m/s: a 1.04 m circle (grip-limited)"
    assert action_effect({"steering_angle": 0, "speed": 4}) == "straight on at 4 m/s"
    assert action_effect({"steering_angle": None, "speed": 4}) == "give a steering angle and a speed"


def test_the_servers_verdict_names_the_action_and_its_field() -> None:
    assert actions_problems(default_actions()) == []
    actions = default_actions()
    actions[3]["speed"] = 9
    [(index, key, message)] = actions_problems(actions)
    assert (index, key) == (3, "speed") and "actions[3].speed = 9" in message and "0.5 to 4 m/s" in message
    actions = default_actions()
    actions[2] = dict(actions[0])
    [(index, key, message)] = actions_problems(actions)
    assert (index, key) == (2, None) and "same action as actions[0]" in message
    [(index, key, message)] = actions_problems(default_actions()[:1])
    assert index is None and "from 2 to 64 actions, not 1" in message


def test_lap_times_are_shown_beside_the_reference() -> None:
    card = {"evaluation": {"training": {"1": None}, "evaluation": {"1": RACING_METRICS}},
            "lap_times": {"evaluation": {"1": {"best_lap": LAP}}}}
    [row] = evaluation_rows(card)
    assert row["best_lap"] == LAP and reference_lap(RACING_METRICS) == "10.4 s"
    assert row["off_track"] == "2 / 5" and row["laps"] == "3 / 5" and row["progress"] == "81 %"
    assert row["timed"]
    assert best_lap(RACING_METRICS, None) == LAP  # from the metrics alone
    assert best_lap({**RACING_METRICS, "laps_completed": 0, "best_lap_time": None,
                     "best_lap_ratio": None}, None) == "no lap"


def test_an_evaluation_from_before_lap_times_shows_as_before() -> None:
    [row] = evaluation_rows({"evaluation": {"evaluation": {"1": OLD_METRICS}}, "lap_times": {}})
    assert not row["timed"] and row["best_lap"] == "—" and row["off_track"] == "—"
    assert reference_lap(OLD_METRICS) is None
    assert {key: row[key] for key, _ in EVALUATION_COLUMNS} == {
        "track": "Evaluation track (unseen)", "record": "57.4", "laps": "5 / 5", "progress": "100 %"}


def test_the_card_names_the_car() -> None:
    assert car_text({"environment_world": 1}) == "classic car"
    assert car_text({"action_space": "discrete", "actions": default_actions()}) == "racing car, 15 actions"
    assert car_text({"action_space": "continuous", "speed_range": [0.5, 4]}) == "racing car, continuous"


def test_the_track_choices_show_difficulty_and_reference_lap(monkeypatch) -> None:
    catalogue = frame.catalogue_by_track(catalogue_json())
    monkeypatch.setattr(frame, "_catalogue", catalogue)
    choices = frame.track_choices(catalogue)
    unseen = catalogue[("evaluation", "1")]
    assert choices["evaluation:1"] == (f"Evaluation track (unseen) · {unseen['difficulty']} · reference lap "
                                       f"{unseen['reference_lap_time']:.1f} s")
    gauntlet = catalogue[("evaluation", "gauntlet")]
    assert choices["evaluation:gauntlet"].startswith(f"Gauntlet (unseen) · {gauntlet['difficulty']} · ")
    assert len(choices) == len(catalogue) >= 12
    assert set(frame.track_choices(catalogue, "training")) == {
        f"training:{key}" for mode, key in catalogue if mode == "training"}
    assert frame.track_label("training", "serpent") == "Serpent"
    before = frame.track_choices({})  # a server without a catalogue: the built-in tracks, as before
    assert before == {"training:1": "Training track 1", "training:2": "Training track 2",
                      "training:3": "Training track 3", "evaluation:1": "Evaluation track (unseen)"}
