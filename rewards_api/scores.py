"""Evaluation figures as the leaderboards read them: finite numbers only, whatever a reward function gave.

A reward function's scores are the user's own numbers: one that returns ``1.7e308`` makes records whose
sum is infinite, and a document that did not come from this server's evaluations (an imported archive)
may hold anything. Everything here is plain Python (no PyTorch), so that the session store can keep a
small summary of each session's evaluations (see :meth:`rewards_api.store.SessionStore.record_evaluation`)
and the leaderboards never read a document a user can make large.
"""

from __future__ import annotations

import math
import sys
from typing import Any

__all__ = ["ALGORITHMS", "CARS", "EVALUATION_TRACK", "MODES", "RANKED_BY", "SUMMARY_FIGURES", "clamp",
           "evaluation_summary", "final_eval_score", "lap_text", "rank_key", "track_figures"]

MODES = ("training", "evaluation")
EVALUATION_TRACK = "1"
"""The held-out evaluation track whose laps, lap times and progress the leaderboards rank by."""
CARS = ("classic", "discrete", "continuous")
"""The kinds of car (``rewards_api.envs.physics.ACTION_SPACES``, not imported here: it loads NumPy, and the
CLI's leaderboard does not need it)."""
ALGORITHMS = ("dqn", "ppo")
"""The learning algorithms (``rewards_api.params.LEARNING_ALGORITHMS``)."""
RANKED_BY = "laps completed, then best lap time, then progress on the evaluation track"
"""How every leaderboard orders its sessions (:func:`rank_key`), for the documentation of each."""
_LARGEST = sys.float_info.max
_TIMES = "\N{MULTIPLICATION SIGN}"
_MAX_TRIALS = 100


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def clamp(value: float) -> float:
    """``value`` as a finite float: infinities (and ints beyond a float's range) become the largest float
    of their sign. NaN is not a number to clamp: ValueError."""
    try:
        number = float(value)
    except OverflowError:  # an int of hundreds of digits
        number = math.copysign(math.inf, value)
    if math.isnan(number):
        raise ValueError("NaN is not a score")
    return max(-_LARGEST, min(_LARGEST, number))


def _section(document: Any, mode: str) -> dict[str, Any]:
    section = document.get(mode) if isinstance(document, dict) else None
    return section if isinstance(section, dict) else {}


def _evaluated(metrics: Any) -> bool:
    return isinstance(metrics, dict) and bool(metrics.get("num_trials"))


def final_eval_score(document: dict[str, Any]) -> float:
    """The original's summary of evaluation_metrics.json: the sum over every evaluated track (in both
    modes) of ``record / num_trials``, rounded to 4 decimals and always finite (a sum beyond a float's
    range is the largest float). ValueError (or TypeError) for a record or num_trials that is not a
    number."""
    parts = []
    for mode in MODES:
        for key, metrics in _section(document, mode).items():
            if key.isdigit() and _evaluated(metrics):
                record, trials = metrics["record"], metrics["num_trials"]
                if not _is_number(record) or not _is_number(trials):
                    raise TypeError(f"{mode} track {key}: record {record!r} / num_trials {trials!r}")
                parts.append(clamp(record) / clamp(trials))
    return round(clamp(sum(parts)), 4)  # once a partial sum is infinite it stays so: never NaN


def _positive(value: Any) -> float | None:
    """A finite number above zero as a float (a lap time, a ratio), else ``None``."""
    return float(value) if _is_number(value) and 0 < value < _LARGEST else None


def track_figures(metrics: Any) -> dict[str, Any] | None:
    """What the leaderboards keep of one track's evaluation metrics: ``num_trials`` (1-100), ``record``
    (finite), ``laps_completed`` (0..num_trials) and ``mean_progress`` (0-100 %), and, from evaluations
    that timed their laps, ``best_lap_time`` and ``reference_lap_time`` (seconds), ``best_lap_ratio`` (the
    best lap over its start's reference), ``car`` (its action space) and ``algorithm`` (what trained the
    model evaluated: dqn or ppo). ``None`` each when missing or out
    of range (an evaluation made before lap times were recorded has none, and ranks by laps and progress);
    ``None`` for a track not evaluated or whose record or trials are not numbers."""
    if not _evaluated(metrics):
        return None
    trials, record = metrics.get("num_trials"), metrics.get("record")
    if not isinstance(trials, int) or isinstance(trials, bool) or not 1 <= trials <= _MAX_TRIALS:
        return None
    if not _is_number(record) or (isinstance(record, float) and math.isnan(record)):
        return None
    laps, progress = metrics.get("laps_completed"), metrics.get("mean_progress")
    laps_ok = isinstance(laps, int) and not isinstance(laps, bool) and 0 <= laps <= trials
    progress_ok = _is_number(progress) and 0 <= progress <= 100  # NaN fails both comparisons
    lapped = laps_ok and laps > 0  # a lap time without a lap is not one
    car, algorithm = metrics.get("car"), metrics.get("algorithm")
    return {"num_trials": trials, "record": clamp(record), "laps_completed": laps if laps_ok else None,
            "mean_progress": float(progress) if progress_ok else None,
            "best_lap_time": _positive(metrics.get("best_lap_time")) if lapped else None,
            "best_lap_ratio": _positive(metrics.get("best_lap_ratio")) if lapped else None,
            "reference_lap_time": _positive(metrics.get("reference_lap_time")),
            "car": car if car in CARS else None, "algorithm": algorithm if algorithm in ALGORITHMS else None}


SUMMARY_FIGURES = ("record", "laps_completed", "mean_progress", "num_trials", "best_lap_time",
                   "best_lap_ratio", "reference_lap_time", "car", "algorithm")
"""The evaluation track's figures in a session's summary (:func:`evaluation_summary`)."""


def evaluation_summary(evaluation_metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The final evaluation score (:func:`final_eval_score`) with the evaluation track's figures
    (:data:`SUMMARY_FIGURES`, see :func:`track_figures`; ``None`` each if that track was not evaluated, or
    not with lap times); ``None`` for a session evaluated on no track at all. ValueError for metrics that
    are not numbers."""
    if not any(key.isdigit() and _evaluated(metrics)
               for mode in MODES for key, metrics in _section(evaluation_metrics, mode).items()):
        return None
    try:
        score = final_eval_score(evaluation_metrics)
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"evaluation_metrics.json holds a record or num_trials that is not a number "
                         f"({exc}): evaluate the session again") from None
    track = track_figures(_section(evaluation_metrics, "evaluation").get(EVALUATION_TRACK)) or {}
    return {"score": score, **{name: track.get(name) for name in SUMMARY_FIGURES}}


def rank_key(laps_completed: Any, best_lap_time: Any, mean_progress: Any) -> tuple[float, bool, float, float]:
    """The sort key of a standing (smaller first): more laps completed on the evaluation track, then the
    faster best lap (a session without a timed lap after those with one), then more progress. Missing
    figures count as none (0 laps, no lap time, 0 %). A reward function's units (``score``, ``record``)
    never decide a rank: they are the user's own numbers."""
    laps, progress = (float(value) if _is_number(value) and math.isfinite(value) else 0.0
                      for value in (laps_completed, mean_progress))
    lap = _positive(best_lap_time)
    return -laps, lap is None, lap if lap is not None else 0.0, -progress


def lap_text(best_lap_time: Any, best_lap_ratio: Any) -> str | None:
    """A best lap as the CLI and the model card show it: ``"12.3 s (1.18x reference)"``, with a
    multiplication sign for the x (``"12.3 s"`` without a ratio; seconds to 2 decimals at most); ``None``
    without a lap time."""
    lap = _positive(best_lap_time)
    if lap is None:
        return None
    ratio = _positive(best_lap_ratio)
    seconds = f"{lap:.2f}".rstrip("0").rstrip(".")
    return f"{seconds} s" + (f" ({ratio:.2f}{_TIMES} reference)" if ratio is not None else "")
