"""Model cards and the score chart: what the "Your models" screen shows, from the session's files."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from rewards_api.agents.dqn import QNetwork
from rewards_api.cards import MEAN_COLOUR, SCORE_COLOUR, model_card, parameter_count, score_plot_png
from rewards_api.cli import app
from rewards_api.params import AgentParams, EnvParams
from rewards_api.store import SessionNotFound, SessionStore, atomic_write_bytes

RUNS = [
    {"date": "2026-01-02", "time": "10:00:00.000001", "start": "fresh", "track": 1, "episodes": 40,
     "record": 12.5, "steps": 9000, "duration": 31.2},
    {"date": "2026-01-03", "time": "11:30:00.000002", "start": "warm", "track": 3, "episodes": 20,
     "record": 30, "steps": 5000, "duration": 12.0},
]
EVALUATED = {"num_trials": 5, "record": 42.5, "mean_score": 30.1, "laps_completed": 2, "mean_progress": 61.5,
             "total_elapsed_time": 0.8}


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "home")


def trained_session(store: SessionStore, name: str = "card") -> dict[str, list[float]]:
    """A session as training and evaluation leave it: history, record, runs, metrics and model.pth."""
    store.create(name)
    store.write_env_params(name, EnvParams(environment_world=3))
    store.write_agent_params(name, AgentParams(model_configuration="[[5, 16], [16, 8], [8, 3]]", gamma=90,
                                               epsilon=0.2, learning_rate=0.005, optimizer="rmsprop",
                                               loss_fn="huber", num_episodes=60))
    scores = [float(s) for s in np.round(np.linspace(-5, 30, 60) + np.sin(np.arange(60)) * 4, 2)]
    means = [round(float(np.mean(scores[: i + 1])), 4) for i in range(60)]
    store.write(name, "training_metrics", {"plot_scores": scores, "plot_mean_scores": means})

    def trained(history: dict) -> None:
        history["last_trained"] = {"date": "2026-01-03", "time": "11:30:00.000002", "record": 30,
                                   "scores": scores, "mean_scores": means}
        history["runs"] = RUNS

    store.update(name, "model_history", trained)
    store.update(name, "evaluation_metrics", lambda document: document["evaluation"].update({"1": EVALUATED}))
    buffer = io.BytesIO()
    torch.save(QNetwork([(5, 16), (16, 8), (8, 3)]).state_dict(), buffer)
    atomic_write_bytes(store.paths(name).model, buffer.getvalue())
    return {"scores": scores, "means": means}


def test_parameter_count_is_the_networks_weights_and_biases() -> None:
    for layers in ([(5, 3)], [(5, 9), (9, 3)], [(5, 16), (16, 8), (8, 3)]):
        assert parameter_count(layers) == sum(p.numel() for p in QNetwork(layers).parameters())


def test_the_card_of_a_trained_and_evaluated_session(store: SessionStore) -> None:
    history = trained_session(store)
    card = model_card(store, "card")
    created = store.read("card", "model_history")["last_created"]
    assert card["created"] == {"date": created["date"], "time": created["time"]}
    assert card["last_trained"] == {"date": "2026-01-03", "time": "11:30:00.000002"}
    assert card["model"] == {
        "layers": [[5, 16], [16, 8], [8, 3]], "model_configuration": "[[5, 16], [16, 8], [8, 3]]",
        "loss_fn": "huber", "optimizer": "rmsprop", "learning_rate": 0.005, "gamma": 0.9, "epsilon": 0.2,
        "num_episodes": 60, "algorithm": "dqn", "normalize_rewards": True, "ppo": None,
        "parameters": 96 + 136 + 27, "configured": True,
    }
    assert card["trained_model"] is True and card["record"] == 30
    assert card["episodes_trained"] == 60 and card["last_mean_score"] == history["means"][-1]
    assert card["track"] == 3 and card["environment"]["environment_name"] == "car-race"
    assert card["evaluation"] == {"training": {"1": None, "2": None, "3": None},
                                  "evaluation": {"1": EVALUATED}}
    assert card["final_eval_score"] == pytest.approx(42.5 / 5)
    assert card["runs"] == RUNS
    # Evaluated before lap times were recorded: the track's lap figures are there, all None.
    assert card["lap_times"] == {"training": {"1": None, "2": None, "3": None}, "evaluation": {"1": {
        "best_lap_time": None, "mean_lap_time": None, "best_lap_ratio": None, "reference_lap_time": None,
        "best_lap": None}}}
    json.dumps(card, allow_nan=False)  # JSON as it is


def test_the_card_shows_each_best_lap_beside_the_reference(store: SessionStore) -> None:
    trained_session(store)
    timed = {**EVALUATED, "completion_percent": 61.5, "best_lap_time": 20.2, "mean_lap_time": 21.05,
             "off_track_count": 3, "reference_lap_time": 17.13, "best_lap_ratio": 1.183, "car": "discrete"}
    unlapped = {**EVALUATED, "laps_completed": 0, "best_lap_time": None, "mean_lap_time": None,
                "reference_lap_time": 15.2, "best_lap_ratio": None}

    def evaluated(document: dict) -> None:
        document["evaluation"]["1"] = timed
        document["training"]["2"] = unlapped

    store.update("card", "evaluation_metrics", evaluated)
    card = model_card(store, "card")
    assert card["evaluation"]["evaluation"]["1"] == timed  # as recorded
    assert card["lap_times"]["evaluation"]["1"] == {
        "best_lap_time": 20.2, "mean_lap_time": 21.05, "best_lap_ratio": 1.183, "reference_lap_time": 17.13,
        "best_lap": "20.2 s (1.18\N{MULTIPLICATION SIGN} reference)"}
    assert card["lap_times"]["training"]["2"]["best_lap"] is None
    assert card["lap_times"]["training"]["1"] is None
    shown = CliRunner().invoke(app, ["--home", str(store.home), "info", "card"], env={"COLUMNS": "120"})
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "lap times" in text and "20.2 s (1.18\N{MULTIPLICATION SIGN} reference)" in text
    assert "21.05 s" in text and "17.13 s" in text and "no lap" in text and "15.2 s" in text


def test_the_card_of_a_new_session_says_nothing_was_done_yet(store: SessionStore) -> None:
    store.create("fresh")
    card = model_card(store, "fresh")
    assert card["created"] is None and card["last_trained"] is None
    assert card["model"]["configured"] is False and card["model"]["layers"] == [[5, 9], [9, 3]]
    assert card["trained_model"] is False and card["record"] is None and card["last_mean_score"] is None
    assert card["episodes_trained"] == 0 and card["runs"] == [] and card["final_eval_score"] == 0
    assert all(metrics is None for tracks in card["evaluation"].values() for metrics in tracks.values())
    with pytest.raises(SessionNotFound):
        model_card(store, "missing")


def colour_pixels(png: bytes, colour: tuple[int, int, int], below: int = 0) -> int:
    """How many pixels of exactly ``colour`` the image has below row ``below`` (the legend is above it)."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))[below:]
    return int(np.all(pixels == np.array(colour), axis=-1).sum())


def test_the_chart_is_a_png_with_both_lines(store: SessionStore) -> None:
    history = trained_session(store)
    png = score_plot_png(history["scores"], history["means"])
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (320, 160)
    # Both lines are drawn in the plot, below the legend strip, in their own colours.
    assert colour_pixels(png, SCORE_COLOUR, below=30) > 150
    assert colour_pixels(png, MEAN_COLOUR, below=30) > 150
    # The scores rise: the last episodes are drawn higher (smaller y) than the first ones.
    pixels = np.asarray(image.convert("RGB"))
    rows, columns = np.nonzero(np.all(pixels[30:] == np.array(SCORE_COLOUR), axis=-1))
    assert rows[columns > columns.max() - 20].mean() < rows[columns < columns.min() + 20].mean()

    large = Image.open(io.BytesIO(score_plot_png(history["scores"], history["means"], 800, 400)))
    assert large.size == (800, 400)


def test_a_long_history_is_drawn_one_column_per_pixel_and_keeps_its_spikes() -> None:
    scores = [0.0] * 100_000
    scores[54_321] = 100.0  # one spike among 100,000 episodes must still show
    means = list(np.linspace(0, 1, 100_000))
    png = score_plot_png(scores, means)
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    rows, _ = np.nonzero(np.all(pixels[30:] == np.array(SCORE_COLOUR), axis=-1))
    assert rows.min() < 20  # the spike reaches the top of the plot
    assert colour_pixels(png, MEAN_COLOUR, below=30) > 150


def test_an_empty_history_draws_a_not_trained_yet_chart() -> None:
    png = score_plot_png([], [])
    assert Image.open(io.BytesIO(png)).size == (320, 160)
    assert colour_pixels(png, SCORE_COLOUR, below=30) == 0 and colour_pixels(png, MEAN_COLOUR, below=30) == 0
    assert colour_pixels(score_plot_png([math.nan, "x"], [None]), SCORE_COLOUR, below=30) == 0


@pytest.mark.parametrize(("size", "named"), [((50, 160), "width"), ((320, 5000), "height"),
                                             ((320.5, 160), "width")])
def test_a_bad_chart_size_names_the_input(size: tuple, named: str) -> None:
    with pytest.raises(ValueError, match=rf"^{named} = .* use a whole number of pixels from"):
        score_plot_png([1, 2], [1, 1.5], *size)


def test_the_info_command_prints_the_card_and_saves_the_chart(store: SessionStore, tmp_path: Path) -> None:
    trained_session(store)
    runner = CliRunner()
    home = ["--home", str(store.home)]
    shown = runner.invoke(app, [*home, "info", "card", "--plot", str(tmp_path / "chart.png")])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    for expected in ("model card", "[[5, 16], [16, 8], [8, 3]]", "259 parameters", "rmsprop", "2026-01-03",
                     "warm", "9,000", "not evaluated", "42.5"):
        assert expected in text, expected
    assert Image.open(tmp_path / "chart.png").size == (320, 160)

    printed = runner.invoke(app, [*home, "info", "card", "--json"])
    assert json.loads(printed.output) == model_card(store, "card")
    missing = runner.invoke(app, [*home, "info", "nobody"])
    assert missing.exit_code == 2 and "there is no session 'nobody'" in " ".join(missing.output.split())
    bad_plot = runner.invoke(app, [*home, "info", "card", "--plot", str(tmp_path / "no" / "chart.png")])
    assert bad_plot.exit_code == 2 and "--plot" in bad_plot.output
