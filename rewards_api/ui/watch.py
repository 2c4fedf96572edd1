"""Watching a model: the training view (live video, live score chart fed by Server-Sent Events, episode
counter, steps per second, stop) and the evaluation view (the trials playing, then the results).

The browser fetches the streams itself (``/api/v1/stream``, ``/metrics/stream``, ``/evaluate``) with the
user's token; the page only starts and stops through the API. Leaving the page never stops a training:
coming back attaches to it again, with the chart filled from the session's metrics.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from .client import ApiError, LabClient
from .frame import attempt, dialog_actions, open_page, page_body, score, track_label
from .models import best_lap, count, evaluation_table, percent, reference_lap, timed

ACTIVE = ("queued", "running")


def score_chart(scores: list[Any], means: list[Any]) -> ui.echart:
    """Score and mean score per episode, as the original UI's chart."""
    return ui.echart({
        "animation": False,
        "grid": {"left": 48, "right": 16, "top": 36, "bottom": 32},
        "legend": {"data": ["score", "mean score"], "top": 4},
        "tooltip": {"trigger": "axis"},
        "xAxis": {"type": "value", "name": "episode", "nameLocation": "middle", "nameGap": 22, "min": 1},
        "yAxis": {"type": "value", "name": "score"},
        "series": [
            {"name": "score", "type": "line", "showSymbol": False, "sampling": "lttb",
             "data": [[number, value] for number, value in enumerate(scores, start=1)]},
            {"name": "mean score", "type": "line", "showSymbol": False, "sampling": "lttb",
             "data": [[number, value] for number, value in enumerate(means, start=1)]},
        ],
    }).classes("w-full h-72").props('data-testid="score-chart"')


def stat(label: str, value: str, testid: str) -> ui.label:
    with ui.column().classes("gap-0 min-w-24"):
        ui.label(label).classes("text-xs text-gray-500 uppercase")
        return ui.label(value).classes("text-xl font-bold").props(f'data-testid="{testid}"')


@ui.page("/models/{session_id}/train")
async def training_page(request: Request, session_id: str) -> RedirectResponse | None:
    lab = await open_page(request, f"{session_id}: training")
    if isinstance(lab, RedirectResponse):
        return lab
    with page_body():
        try:
            card = await lab.model_info(session_id)
            params = await lab.all_params(session_id)
            job = await lab.job(session_id)
        except ApiError as exc:
            missing(exc)
            return None
        TrainingView(lab, card, params, job)
    return None


def missing(exc: ApiError) -> None:
    with ui.card().classes("w-full"):
        ui.label(exc.message).classes("text-negative").props('data-testid="page-error"')
        ui.button("Back to your models", on_click=lambda: ui.navigate.to("/"))


class TrainingView:
    def __init__(self, lab: LabClient, card: dict[str, Any], params: dict[str, Any],
                 job: dict[str, Any] | None) -> None:
        self.lab = lab
        self.name = card["session_id"]
        self.state = job["state"] if job else "idle"
        metrics = params["training_metrics"]
        scores, means = metrics.get("plot_scores") or [], metrics.get("plot_mean_scores") or []
        episodes = job["episodes"] if job and job.get("episodes") else card["model"]["num_episodes"]
        with ui.row().classes("w-full items-center"):
            ui.label(self.name).classes("text-2xl font-bold")
            self.badge = ui.badge(self.state).props('data-testid="job-state"')
            ui.space()
            if self.active:
                ui.button("Stop", icon="stop", color="negative", on_click=self.stop) \
                    .props('data-testid="stop"')
            else:
                ui.button("Train", icon="play_arrow", on_click=lambda: self.train(False)) \
                    .props('data-testid="train"')
                if card["trained_model"]:
                    ui.button("Start over", icon="restart_alt", on_click=self.confirm_fresh).props("flat")
                    ui.button("Evaluate", icon="flag",
                              on_click=lambda: ui.navigate.to(f"/models/{self.name}/evaluate")) \
                        .props('flat data-testid="evaluate"')
        with ui.element("div").classes("grid grid-cols-1 lg:grid-cols-2 gap-4 w-full"):
            with ui.card().classes("w-full items-center"):
                if self.active:
                    ui.element("img").props(f'src="{lab.url("stream", session_id=self.name, start="false")}" '
                                            'data-testid="video" alt="live video of the training"') \
                        .classes("w-full rounded bg-black")
                    ui.label("The car drives the network as it is now: it improves as training goes on.") \
                        .classes("text-xs text-gray-500")
                else:
                    ui.icon("videocam_off", size="xl", color="grey")
                    ui.label("Not training. Press Train to continue from the saved network (or start it)."
                             if card["trained_model"] else "Not trained yet: press Train to start.") \
                        .classes("text-gray-600 text-center")
            with ui.card().classes("w-full"):
                with ui.row().classes("gap-6 flex-wrap"):
                    self.episode = stat("episode", f"{len(scores)} / {episodes}", "episode")
                    self.speed = stat("steps / s", "—", "steps-per-second")
                    self.record = stat("record", score(card["record"]), "record")
                    self.epsilon = stat("epsilon", "—", "epsilon")
                self.chart = score_chart(scores, means)
        if self.active:
            follow = {"chart": self.chart.id, "episode": self.episode.id, "speed": self.speed.id,
                      "record": self.record.id, "epsilon": self.epsilon.id, "episodes": episodes,
                      "url": lab.url("metrics/stream", session_id=self.name)}
            ui.timer(0.1, lambda: ui.run_javascript(f"rewardsLab.followTraining({json.dumps(follow)})"),
                     once=True)
            ui.timer(1.0, self.follow_state)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    async def follow_state(self) -> None:
        """Redraw the page when the training ends (or a queued one starts)."""
        try:
            job = await self.lab.job(self.name)
        except ApiError:
            return
        state = job["state"] if job else "idle"
        if state != self.state:
            self.state = state
            self.badge.text = state
            if state not in ACTIVE:
                ui.notify(f"Training {state}" + (f": {job['error']}" if job and job.get("error") else ""),
                          type="negative" if state == "failed" else "info", multi_line=True)
                ui.navigate.reload()

    async def train(self, fresh: bool) -> None:
        if await attempt(self.lab.train(self.name, fresh=fresh), f"start training {self.name}") is not None:
            ui.navigate.reload()

    def confirm_fresh(self) -> None:
        with ui.dialog() as dialog, ui.card().classes("gap-3"):
            ui.label(f"Start {self.name} over?").classes("text-lg font-bold")
            ui.label("A new network starts from scratch: the saved one, its scores and its runs are "
                     "replaced. Export the model first to keep a copy.").classes("text-sm max-w-sm")

            async def go() -> None:
                dialog.close()
                await self.train(True)

            dialog_actions(dialog, "Start over", go, color="negative")
        dialog.open()

    async def stop(self) -> None:
        if await attempt(self.lab.stop(self.name), f"stop {self.name}") is not None:
            ui.notify("Stopping: what it learned is kept")


@ui.page("/models/{session_id}/evaluate")
async def evaluation_page(request: Request, session_id: str, mode: str = "evaluation",
                          track: str = "1") -> RedirectResponse | None:
    lab = await open_page(request, f"{session_id}: evaluation")
    if isinstance(lab, RedirectResponse):
        return lab
    with page_body():
        try:
            card = await lab.model_info(session_id)
        except ApiError as exc:
            missing(exc)
            return None
        EvaluationView(lab, card, mode, track)
    return None


class EvaluationView:
    def __init__(self, lab: LabClient, card: dict[str, Any], mode: str, track: str) -> None:
        self.lab = lab
        self.name = card["session_id"]
        self.mode, self.track = mode, track
        self.before = self.evaluated_at(card)
        label = track_label(mode, track)
        with ui.row().classes("w-full items-center"):
            ui.label(f"{self.name} on {label}").classes("text-2xl font-bold")
            ui.space()
            ui.button("Back to your models", on_click=lambda: ui.navigate.to("/")).props("flat")
        if not card["trained_model"]:
            with ui.card().classes("w-full"):
                ui.label("This model has no saved network yet: train it first.") \
                    .classes("text-negative").props('data-testid="page-error"')
                ui.button("Train it", on_click=lambda: ui.navigate.to(f"/models/{self.name}/train"))
            return
        with ui.element("div").classes("grid grid-cols-1 lg:grid-cols-2 gap-4 w-full"):
            with ui.card().classes("w-full items-center"):
                self.video = ui.element("img").classes("w-full rounded bg-black") \
                    .props('data-testid="evaluation-video" alt="the evaluation trials"')
                self.status = ui.label("Evaluating: the car drives 5 trials at full speed, then they play "
                                       "here…").classes("text-sm text-gray-600") \
                    .props('data-testid="evaluation-status"')
                self.spinner = ui.spinner(size="lg")
            with ui.card().classes("w-full"):
                ui.label("Results").classes("text-lg font-bold")
                self.results = ui.column().classes("w-full").props('data-testid="results"')
                with self.results:
                    ui.label("Waiting for the evaluation…").classes("text-sm text-gray-500")
        url = lab.url("evaluate", session_id=self.name, mode=mode, track_num=track)
        ui.on("rewards_evaluation_failed", self.failed)
        ui.on("rewards_evaluation_played", self.played)
        ui.timer(0.1, lambda: ui.run_javascript(
            f"rewardsLab.playMjpeg({json.dumps(self.video.html_id)}, {json.dumps(url)})"), once=True)
        self.poll = ui.timer(1.0, self.check_results)

    def evaluated_at(self, card: dict[str, Any]) -> str | None:
        metrics = card["evaluation"].get(self.mode, {}).get(self.track)
        return metrics.get("evaluated_at") if metrics else None

    async def check_results(self) -> None:
        try:
            card = await self.lab.model_info(self.name)
        except ApiError:
            return
        if self.evaluated_at(card) in (None, self.before):
            return
        self.poll.deactivate()
        metrics = card["evaluation"][self.mode][self.track]
        self.results.clear()
        with self.results:
            with ui.row().classes("gap-6 flex-wrap"):
                stat("best score", score(metrics["record"]), "evaluation-record")
                stat("laps", f"{metrics['laps_completed']} / {metrics['num_trials']}", "evaluation-laps")
                stat("progress", percent(metrics), "evaluation-progress")
                if timed(metrics):
                    laps = (card.get("lap_times") or {}).get(self.mode, {}).get(self.track)
                    stat("best lap", best_lap(metrics, laps), "evaluation-best-lap")
                    stat("off track", count(metrics.get("off_track_count"), metrics["num_trials"]),
                         "evaluation-off-track")
            if timed(metrics) and reference_lap(metrics):
                ui.label(f"Reference lap {reference_lap(metrics)}: the fastest lap the car's grip, "
                         "acceleration and brakes allow along the centre line, from the start line.") \
                    .classes("text-sm").props('data-testid="evaluation-reference"')
            ui.label(f"Final evaluation score {score(card['final_eval_score'])} (best score ÷ trials, "
                     "summed over the numbered tracks evaluated, in your reward's own units: the leaderboard "
                     "ranks by laps, then best lap time, then progress on the unseen track)") \
                .classes("text-sm")
            evaluation_table(card)
        self.status.text = "Playing the trials…"

    def failed(self, event: Any) -> None:
        self.poll.deactivate()
        self.spinner.set_visibility(False)
        self.status.classes(replace="text-sm text-negative")
        self.status.text = f"The evaluation could not run: {payload(event).get('message')}"

    def played(self, event: Any) -> None:
        self.spinner.set_visibility(False)
        self.status.text = f"Done: {payload(event).get('frames', 0)} frames played."


def payload(event: Any) -> dict[str, Any]:
    """The object a page script sent with ``emitEvent(name, object)``."""
    args = event.args[0] if isinstance(event.args, list) and event.args else event.args
    return args if isinstance(args, dict) else {}
