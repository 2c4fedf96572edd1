"""The car a new model drives, chosen in the wizard: the classic car, or the racing car with its actions
(discrete) or its speed range (continuous).

The racing car's ``discrete`` actions are edited as a list of rows (steering angle, speed), checked with the
API's own parameter model (:class:`rewards_api.params.EnvParams`: the same rules, said the same way), and
drawn as a fan (:func:`action_fan_svg`): one ray per action, at its steering angle, as long as its speed and
coloured by it. The picture is SVG text made here from numbers only, so the page needs no drawing library.
The continuous car's ``speed_range`` (min and max m/s) is checked by the same model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import pydantic
from nicegui import ui

from ..envs.physics import (
    DEFAULT_ACTIONS,
    DEFAULT_SPEED_RANGE,
    GRIP,
    MAX_ACTIONS,
    MAX_SPEED,
    MAX_STEERING,
    MIN_SPEED,
    WHEELBASE,
)
from ..params import EnvParams, validation_errors

CARS: dict[str, tuple[str, str]] = {
    "classic": ("Classic (3 actions, constant speed)",
                "The original car: left, right or straight on, always at the same speed. Every track's "
                "figures so far were made with it."),
    "discrete": ("Racing, discrete actions",
                 "Speed and steering with a grip limit: a bend taken too fast runs the car wide and off the "
                 "track. You choose its actions, each a steering angle and a speed; the network picks one a "
                 "step. Learned by DQN or PPO."),
    "continuous": ("Racing, continuous",
                   "The racing car with any steering angle within ±30° and any speed in a range you set: the "
                   "network gives the angle and the speed itself. Learned by PPO (DQN picks from a list of "
                   "actions)."),
}
"""The cars the wizard offers, by action space: (title, what it is)."""
AVAILABLE_CARS = ("classic", "discrete", "continuous")
"""The cars a model can be created with in the lab."""

RANGE_FIELDS = (("min", "Min speed m/s"), ("max", "Max speed m/s"))
"""The continuous car's speed range fields: test id suffix and label."""

FAN_WIDTH, FAN_HEIGHT = 360, 236
_ORIGIN = (FAN_WIDTH / 2, 186.0)
_RADIUS = 150.0  # the ray of an action at MAX_SPEED, pixels
_GUIDE_ANGLES = (-30.0, -15.0, 0.0, 15.0, 30.0)
_PALETTE = ("#3478c6", "#1b9e9e", "#43a047", "#c0a000", "#f28c1c", "#d63031")  # slow ... fast


def default_actions() -> list[dict[str, float]]:
    """The discrete car's default actions (physics.DEFAULT_ACTIONS) as the API takes them."""
    return [action.as_dict() for action in DEFAULT_ACTIONS]


def speed_colours(speeds: Sequence[float]) -> dict[float, str]:
    """A colour for each of ``speeds``, slowest blue through green and orange to the fastest red (spread
    over the palette, so that three speeds are blue, green and red)."""
    ordered = sorted(set(speeds))
    last = len(_PALETTE) - 1
    if len(ordered) == 1:
        return {ordered[0]: _PALETTE[0]}
    return {speed: _PALETTE[round(index * last / (len(ordered) - 1))] for index, speed in enumerate(ordered)}


def turn_radius(steering_angle: float, speed: float) -> tuple[float, bool] | None:
    """The radius (m) of the circle an action drives once its speed is reached, and whether the grip, not
    the steering, sets it (``GRIP``: lateral acceleration ``speed**2 / radius`` is capped); ``None`` when it
    goes straight on."""
    if abs(steering_angle) < 1e-9:
        return None
    steered = WHEELBASE / math.tan(math.radians(abs(steering_angle)))
    gripped = speed * speed / GRIP
    return max(steered, gripped), gripped > steered


def action_effect(action: dict[str, Any]) -> str:
    """What an action does, in words: "15° left at 2.5 m/s: a 0.60 m circle (grip-limited)"."""
    angle, speed = _finite(action.get("steering_angle")), _finite(action.get("speed"))
    if angle is None or speed is None:
        return "give a steering angle and a speed"
    side = "straight on" if angle == 0 else f"{abs(angle):g}° {'left' if angle > 0 else 'right'}"
    turning = turn_radius(angle, speed)
    if turning is None:
        return f"{side} at {speed:g} m/s"
    radius, grip = turning
    return f"{side} at {speed:g} m/s: a {radius:.2f} m circle" + (" (grip-limited)" if grip else "")


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _point(angle: float, length: float) -> tuple[float, float]:
    """The end of a ray of ``length`` pixels at steering ``angle`` degrees (+ is left) from the car."""
    radians = math.radians(angle)
    return _ORIGIN[0] - length * math.sin(radians), _ORIGIN[1] - length * math.cos(radians)


def action_fan_svg(actions: Sequence[dict[str, Any]]) -> str:
    """An SVG picture of what each action does: from the car (at the bottom, facing up) one ray per action
    at its steering angle (+ is left, drawn to scale up to ±MAX_STEERING), as long as its speed (MAX_SPEED
    reaches the outer arc) and coloured by it, with a legend of the speeds. Actions without a finite angle
    and speed are left out; angles and speeds beyond the car's limits are drawn at the limits.

    Only numbers go into the text (formatted here), so the SVG is safe to put in the page as it is.
    """
    ox, oy = _ORIGIN
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {FAN_WIDTH} {FAN_HEIGHT}" '
             f'width="{FAN_WIDTH}" height="{FAN_HEIGHT}" role="img" class="action-fan" '
             'aria-label="what each action does: steering angle and speed" font-family="sans-serif">',
             f'<rect x="0" y="0" width="{FAN_WIDTH}" height="{FAN_HEIGHT}" fill="#f8f9fb" rx="6"/>']
    left, right = _point(MAX_STEERING, _RADIUS), _point(-MAX_STEERING, _RADIUS)
    parts.append(f'<path d="M {left[0]:.1f} {left[1]:.1f} A {_RADIUS:.0f} {_RADIUS:.0f} 0 0 1 '
                 f'{right[0]:.1f} {right[1]:.1f}" fill="none" stroke="#d5d9e0" stroke-dasharray="4 4"/>')
    for angle in _GUIDE_ANGLES:
        x, y = _point(angle, _RADIUS)
        parts.append(f'<line x1="{ox:.1f}" y1="{oy:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="#e2e5ea"/>')
        lx, ly = _point(angle, _RADIUS + 12)
        parts.append(f'<text x="{lx:.1f}" y="{ly + 4:.1f}" font-size="11" fill="#8c929c" '
                     f'text-anchor="middle">{f"{angle:+g}" if angle else "0"}°</text>')
    edge = _point(-MAX_STEERING - 4, _RADIUS)
    parts.append(f'<text x="{edge[0]:.1f}" y="{edge[1] + 14:.1f}" font-size="10" fill="#8c929c">'
                 f'{MAX_SPEED:g} m/s</text>'
                 f'<text x="10" y="{oy + 6:.1f}" font-size="11" fill="#8c929c">← left (+)</text>'
                 f'<text x="{FAN_WIDTH - 10}" y="{oy + 6:.1f}" font-size="11" fill="#8c929c" '
                 'text-anchor="end">(-) right →</text>')
    drawn = []
    for index, action in enumerate(actions):
        angle, speed = _finite(action.get("steering_angle")), _finite(action.get("speed"))
        if angle is not None and speed is not None:
            drawn.append((index, max(-MAX_STEERING, min(MAX_STEERING, angle)),
                          max(0.0, min(MAX_SPEED, speed)), angle, speed))
    colours = speed_colours([item[2] for item in drawn])
    for index, angle, speed, given_angle, given_speed in sorted(drawn, key=lambda item: -item[2]):
        x, y = _point(angle, _RADIUS * speed / MAX_SPEED)  # longest first: every shorter ray stays seen
        colour = colours[speed]
        parts.append(f'<g class="fan-action" data-action="{index + 1}"><title>action {index + 1}: '
                     f'{given_angle:g}° at {given_speed:g} m/s</title>'
                     f'<line x1="{ox:.1f}" y1="{oy:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="{colour}" '
                     f'stroke-width="4" stroke-linecap="round"/>'
                     f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}" stroke="#ffffff"/></g>')
    parts.append(f'<rect x="{ox - 7:.1f}" y="{oy - 4:.1f}" width="14" height="24" rx="3" fill="#3c4048"/>')
    speeds = sorted(colours)
    x = 10.0
    for speed in speeds[:5]:
        parts.append(f'<circle cx="{x + 5:.1f}" cy="{FAN_HEIGHT - 12}" r="5" fill="{colours[speed]}"/>'
                     f'<text x="{x + 14:.1f}" y="{FAN_HEIGHT - 8}" font-size="11" fill="#3c4048">'
                     f'{speed:g} m/s</text>')
        x += 66
    if len(speeds) > 5:
        parts.append(f'<text x="{x:.1f}" y="{FAN_HEIGHT - 8}" font-size="11" fill="#8c929c">…</text>')
    parts.append("</svg>")
    return "".join(parts)


_ACTION_PARAMETER = re.compile(r"actions\[(\d+)\](?:\.(steering_angle|speed))?$")


def actions_problems(actions: list[dict[str, Any]]) -> list[tuple[int | None, str | None, str]]:
    """What the server would refuse in a discrete car's ``actions``, in its own words: ``(index, key,
    message)`` for each problem, ``index`` (counted from 0, as the messages count) and ``key``
    (``steering_angle`` or ``speed``) naming the field when the message is about one (else ``None``)."""
    try:
        EnvParams.model_validate({"action_space": "discrete", "actions": actions})
    except pydantic.ValidationError as exc:
        found = []
        for problem in validation_errors(exc):
            where = _ACTION_PARAMETER.match(problem["parameter"])
            found.append((int(where.group(1)) if where else None, where.group(2) if where else None,
                          problem["message"]))
        return found
    return []


def speed_range_problems(speed_range: list[Any]) -> list[tuple[int | None, str]]:
    """What the server would refuse in the continuous car's ``speed_range`` ``[min, max]``, in its own
    words: ``(index, message)``, ``index`` 0 (min) or 1 (max) when the value is not a number, else
    ``None`` (the rule is about the pair)."""
    for index, value in enumerate(speed_range):
        if _finite(value) is None:
            return [(index, f"speed_range: give the {('min', 'max')[index]} speed in m/s")]
    try:
        EnvParams.model_validate({"action_space": "continuous", "speed_range": list(speed_range)})
    except pydantic.ValidationError as exc:
        return [(None, problem["message"]) for problem in validation_errors(exc)]
    return []


class CarPicker:
    """The wizard's car step: a card per car, the discrete car's actions (rows, fan, the server's word) and
    the continuous car's speed range.

    ``changed`` is called whenever the car or its actions change (the network's shape follows them).
    """

    def __init__(self, changed: Callable[[], None]) -> None:
        self.changed = changed
        self.car = "classic"
        self.actions: list[dict[str, Any]] = default_actions()
        self.speed_range: list[Any] = list(DEFAULT_SPEED_RANGE)
        self.cards: dict[str, ui.card] = {}
        self.effects: list[ui.label] = []
        self.angles: list[ui.number] = []
        self.speeds: list[ui.number] = []
        with ui.element("div").classes("grid grid-cols-1 md:grid-cols-3 gap-3 w-full"):
            for car, (title, text) in CARS.items():
                available = car in AVAILABLE_CARS
                with ui.card().classes("p-3 gap-1 car-choice" + (" cursor-pointer" if available else
                                                                  " opacity-60")) \
                        .props(f'data-testid="car-{car}"') as card:
                    with ui.row().classes("items-center gap-2 no-wrap"):
                        ui.label(title).classes("font-medium")
                        if not available:
                            ui.badge("coming", color="grey")
                    ui.label(text).classes("text-xs text-gray-600")
                if available:
                    card.on("click", lambda car=car: self.pick(car))
                self.cards[car] = card
        self.editor = ui.column().classes("w-full gap-2").props('data-testid="actions-editor"')
        with self.editor:
            ui.label("Actions: the network chooses one every step (0.1 s). The angle is the front wheels' "
                     f"(+ is left, at most ±{MAX_STEERING:g}°), the speed the one the car drives towards "
                     f"({MIN_SPEED:g} to {MAX_SPEED:g} m/s).").classes("text-sm")
            with ui.element("div").classes("grid grid-cols-1 lg:grid-cols-2 gap-4 w-full items-start"):
                with ui.column().classes("gap-1 w-full"):
                    self.rows = ui.column().classes("gap-0 w-full max-h-96 overflow-auto")
                    with ui.row().classes("gap-2"):
                        self.add_button = ui.button("Add an action", icon="add", on_click=self.add) \
                            .props('dense outline no-caps data-testid="action-add"')
                        ui.button("Default actions", icon="restart_alt", on_click=self.reset) \
                            .props('dense flat no-caps data-testid="actions-default"')
                    self.problem = ui.label().classes("text-negative text-sm whitespace-pre-wrap") \
                        .props('data-testid="actions-error"')
                with ui.column().classes("gap-1 items-center"):
                    self.fan = ui.html("", sanitize=False).props('data-testid="action-fan"')
                    ui.label("Each ray is an action: its direction the steering angle, its length and colour "
                             "the speed. Fast and sharp cannot go together: the tyres' grip widens the turn."
                             ).classes("text-xs text-gray-500 max-w-sm")
        self.range_editor = ui.column().classes("w-full gap-2").props('data-testid="speed-range-editor"')
        with self.range_editor:
            ui.label("Speed range: the speeds the network may ask for, from the least to the most "
                     f"({MIN_SPEED:g} to {MAX_SPEED:g} m/s). Every step it gives a steering angle "
                     f"(at most ±{MAX_STEERING:g}°) and a speed in this range.").classes("text-sm")
            with ui.row().classes("gap-4 items-start"):
                self.range_fields = [
                    ui.number(label, value=self.speed_range[index], step=0.5,
                              format="%g", on_change=lambda event, i=index: self.edit_range(i, event.value))
                    .props(f'dense data-testid="speed-range-{key}"').classes("w-40")
                    for index, (key, label) in enumerate(RANGE_FIELDS)]
                self.range_problem = ui.label().classes("text-sm text-gray-500 self-center") \
                    .props('data-testid="speed-range-error"')
        self.pick(self.car)

    # ----- choosing ---------------------------------------------------------------------------------------
    def pick(self, car: str) -> None:
        self.car = car
        for other, card in self.cards.items():
            card.classes(add="chosen" if other == car else "", remove="" if other == car else "chosen")
        self.editor.set_visibility(car == "discrete")
        self.range_editor.set_visibility(car == "continuous")
        if car == "discrete":
            self.draw_rows()
        if car == "continuous":
            self.check()
        self.changed()

    def env_params(self) -> dict[str, Any]:
        """The car's env_params keys: none for the classic car (its env_params.json keeps the original four
        keys), ``action_space`` and ``actions`` for the discrete one, ``action_space`` and ``speed_range``
        for the continuous one."""
        if self.car == "classic":
            return {}
        if self.car == "continuous":
            return {"action_space": self.car, "speed_range": list(self.speed_range)}
        return {"action_space": self.car, "actions": [dict(action) for action in self.actions]}

    def check(self) -> bool:
        """Show the server's verdict on the actions: a message about one action beside its row (its field
        marked), any other below the list; the continuous car's speed range beside its fields; whether
        they are accepted."""
        if self.car == "continuous":
            return self.check_range()
        problems = actions_problems(self.actions) if self.car == "discrete" else []
        by_row = {index: (key, message) for index, key, message in problems if index is not None}
        for index, (effect, angle, speed) in enumerate(zip(self.effects, self.angles, self.speeds,
                                                           strict=True)):
            key, message = by_row.get(index, (None, None))
            effect.text = message or action_effect(self.actions[index])
            effect.classes(replace="text-xs " + ("text-negative" if message else "text-gray-500"))
            for field, name in ((angle, "steering_angle"), (speed, "speed")):
                wrong = message is not None and key in (name, None)
                if wrong != ("error" in field.props):
                    if wrong:
                        field.props("error")
                    else:
                        field.props(remove="error")
        self.problem.text = "; ".join(message for index, _, message in problems if index is None)
        return not problems

    def check_range(self) -> bool:
        """The server's verdict on the speed range beside its fields (the field it is about marked)."""
        problems = speed_range_problems(self.speed_range)
        for index, field in enumerate(self.range_fields):
            wrong = any(where in (index, None) for where, _ in problems)
            if wrong != ("error" in field.props):
                if wrong:
                    field.props("error")
                else:
                    field.props(remove="error")
        low, high = (_finite(value) for value in self.speed_range)
        self.range_problem.text = "; ".join(message for _, message in problems) or \
            f"The car drives from {low:g} to {high:g} m/s."
        self.range_problem.classes(replace="text-sm self-center " + ("text-negative" if problems else
                                                                     "text-gray-500"))
        return not problems

    def edit_range(self, index: int, value: Any) -> None:
        self.speed_range[index] = value
        self.check_range()
        self.changed()

    # ----- the actions -----------------------------------------------------------------------------------
    def draw_rows(self) -> None:
        self.rows.clear()
        self.effects, self.angles, self.speeds = [], [], []
        with self.rows:
            for index, action in enumerate(self.actions):
                with ui.element("div").classes("w-full items-center gap-2 action-row") \
                        .props(f'data-testid="action-{index}"'):
                    ui.label(f"{index}").classes("text-right text-gray-500")
                    self.angles.append(
                        ui.number("Steering °", value=action["steering_angle"], step=5, format="%g",
                                  on_change=lambda event, i=index: self.edit(i, "steering_angle",
                                                                             event.value))
                        .props(f'dense hide-bottom-space data-testid="action-{index}-angle"'))
                    self.speeds.append(
                        ui.number("Speed m/s", value=action["speed"], step=0.5, format="%g",
                                  on_change=lambda event, i=index: self.edit(i, "speed", event.value))
                        .props(f'dense hide-bottom-space data-testid="action-{index}-speed"'))
                    ui.button(icon="close", on_click=lambda i=index: self.remove(i)) \
                        .props(f'flat round dense size=sm data-testid="action-{index}-remove"') \
                        .tooltip("Remove this action")
                    self.effects.append(ui.label(action_effect(action)).classes("text-xs text-gray-500")
                                        .props(f'data-testid="action-{index}-effect"'))
        self.add_button.set_enabled(len(self.actions) < MAX_ACTIONS)
        self.redraw()

    def redraw(self) -> None:
        self.fan.content = action_fan_svg(self.actions)
        self.check()

    def edit(self, index: int, key: str, value: Any) -> None:
        if index >= len(self.actions):
            return
        self.actions[index][key] = value
        self.redraw()
        self.changed()

    def add(self) -> None:
        """A new row: straight on, at the slowest speed the list does not go straight at yet."""
        speed = MIN_SPEED
        while {"steering_angle": 0.0, "speed": speed} in self.actions and speed < MAX_SPEED:
            speed = min(speed + 0.5, MAX_SPEED)
        self.actions.append({"steering_angle": 0.0, "speed": speed})
        self.draw_rows()
        self.changed()

    def remove(self, index: int) -> None:
        if index < len(self.actions):
            del self.actions[index]
        self.draw_rows()
        self.changed()

    def reset(self) -> None:
        self.actions = default_actions()
        self.draw_rows()
        self.changed()
