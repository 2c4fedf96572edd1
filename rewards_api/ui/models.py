""""Your models": a card per session with its dates, configuration, record, score graph, evaluations and
actions (train, watch, stop, evaluate, retrain on another track, push, export, delete)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from ..scores import lap_text
from .client import ApiError, LabClient
from .frame import (
    TRAINING_TRACKS,
    attempt,
    dialog_actions,
    load_catalogue,
    open_page,
    page_body,
    score,
    track_choices,
    track_label,
    when,
)

log = logging.getLogger(__name__)

STATE_COLOURS = {"queued": "orange", "running": "positive", "finished": "grey", "stopped": "grey",
                 "failed": "negative"}


def count(value: Any, trials: Any) -> str:
    """``"2 / 5"`` for a whole count of the trials, "—" for anything else."""
    if isinstance(value, int) and not isinstance(value, bool) and isinstance(trials, int):
        return f"{value} / {trials}"
    return "—"


def percent(metrics: dict[str, Any]) -> str:
    """The completion of a lap, per cent: ``completion_percent`` when recorded, else ``mean_progress``."""
    for key in ("completion_percent", "mean_progress"):
        value = metrics.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return f"{value:.0f} %"
    return "—"


def timed(metrics: dict[str, Any]) -> bool:
    """Whether an evaluation recorded lap times (one made before the racing car did not)."""
    return any(key in metrics for key in ("best_lap_time", "off_track_count", "reference_lap_time"))


def best_lap(metrics: dict[str, Any], laps: dict[str, Any] | None) -> str:
    """The best lap beside the reference ("12.3 s (1.18x reference)", with a multiplication sign), "no lap"
    for an evaluation that timed none, "—" for one made before lap times were recorded. ``laps``: the
    card's ``lap_times`` entry for the track."""
    shown = (laps or {}).get("best_lap") or lap_text(metrics.get("best_lap_time"),
                                                     metrics.get("best_lap_ratio"))
    if shown:
        return shown
    return "no lap" if timed(metrics) else "—"


def reference_lap(metrics: dict[str, Any]) -> str | None:
    """The track's reference lap, "10.4 s", when the evaluation recorded it."""
    value = metrics.get("reference_lap_time")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return f"{value:.1f} s"
    return None


def evaluation_rows(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The card's evaluations as table rows: one per evaluated track."""
    rows = []
    lap_times = card.get("lap_times") or {}
    for mode, tracks in card["evaluation"].items():
        for track, metrics in tracks.items():
            if metrics:
                rows.append({"track": track_label(mode, track),
                             "record": score(metrics["record"]),
                             "laps": f"{metrics['laps_completed']} / {metrics['num_trials']}",
                             "progress": percent(metrics),
                             "best_lap": best_lap(metrics, (lap_times.get(mode) or {}).get(track)),
                             "off_track": count(metrics.get("off_track_count"), metrics.get("num_trials")),
                             "timed": timed(metrics)})
    return rows


EVALUATION_COLUMNS = (("track", "Track"), ("record", "Best score"), ("laps", "Laps"),
                      ("progress", "Progress"))
LAP_COLUMNS = (("best_lap", "Best lap"), ("off_track", "Off track"))
"""The columns of evaluations that timed their laps (shown when one of the card's did)."""
_WRAPPED = {"track", "best_lap"}
"""Columns whose text may take two lines, so that a card's table fits its card."""


def evaluation_table(card: dict[str, Any]) -> None:
    rows = evaluation_rows(card)
    if not rows:
        ui.label("Not evaluated yet").classes("text-sm text-gray-500")
        return
    shown = EVALUATION_COLUMNS + (LAP_COLUMNS if any(row["timed"] for row in rows) else ())
    columns = [{"name": key, "label": label, "field": key, "align": "left",
                **({"classes": "whitespace-normal", "style": "min-width: 6rem"} if key in _WRAPPED else {})}
               for key, label in shown]
    ui.table(columns=columns, rows=rows).props("dense flat").classes("w-full") \
        .props('data-testid="evaluation-results"')


def car_text(environment: dict[str, Any]) -> str:
    """The session's car in a few words: "classic car", "racing car, 15 actions", "racing car, continuous"."""
    space = environment.get("action_space") or "classic"
    if space == "discrete":
        actions = environment.get("actions")
        return f"racing car, {len(actions)} actions" if isinstance(actions, list) else "racing car"
    if space == "continuous":
        return "racing car, continuous"
    return "classic car"


ALGORITHM_NAMES = {"dqn": "DQN", "ppo": "PPO"}


def algorithm_text(training: dict[str, Any] | None) -> str:
    """The session's learning algorithm as the card shows it: "DQN" (also for a session that has not
    written training_params.json yet: the default) or "PPO"."""
    algorithm = training.get("learning_algorithm") if isinstance(training, dict) else None
    return ALGORITHM_NAMES.get(str(algorithm or "dqn").lower(), str(algorithm)[:20])


def broken_card(name: str, message: str) -> None:
    """A card that says why the session cannot be shown (and names it, so that it can be deleted)."""
    with ui.card().classes("w-full gap-2").props(f'data-testid="card-{name}"'):
        ui.label(name).classes("text-lg font-bold")
        ui.label(message).classes("text-negative").props(f'data-testid="card-error-{name}"')


@ui.page("/")
async def models_page(request: Request) -> RedirectResponse | None:
    lab = await open_page(request, "Your models")
    if isinstance(lab, RedirectResponse):
        return lab
    with page_body():
        with ui.row().classes("w-full items-center"):
            ui.label("Your models").classes("text-2xl font-bold")
            ui.space()
            ui.button("New model", icon="add", on_click=lambda: ui.navigate.to("/new")) \
                .props('data-testid="new-model"')
        cards = ModelCards(lab, await load_catalogue(lab))
        await cards.show()
        ui.timer(2.0, cards.follow_jobs)
    return None


class ModelCards:
    """The grid of cards, redrawn when a job changes state (checked every two seconds)."""

    def __init__(self, lab: LabClient, catalogue: dict[tuple[str, str], dict[str, Any]] | None = None
                 ) -> None:
        self.lab = lab
        self.catalogue = catalogue or {}
        self.states: dict[str, str] = {}
        self.algorithms: dict[str, str] = {}
        self.grid = ui.element("div").classes("grid grid-cols-1 lg:grid-cols-2 2xl:grid-cols-3 gap-4 w-full")

    async def show(self) -> None:
        # Every session's files in one answer (the session ids and each one's training_params.json, for
        # its algorithm, which the model card does not hold).
        sessions = await attempt(self.lab.call("GET", "/get_all_sessions"), "list your models")
        ids = sorted(sessions) if isinstance(sessions, dict) else None
        self.algorithms = {name: algorithm_text(params.get("training_params"))
                           for name, params in (sessions or {}).items() if isinstance(params, dict)}
        jobs = await attempt(self.lab.jobs(), "read the trainings") or {}
        self.states = {name: job["state"] for name, job in jobs.items()}
        cards = await asyncio.gather(*(self.lab.model_info(name) for name in ids or []),
                                     return_exceptions=True)
        self.grid.clear()
        with self.grid:
            if not ids:
                with ui.card().classes("col-span-full items-center p-8"):
                    ui.icon("directions_car", size="xl", color="primary")
                    ui.label("No models yet").classes("text-lg font-bold")
                    ui.label("Create one: pick a track, a network and write a reward function.")
                    ui.button("Create your first model", on_click=lambda: ui.navigate.to("/new"))
            for name, card in zip(ids or [], cards, strict=True):
                if isinstance(card, ApiError):
                    broken_card(name, f"Its files could not be read: {card.message}")
                elif isinstance(card, BaseException):
                    raise card
                else:
                    self.guarded_card(name, card, jobs.get(name))

    def guarded_card(self, name: str, card: dict[str, Any], job: dict[str, Any] | None) -> None:
        """:meth:`card`, or an error in its place if drawing it fails: one session's data (whatever its
        user's code wrote there) never breaks the page, nor anyone else's."""
        container = ui.element("div").classes("w-full")
        try:
            json.dumps([card, job]).encode()  # a lone surrogate would break the whole page when it is sent
            with container:
                self.card(card, job)
        except Exception as exc:
            log.warning("the card of session %r could not be drawn: %s", name, type(exc).__name__)
            container.delete()
            broken_card(name, "This model's card could not be shown: its data holds a value the lab "
                              f"cannot draw ({type(exc).__name__}).")

    async def follow_jobs(self) -> None:
        try:
            jobs = await self.lab.jobs()
        except (ApiError, ValueError, TypeError, KeyError):  # a refusal, or a job the lab cannot read
            return
        states = {name: job["state"] for name, job in jobs.items()}
        if states != self.states:
            await self.show()

    def card(self, card: dict[str, Any], job: dict[str, Any] | None) -> None:
        name = card["session_id"]
        model = card["model"]
        state = job["state"] if job else "idle"
        active = state in ("queued", "running")
        with ui.card().classes("w-full gap-2").props(f'data-testid="card-{name}"'):
            with ui.row().classes("w-full items-center no-wrap"):
                ui.label(name).classes("text-lg font-bold truncate")
                ui.space()
                ui.badge(state, color=STATE_COLOURS.get(state, "grey-5")).props(f'data-testid="state-{name}"')
            ui.label(f"created {when(card['created'])} · last trained {when(card['last_trained'])}") \
                .classes("text-xs text-gray-500")
            hidden = ", ".join(str(out) for _, out in model["layers"][:-1]) or "none"
            algorithm = self.algorithms.get(name, "DQN")
            exploring = f"epsilon {model['epsilon']:g} · " if algorithm == "DQN" else ""
            ui.label(f"track {card['track']} · {car_text(card['environment'])} · {algorithm} · "
                     f"hidden layers {hidden} · {model['loss_fn']} · {model['optimizer']} · "
                     f"lr {model['learning_rate']:g} · gamma {model['gamma']:g} · {exploring}"
                     f"{model['num_episodes']} episodes") \
                .classes("text-sm").props(f'data-testid="config-{name}"')
            ui.label(f"record {score(card['record'])} · {card['episodes_trained']} episodes trained") \
                .classes("text-sm font-medium")
            if card["episodes_trained"]:
                ui.image(self.lab.url("model_plot.png", session_id=name, width=360, height=120,
                                      v=card["episodes_trained"])).classes("w-full rounded")
            evaluation_table(card)
            with ui.row().classes("gap-1 flex-wrap"):
                if active:
                    ui.button("Watch", icon="visibility",
                              on_click=lambda: ui.navigate.to(f"/models/{name}/train")) \
                        .props(f'dense data-testid="watch-{name}"')
                    ui.button("Stop", icon="stop", color="negative", on_click=lambda: self.stop(name)) \
                        .props(f'dense data-testid="stop-{name}"')
                else:
                    ui.button("Train", icon="play_arrow", on_click=lambda: self.train(name)) \
                        .props(f'dense data-testid="train-{name}"')
                    ui.button("Watch", icon="visibility",
                              on_click=lambda: ui.navigate.to(f"/models/{name}/train")) \
                        .props(f'dense flat data-testid="watch-{name}"')
                ui.button("Evaluate", icon="flag", on_click=lambda: self.evaluate_dialog(name)) \
                    .props(f'dense flat data-testid="evaluate-{name}"').set_enabled(card["trained_model"])
                ui.button("Retrain", icon="alt_route", on_click=lambda: self.retrain_dialog(card)) \
                    .props(f'dense flat data-testid="retrain-{name}"').set_enabled(not active)
                ui.button("Push", icon="cloud_upload", on_click=lambda: self.push_dialog(name)) \
                    .props(f'dense flat data-testid="push-{name}"')
                ui.button("Export", icon="download",
                          on_click=lambda: ui.download(self.lab.url("export", session_id=name))) \
                    .props(f'dense flat data-testid="export-{name}"')
                ui.button("Delete", icon="delete", color="negative",
                          on_click=lambda: self.delete_dialog(name)) \
                    .props(f'dense flat data-testid="delete-{name}"').set_enabled(not active)

    async def train(self, name: str) -> None:
        if await attempt(self.lab.train(name), f"start training {name}") is not None:
            ui.navigate.to(f"/models/{name}/train")

    async def stop(self, name: str) -> None:
        if await attempt(self.lab.stop(name), f"stop {name}") is not None:
            ui.notify(f"Stopping {name}: what it learned is kept")

    def evaluate_dialog(self, name: str) -> None:
        with ui.dialog() as dialog, ui.card().classes("gap-3"):
            ui.label(f"Evaluate {name}").classes("text-lg font-bold")
            ui.label("The best network drives 5 trials without exploring.").classes("text-sm")
            choice = ui.select(track_choices(self.catalogue), value="evaluation:1", label="Track") \
                .classes("w-96").props('data-testid="evaluate-track"')

            def go() -> None:
                mode, track = choice.value.split(":")
                dialog.close()
                ui.navigate.to(f"/models/{name}/evaluate?mode={mode}&track={track}")

            dialog_actions(dialog, "Evaluate", go, "evaluate-go")
        dialog.open()

    def retrain_dialog(self, card: dict[str, Any]) -> None:
        name = card["session_id"]
        with ui.dialog() as dialog, ui.card().classes("gap-3"):
            ui.label(f"Retrain {name}").classes("text-lg font-bold")
            ui.label("Training again continues from the saved network (a warm start) on the track you "
                     "pick; start over to forget what it learned.").classes("text-sm max-w-sm")
            choices = track_choices(self.catalogue, "training")  # tracks 1-3 and the named training tracks
            options: dict[int | str, str] = {n: choices.get(f"training:{n}", track_label("training", n))
                                             for n in TRAINING_TRACKS}
            options.update({key.split(":", 1)[1]: label for key, label in choices.items()
                            if not key.split(":", 1)[1].isdigit()})
            current = card["track"] if card["track"] in options else 1
            track = ui.select(options, value=current, label="Track") \
                .classes("w-96").props('data-testid="retrain-track"')
            fresh = ui.checkbox("Start over with a new network")

            async def go() -> None:
                env = {**card["environment"], "environment_world": track.value, "session_id": name}
                if await attempt(self.lab.call("POST", "/write_env_params", json=env), "change the track"):
                    dialog.close()
                    if await attempt(self.lab.train(name, fresh=fresh.value), f"start training {name}"):
                        ui.navigate.to(f"/models/{name}/train")

            dialog_actions(dialog, "Train", go, "retrain-go")
        dialog.open()

    def push_dialog(self, name: str) -> None:
        with ui.dialog() as dialog, ui.card().classes("gap-3"):
            ui.label(f"Push {name} to the shared leaderboard").classes("text-lg font-bold")
            ui.label("Uploads the trained and evaluated model to the server's bucket.").classes("text-sm")
            user_id = ui.input("User id", value=self.lab.user or "").props('data-testid="push-user-id"')
            shown = ui.input("Name shown on the leaderboard", value=self.lab.user or "")

            async def go() -> None:
                body = {"session_id": name, "user_id": user_id.value, "user": shown.value or user_id.value}
                if await attempt(self.lab.call("POST", "/push_model", json=body), f"push {name}"):
                    dialog.close()
                    ui.notify(f"{name} pushed", type="positive")

            dialog_actions(dialog, "Push", go, "push-go")
        dialog.open()

    def delete_dialog(self, name: str) -> None:
        with ui.dialog() as dialog, ui.card().classes("gap-3"):
            ui.label(f"Delete {name}?").classes("text-lg font-bold")
            ui.label("Its network, metrics and evaluations are removed for good. Export it first to keep "
                     "a copy.").classes("text-sm max-w-sm")

            async def go() -> None:
                if await attempt(self.lab.delete(name), f"delete {name}") is not None:
                    dialog.close()
                    ui.notify(f"{name} deleted")
                    await self.show()

            dialog_actions(dialog, "Delete", go, "delete-confirm", color="negative")
        dialog.open()
