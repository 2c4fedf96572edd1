"""The built-in tracks are the original package's pictures: their asphalt overlaps the original's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from rewards_api.envs.tracks import (
    MIN_RADIUS,
    NAMED_TRACKS,
    asphalt_iou,
    builtin_track,
    get_track,
    named_track,
)

OUTLINES = Path(__file__).parent / "data" / "original_asphalt.json"
ORIGINAL = [("training", 1), ("training", 2), ("training", 3), ("evaluation", 1)]


def original_asphalt(mode: str, number: int) -> np.ndarray:
    """The original picture's asphalt, filled from its traced outlines (even-odd: holes stay grass)."""
    entry = json.loads(OUTLINES.read_text())[f"{mode}-{number}"]
    width, height = entry["size"]
    mask = np.zeros((height, width), dtype=bool)
    for polygon in entry["polygons"]:
        layer = Image.new("1", (width, height), 0)
        # The outline runs through pixel edges; a pixel is inside when its centre is.
        ImageDraw.Draw(layer).polygon([(x + 0.5, y + 0.5) for x, y in polygon], fill=1)
        mask ^= np.asarray(layer, dtype=bool)
    return mask


@pytest.mark.parametrize(("mode", "number"), ORIGINAL)
def test_builtin_track_overlaps_the_original_picture(mode: str, number: int) -> None:
    original = original_asphalt(mode, number)
    track = builtin_track(mode, number)
    assert original.shape == (track.size[1], track.size[0])
    # The outlines hold one loop of asphalt: an outer boundary and the hole of grass inside it.
    assert 0.25 < original.mean() < 0.6
    assert asphalt_iou(track, original) >= 0.8


def test_a_different_track_does_not_pass_for_the_original() -> None:
    assert asphalt_iou(builtin_track("training", 2), original_asphalt("training", 1)) < 0.6
    assert asphalt_iou(named_track("serpent"), original_asphalt("training", 1)) < 0.8


@pytest.mark.parametrize(("mode", "number"), ORIGINAL)
def test_builtin_track_starts_where_the_original_car_did(mode: str, number: int) -> None:
    track = builtin_track(mode, number)
    x, y, heading = track.pose_at(0)
    # The original car starts at (200, 50) heading east, on the top straight.
    assert 195 <= x <= 240 and abs(y - 50) < 5
    assert abs(np.degrees(heading)) < 3
    assert track.curvature_radii().min() >= MIN_RADIUS


@pytest.mark.parametrize("name", NAMED_TRACKS)
def test_the_first_tracks_are_kept_by_name(name: str) -> None:
    track = get_track(name)
    assert track is named_track(name)
    assert track.name == name
    assert track.problems() == []
    assert track.width == 70.0


def test_an_unknown_track_name_lists_the_named_tracks() -> None:
    with pytest.raises(ValueError, match="serpent"):
        get_track("serpant")
