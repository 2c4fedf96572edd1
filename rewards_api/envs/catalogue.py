"""The catalogue of built-in tracks: each one's name, difficulty, size, length and reference lap time.

It is what a learner picks a track from (``GET /api/v1/tracks``, the lab) and what a lap time is read
against: the reference lap (:func:`rewards_api.envs.reference.reference_lap_time`) is computed from the
track's geometry and the car's physics, never written down, so it follows any change to either.

A track is asked for with two values, as everywhere in the API: ``track`` (``track=`` of the env,
``track_num`` of ``/evaluate``, ``--track`` of the CLI) and ``mode``. The training tracks are 1-3 and
the named training tracks; evaluation track 1 and the named evaluation tracks (``gauntlet``) are held out
from training: they are asked for in ``evaluation`` mode only, and a model never trains on them, so its
result there is its result on a track it has never seen.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from .physics import PIXELS_PER_METRE
from .reference import reference_lap_time
from .tracks import DIFFICULTIES, Track, builtin_tracks, track_mode


@dataclass(frozen=True)
class TrackInfo:
    """One built-in track, as the catalogue lists it."""

    name: str
    """The track's own name: ``training-1``, ``evaluation-1``, ``serpent``..."""
    title: str
    """A name to show: ``Track 1``, ``Evaluation track 1``, ``Serpent``."""
    description: str
    difficulty: str
    """One of ``DIFFICULTIES``: beginner, intermediate, advanced, expert."""
    mode: str
    """``training``, or ``evaluation`` for a track held out from training."""
    track: str
    """What to ask for it with, together with ``mode``: ``"1"`` (a number), or its name."""
    size: tuple[int, int]
    """Image width and height, pixels."""
    width_px: float
    """Width of the asphalt, pixels (1 px = 1 cm)."""
    length_m: float
    """Length of a lap along the centre line, metres."""
    tightest_bend_px: float
    """Radius of the tightest bend of the centre line, pixels."""
    reference_lap_time: float
    """Seconds of the fastest lap the racing car's physics allows from a standing start (the faster of the
    centre line and a racing line: :mod:`rewards_api.envs.reference`)."""

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape (``size`` as a ``[width, height]`` list)."""
        return {**asdict(self), "size": list(self.size)}


def _title(track: Track) -> str:
    mode, _, number = track.name.partition("-")
    if mode in ("training", "evaluation") and number.isdigit():
        return f"Track {number}" if mode == "training" else f"Evaluation track {number}"
    return track.description.split(":", 1)[0] if ":" in track.description else track.name


def track_info(track: Track) -> TrackInfo:
    """The catalogue entry of a built-in track (a random track too: its ``track`` is its name)."""
    mode, _, number = track.name.partition("-")
    asked_as = number if mode in ("training", "evaluation") and number.isdigit() else track.name
    return TrackInfo(
        name=track.name,
        title=_title(track),
        description=track.description,
        difficulty=track.difficulty,
        mode=track_mode(track),
        track=asked_as,
        size=(int(track.size[0]), int(track.size[1])),
        width_px=float(track.width),
        length_m=round(track.length / PIXELS_PER_METRE, 2),
        tightest_bend_px=round(float(track.curvature_radii().min()), 1),
        reference_lap_time=round(reference_lap_time(track), 2),
    )


@lru_cache(maxsize=1)
def _catalogue() -> tuple[TrackInfo, ...]:
    return tuple(track_info(track) for track in builtin_tracks())


def track_catalogue() -> list[TrackInfo]:
    """Every built-in track (in the order of :func:`~rewards_api.envs.tracks.builtin_tracks`), computed once
    per process: 0.2 s (the racing lines from the disk cache; 4 s the first time on a machine); the tracks'
    look-up grids and radar maps are not needed."""
    return list(_catalogue())


def catalogue_json() -> dict[str, Any]:
    """The catalogue as ``GET /api/v1/tracks`` answers it (without the ``status`` field)."""
    return {
        "difficulties": list(DIFFICULTIES),
        "random": "random:SEED or random:SEED:DIFFICULTY, such as random:42:expert (random:SEED is "
                  "random:SEED:intermediate); in evaluation mode a random track is 1000x700",
        "tracks": [info.as_dict() for info in track_catalogue()],
    }
