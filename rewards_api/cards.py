"""Model cards: what the original "Your models" screen showed about a session, and its score chart.

:func:`model_card` gathers, from the session's documents, when the model was made and last trained, its
configuration and size, its record, how it did on each evaluated track (with its best lap beside the
track's reference lap) and the runs that trained it.
:func:`score_plot_png` draws the score and mean-score history as a small PNG (readable at 320 x 160).

A card is a few file reads: the parameter count comes from the layers (no network is built), and the
model itself is not loaded (``trained_model`` says whether model.pth exists).
"""

from __future__ import annotations

import dataclasses
import io
import math
import numbers
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pydantic
from PIL import Image, ImageDraw, ImageFont

from .params import LEARNING_ALGORITHMS, AgentParams, EnvParams, first_error_message
from .scores import final_eval_score, lap_text
from .store import SessionError, SessionStore

__all__ = [
    "LAP_FIGURES",
    "MAX_PLOT_HEIGHT",
    "MAX_PLOT_WIDTH",
    "MEAN_COLOUR",
    "MIN_PLOT_HEIGHT",
    "MIN_PLOT_WIDTH",
    "SCORE_COLOUR",
    "TRACKS",
    "lap_times",
    "model_card",
    "parameter_count",
    "score_plot_png",
    "session_plot_png",
]

TRACKS: dict[str, tuple[str, ...]] = {"training": ("1", "2", "3"), "evaluation": ("1",)}
"""The built-in tracks of each mode: a card lists them all, evaluated or not."""

SCORE_COLOUR = (52, 120, 198)
"""The episode scores' line (blue)."""
MEAN_COLOUR = (232, 106, 26)
"""The mean scores' line (orange)."""
MIN_PLOT_WIDTH, MAX_PLOT_WIDTH = 120, 2000
MIN_PLOT_HEIGHT, MAX_PLOT_HEIGHT = 80, 1200

_BACKGROUND = (255, 255, 255)
_PLOT_AREA = (248, 249, 251)
_GRID = (226, 229, 234)
_AXIS = (120, 126, 136)
_TEXT = (60, 64, 72)
_MUTED = (140, 146, 156)


def parameter_count(layers: Sequence[Sequence[int]]) -> int:
    """Weights and biases of a fully-connected network ``[(in, out), ...]``: sum of ``(in + 1) * out``."""
    return sum((int(fan_in) + 1) * int(fan_out) for fan_in, fan_out in layers)


def _stamp(entry: Any) -> dict[str, str] | None:
    """``{"date", "time"}`` of a model_history entry, or None when it has none."""
    if isinstance(entry, dict) and isinstance(entry.get("date"), str) and isinstance(entry.get("time"), str):
        return {"date": entry["date"], "time": entry["time"]}
    return None


def _number(value: Any) -> float | int | None:
    """A finite number from a document, or None for anything else (a hand-edited file may hold anything)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return value if math.isfinite(value) else None


def _checked(kind: type[pydantic.BaseModel], data: dict[str, Any], file: str, session_id: str) -> Any:
    try:
        return kind(**data)
    except pydantic.ValidationError as exc:
        raise SessionError(f"session {session_id!r}: {file} is not valid ({first_error_message(exc)}); fix "
                           "it by writing the parameters again", session_id) from None


def _evaluations(document: dict[str, Any]) -> dict[str, dict[str, dict[str, Any] | None]]:
    """Per mode, per track: the metrics of the last evaluation, or None for a track not evaluated."""
    results: dict[str, dict[str, dict[str, Any] | None]] = {}
    for mode, builtin in TRACKS.items():
        section = document.get(mode)
        section = section if isinstance(section, dict) else {}
        extra = sorted(key for key, value in section.items()
                       if key not in builtin and isinstance(value, dict))
        keys = [*builtin, *extra]
        results[mode] = {key: (section.get(key) or None) if isinstance(section.get(key), dict) else None
                         for key in keys}
    return results


LAP_FIGURES = ("best_lap_time", "mean_lap_time", "best_lap_ratio", "reference_lap_time")
"""An evaluation's lap figures that a card's ``lap_times`` shows (see :func:`lap_times`)."""


def _positive(value: Any) -> float | int | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def lap_times(evaluation: dict[str, dict[str, dict[str, Any] | None]]
              ) -> dict[str, dict[str, dict[str, Any] | None]]:
    """Per mode, per track of :func:`_evaluations`: its lap figures (:data:`LAP_FIGURES`, seconds and the
    best lap's ratio to its start's reference; ``None`` each when not recorded, as in an evaluation made
    before lap times were) and ``best_lap``, the best lap as shown beside the reference
    (``"12.3 s (1.18x reference)"``, or ``None`` without a lap); ``None`` for a track not evaluated."""
    result: dict[str, dict[str, dict[str, Any] | None]] = {}
    for mode, tracks in evaluation.items():
        result[mode] = {}
        for track, metrics in tracks.items():
            if metrics is None:
                result[mode][track] = None
                continue
            figures = {name: _positive(metrics.get(name)) for name in LAP_FIGURES}
            figures["best_lap"] = lap_text(figures["best_lap_time"], figures["best_lap_ratio"])
            result[mode][track] = figures
    return result


def _histories(metrics: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """The score and mean-score lists of training_metrics.json ([] for a missing or broken one)."""
    scores, means = metrics.get("plot_scores"), metrics.get("plot_mean_scores")
    return (scores if isinstance(scores, list) else [], means if isinstance(means, list) else [])


def model_card(store: SessionStore, session_id: str) -> dict[str, Any]:
    """The session's model card, a JSON-ready dict (the ``/model_info`` body minus ``status``).

    Keys: ``session_id``; ``created`` and ``last_trained`` (``{"date", "time"}`` or None); ``model``
    (``layers``, ``model_configuration`` as stored, ``loss_fn``, ``optimizer``, ``learning_rate``,
    ``gamma`` and ``epsilon`` as fractions, ``num_episodes``, ``algorithm`` (training_params.json's
    learning_algorithm), ``normalize_rewards``, ``ppo`` (PPO's hyper-parameters, None for DQN),
    ``parameters`` = weights + biases, and
    ``configured``: False while agent_params.json is not written and the defaults apply);
    ``trained_model`` (model.pth exists); ``record``; ``episodes_trained``; ``last_mean_score``;
    ``environment`` (env_params, defaults filled in) and ``track``; ``evaluation`` (per mode and track:
    metrics or None); ``lap_times`` (per mode and track: the best lap beside the reference, see
    :func:`lap_times`); ``final_eval_score``; ``runs`` (model_history's list of runs, as stored).

    SessionNotFound for an unknown session, SessionError for a document that cannot be read.
    """
    everything = store.all_params(session_id)
    history = store.read(session_id, "model_history")
    agent = _checked(AgentParams, everything["agent_params"], "agent_params.json", session_id)
    env = _checked(EnvParams, everything["env_params"], "env_params.json", session_id)
    config = agent.config()
    algorithm = everything["training_params"].get("learning_algorithm")
    algorithm = algorithm if algorithm in LEARNING_ALGORITHMS else "dqn"
    scores, means = _histories(everything["training_metrics"])
    trained = history.get("last_trained")
    record = _number(trained.get("record")) if isinstance(trained, dict) else None
    if record is None:
        finite = [value for value in map(_number, scores) if value is not None]
        record = max(finite) if finite else None
    runs = history.get("runs", [])
    evaluation = everything["evaluation_metrics"]
    evaluated = _evaluations(evaluation)
    return {
        "session_id": session_id,
        "created": _stamp(history.get("last_created")),
        "last_trained": _stamp(trained),
        "model": {
            "layers": [list(layer) for layer in config.layers],
            "model_configuration": agent.model_configuration,
            "loss_fn": config.loss_fn,
            "optimizer": config.optimizer,
            "learning_rate": config.learning_rate,
            "gamma": config.gamma,
            "epsilon": config.epsilon,
            "num_episodes": config.num_episodes,
            "algorithm": algorithm,
            "normalize_rewards": config.normalize_rewards,
            "ppo": dataclasses.asdict(config.ppo) if algorithm == "ppo" else None,
            "parameters": parameter_count(config.layers),
            "configured": bool(everything["agent_params"]),
        },
        "trained_model": store.paths(session_id).model.is_file(),
        "record": record,
        "episodes_trained": len(scores),
        "last_mean_score": _number(means[-1]) if means else None,
        "environment": env.model_dump(mode="json"),
        "track": env.environment_world,
        "evaluation": evaluated,
        "lap_times": lap_times(evaluated),
        "final_eval_score": final_eval_score(evaluation),
        "runs": runs if isinstance(runs, list) else [],
    }


# ----- the score chart -------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _series(values: Sequence[Any]) -> np.ndarray:
    """The values as floats; anything that is not a finite number becomes NaN (and is not drawn)."""
    return np.array([float(v) if _number(v) is not None else math.nan for v in values], dtype=np.float64)


def _ticks(low: float, high: float, count: int) -> tuple[list[float], int]:
    """Round values for about ``count`` grid lines within ``[low, high]`` (the step of 1, 2, 2.5 or 5 times
    a power of ten nearest to the range / ``count``), and the decimals their labels need."""
    raw = (high - low) / max(count, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10)), key=lambda step: abs(math.log(step / raw)))
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9) + (1 if step / magnitude == 2.5 else 0))
    return [index * step for index in range(first, last + 1)], decimals


def _label(value: float, decimals: int) -> str:
    """An axis label: 12000 -> "12k", 2500000 -> "2.5M", 0.25 with 2 decimals -> "0.25"."""
    for scale, suffix in ((1e6, "M"), (1e4, "k")):
        if abs(value) >= scale:
            return f"{value / (1e3 if suffix == 'k' else scale):g}{suffix}"
    return f"{value:.{decimals}f}" if value else "0"


def _columns(values: np.ndarray, length: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Downsample a series to one (low, high, last) triple per pixel column of a ``width``-pixel plot.

    Episode ``i`` of ``length`` falls in column ``i * width // length``. Each column spans its min..max
    and reaches back to the previous column's last value, so the line stays connected and no spike is
    lost however long the history. Empty columns (shorter series) are NaN.
    """
    low = np.full(width, math.nan)
    high = np.full(width, math.nan)
    last = np.full(width, math.nan)
    if not len(values):
        return low, high, last
    column = np.arange(len(values)) * width // max(length, 1)
    finite = ~np.isnan(values)
    np.fmin.at(low, column[finite], values[finite])
    np.fmax.at(high, column[finite], values[finite])
    last[column[finite]] = values[finite]  # the later episode wins: fancy assignment keeps the last write
    return low, high, last


def _draw_series(draw: ImageDraw.ImageDraw, values: np.ndarray, length: int, box: tuple[int, int, int, int],
                 span: tuple[float, float], colour: tuple[int, int, int], line: int) -> None:
    left, top, right, bottom = box
    low_value, high_value = span

    def y_of(value: float) -> float:
        return bottom - (value - low_value) / (high_value - low_value) * (bottom - top)

    width = right - left + 1
    if length <= width:  # few episodes: a plain polyline through each point
        step = (right - left) / max(length - 1, 1)
        points = [(left + i * step, y_of(v)) for i, v in enumerate(values) if not math.isnan(v)]
        if len(points) == 1:
            x, y = points[0]
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
        elif points:
            draw.line(points, fill=colour, width=line, joint="curve")
        return
    low, high, last = _columns(values, length, width)
    previous = math.nan
    for offset in range(width):
        if math.isnan(low[offset]):
            continue
        lo, hi = low[offset], high[offset]
        if not math.isnan(previous):
            lo, hi = min(lo, previous), max(hi, previous)
        x = left + offset
        draw.line([(x, y_of(hi)), (x, y_of(lo))], fill=colour, width=line)
        previous = last[offset]


def score_plot_png(scores: Sequence[float], mean_scores: Sequence[float], width: int = 320,
                   height: int = 160) -> bytes:
    """A PNG chart of the episode scores (blue) and mean scores (orange) against episodes.

    Axes with the score range and the episode count, a small legend, and one pixel column per episode
    range when the history is longer than the plot is wide (min to max of each column, so no spike is
    lost). An empty history draws an empty chart saying "not trained yet". ``width`` must be
    :data:`MIN_PLOT_WIDTH`..:data:`MAX_PLOT_WIDTH` and ``height`` :data:`MIN_PLOT_HEIGHT`..
    :data:`MAX_PLOT_HEIGHT` pixels (ValueError otherwise).
    """
    for name, value, low, high in (("width", width, MIN_PLOT_WIDTH, MAX_PLOT_WIDTH),
                                   ("height", height, MIN_PLOT_HEIGHT, MAX_PLOT_HEIGHT)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name} = {value!r} is not valid: use a whole number of pixels from {low} to "
                             f"{high}")
    score_values, mean_values = _series(scores), _series(mean_scores)
    length = max(len(score_values), len(mean_values))
    both = np.concatenate([score_values, mean_values])
    finite = both[~np.isnan(both)]

    font_size = max(9, min(16, height // 14))
    font = _font(font_size)
    line_height = font_size + 3
    image = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(image)

    if finite.size:
        low_value, high_value = float(finite.min()), float(finite.max())
        if high_value - low_value < 1e-9:
            low_value, high_value = low_value - 1, high_value + 1
        pad = (high_value - low_value) * 0.06
        low_value, high_value = low_value - pad, high_value + pad
        plot_height = height - 2 * line_height - 4
        ticks, decimals = _ticks(low_value, high_value, max(2, plot_height // (3 * line_height)))
        y_labels = [(value, _label(value, decimals)) for value in ticks]
    else:
        low_value, high_value, y_labels = 0.0, 1.0, []
    label_width = max((font.getlength(text) for _, text in y_labels), default=0)
    box = (int(label_width) + 8, line_height + 2, width - 6, height - line_height - 2)
    left, top, right, bottom = box

    draw.rectangle(box, fill=_PLOT_AREA)
    for value, text in y_labels:
        y = bottom - (value - low_value) / (high_value - low_value) * (bottom - top)
        draw.line([(left, y), (right, y)], fill=_GRID)
        draw.text((left - 4, y), text, font=font, fill=_TEXT, anchor="rm")
    draw.line([(left, top), (left, bottom), (right, bottom)], fill=_AXIS)

    # Legend in the header strip: a short stroke of each colour and its name; the episode count on the right.
    x = left
    for name, colour in (("score", SCORE_COLOUR), ("mean score", MEAN_COLOUR)):
        middle = line_height // 2 + 1
        draw.line([(x, middle), (x + 12, middle)], fill=colour, width=2)
        draw.text((x + 15, middle), name, font=font, fill=_TEXT, anchor="lm")
        x += 15 + int(font.getlength(name)) + 10

    if not length or not finite.size:
        message = "not trained yet"
        draw.text(((left + right) / 2, (top + bottom) / 2), message, font=font, fill=_MUTED, anchor="mm")
    else:
        draw.text((left, bottom + 3), "1", font=font, fill=_TEXT, anchor="lt")
        draw.text((right, bottom + 3), f"{length:,} episodes" if length > 1 else "1 episode", font=font,
                  fill=_TEXT, anchor="rt")
        span = (low_value, high_value)
        _draw_series(draw, score_values, length, box, span, SCORE_COLOUR, 1)
        _draw_series(draw, mean_values, length, box, span, MEAN_COLOUR, 2)

    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def session_plot_png(store: SessionStore, session_id: str, width: int = 320, height: int = 160) -> bytes:
    """:func:`score_plot_png` of the session's training_metrics.json (SessionNotFound for an unknown one)."""
    scores, means = _histories(store.read(session_id, "training_metrics"))
    return score_plot_png(scores, means, width, height)
