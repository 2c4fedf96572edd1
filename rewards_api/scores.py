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

__all__ = ["EVALUATION_TRACK", "MODES", "clamp", "evaluation_summary", "final_eval_score", "track_figures"]

MODES = ("training", "evaluation")
EVALUATION_TRACK = "1"
"""The held-out evaluation track whose laps and progress the leaderboards show."""
_LARGEST = sys.float_info.max
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


def track_figures(metrics: Any) -> dict[str, Any] | None:
    """What the leaderboards keep of one track's evaluation metrics: ``num_trials`` (1-100), ``record``
    (finite), ``laps_completed`` (0..num_trials) and ``mean_progress`` (0-100 %; ``None`` each when missing
    or out of range); ``None`` for a track not evaluated or whose record or trials are not numbers."""
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
    return {"num_trials": trials, "record": clamp(record), "laps_completed": laps if laps_ok else None,
            "mean_progress": float(progress) if progress_ok else None}


def evaluation_summary(evaluation_metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The final evaluation score (:func:`final_eval_score`) with the record, laps completed, mean progress
    and trials on the evaluation track (``None`` each if that track was not evaluated); ``None`` for a
    session evaluated on no track at all. ValueError for metrics that are not numbers."""
    if not any(key.isdigit() and _evaluated(metrics)
               for mode in MODES for key, metrics in _section(evaluation_metrics, mode).items()):
        return None
    try:
        score = final_eval_score(evaluation_metrics)
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"evaluation_metrics.json holds a record or num_trials that is not a number "
                         f"({exc}): evaluate the session again") from None
    track = track_figures(_section(evaluation_metrics, "evaluation").get(EVALUATION_TRACK)) or {}
    return {"score": score, **{name: track.get(name)
                               for name in ("record", "laps_completed", "mean_progress", "num_trials")}}
