"""The track catalogue: every built-in track with its difficulty, mode, size, length and reference lap."""

from __future__ import annotations

import json

import pytest

from rewards_api.envs.catalogue import TrackInfo, catalogue_json, track_catalogue, track_info
from rewards_api.envs.physics import PIXELS_PER_METRE
from rewards_api.envs.reference import reference_lap_time
from rewards_api.envs.tracks import DIFFICULTIES, builtin_tracks, get_track


def test_the_catalogue_lists_every_builtin_track_once() -> None:
    catalogue = track_catalogue()
    assert [info.name for info in catalogue] == [track.name for track in builtin_tracks()]
    assert len(catalogue) >= 12 and len({info.name for info in catalogue}) == len(catalogue)
    assert {info.difficulty for info in catalogue} == set(DIFFICULTIES)
    assert catalogue[0].title == "Track 1" and catalogue[3].title == "Evaluation track 1"
    assert {info.title for info in catalogue} >= {"Serpent", "Grand tour", "Speedway", "Gauntlet"}


@pytest.mark.parametrize("name", [track.name for track in builtin_tracks()])  # the catalogue: when run
def test_each_entry_is_asked_for_as_it_says_and_measures_its_track(name: str) -> None:
    info: TrackInfo = next(info for info in track_catalogue() if info.name == name)
    track = get_track(int(info.track) if info.track.isdigit() else info.track, info.mode)
    assert track.name == info.name and track.difficulty == info.difficulty
    assert info.reference_lap_time == round(reference_lap_time(track), 2)
    assert 5.0 < info.reference_lap_time < 40.0
    assert info.length_m == pytest.approx(track.length / PIXELS_PER_METRE, abs=0.01)
    assert info.size == track.size and info.width_px == track.width
    assert info.tightest_bend_px == pytest.approx(track.curvature_radii().min(), abs=0.1)
    assert info.description == track.description


def test_the_evaluation_tracks_are_marked_and_held_out() -> None:
    evaluation = [info for info in track_catalogue() if info.mode == "evaluation"]
    assert [(info.name, info.track) for info in evaluation] == [("evaluation-1", "1"),
                                                                 ("gauntlet", "gauntlet")]
    assert {info.difficulty for info in evaluation} == {"intermediate", "expert"}
    # Asked for in training mode, an evaluation track is never what a model trains on.
    assert get_track(1, "training").name == "training-1"
    with pytest.raises(ValueError, match="held out from training"):
        get_track("gauntlet", "training")
    training = [info.track for info in track_catalogue() if info.mode == "training"]
    assert training[:3] == ["1", "2", "3"] and "serpent" in training and "gauntlet" not in training


def test_the_json_shape() -> None:
    shape = json.loads(json.dumps(catalogue_json()))
    assert shape["difficulties"] == list(DIFFICULTIES)
    assert "random:SEED:DIFFICULTY" in shape["random"]
    first = shape["tracks"][0]
    assert set(first) == {"name", "title", "description", "difficulty", "mode", "track", "size", "width_px",
                          "length_m", "tightest_bend_px", "reference_lap_time"}
    assert first["size"] == [800, 700] and first["track"] == "1" and first["mode"] == "training"


def test_a_random_track_has_an_entry_too() -> None:
    info = track_info(get_track("random:9:expert"))
    assert (info.name, info.track, info.mode, info.difficulty) == ("random:9:expert", "random:9:expert",
                                                                   "training", "expert")
    assert info.reference_lap_time > 0 and info.width_px <= 52.5
