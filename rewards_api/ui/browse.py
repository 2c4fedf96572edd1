"""The environments on offer (with the car racer's tracks as pictures) and the leaderboard."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from ..scores import lap_text
from ..server.routes import TRACK_FILES
from .frame import (
    attempt,
    difficulty_badge,
    load_catalogue,
    open_page,
    page_body,
    score,
    track_facts,
    track_label,
)

LEADERBOARD_COLUMNS = (("rank", "#"), ("who", "User"), ("session_id", "Model"), ("laps", "Laps"),
                       ("best_lap", "Best lap"), ("progress", "Progress"), ("car", "Car"),
                       ("algorithm", "Algorithm"), ("score", "Score (its reward's units)"),
                       ("source", "From"))
"""The leaderboard's columns, in the order it ranks by: laps, best lap, progress (on the unseen track)."""


@ui.page("/environments")
async def environments_page(request: Request) -> RedirectResponse | None:
    lab = await open_page(request, "Environments")
    if isinstance(lab, RedirectResponse):
        return lab
    environments = await attempt(lab.call("GET", "/get_all_envs"), "list the environments") or []
    catalogue = await load_catalogue(lab)
    with page_body():
        ui.label("Environments").classes("text-2xl font-bold")
        for environment in environments:
            released = environment["isReleased"]
            with ui.card().classes("w-full").props(f'data-testid="env-{environment["id"]}"'):
                with ui.row().classes("items-center"):
                    ui.label(environment["name"]).classes("text-lg font-bold")
                    ui.badge("available" if released else "coming soon",
                             color="positive" if released else "grey")
                ui.label(environment["description"]).classes("text-sm")
                if released:
                    with ui.element("div").classes("grid grid-cols-2 md:grid-cols-4 gap-3 w-full"):
                        for name, (mode, number) in TRACK_FILES.items():
                            entry = catalogue.get((mode, str(number)))
                            with ui.column().classes("gap-1 items-center"):
                                ui.image(lab.url(f"tracks/{name}")).classes("w-full rounded border")
                                with ui.row().classes("items-center gap-2"):
                                    ui.label(track_label(mode, number)).classes("text-sm")
                                    difficulty_badge(entry)
                                if entry:
                                    ui.label(track_facts({**entry, "difficulty": None})) \
                                        .classes("text-xs text-gray-500")
                    named = [entry for key, entry in catalogue.items() if not key[1].isdigit()]
                    if named:
                        ui.label("More tracks to evaluate a model on (Evaluate, on its card):") \
                            .classes("text-sm text-gray-600")
                        with ui.row().classes("gap-x-5 gap-y-1 flex-wrap") \
                                .props('data-testid="named-tracks"'):
                            for entry in named:
                                with ui.row().classes("items-center gap-1 no-wrap text-sm"):
                                    ui.label(track_label(entry["mode"], entry["track"]))
                                    difficulty_badge(entry)
                                    ui.label(track_facts({**entry, "difficulty": None})) \
                                        .classes("text-xs text-gray-500")
                    ui.button("Create a model on it", icon="add", on_click=lambda: ui.navigate.to("/new"))
    return None


@ui.page("/leaderboard")
async def leaderboard_page(request: Request) -> RedirectResponse | None:
    lab = await open_page(request, "Leaderboard")
    if isinstance(lab, RedirectResponse):
        return lab
    answer = await attempt(lab.call("GET", "/leaderboard"), "read the leaderboard")
    with page_body():
        ui.label("Leaderboard").classes("text-2xl font-bold")
        ui.label("Evaluated models, best first: by laps completed on the unseen evaluation track, then the "
                 "best lap time there (beside the track's reference lap, the physical limit), then progress. "
                 "The score is in each model's own reward units, so it is shown but never decides a place.") \
            .classes("text-sm text-gray-600").props('data-testid="leaderboard-rule"')
        if answer is None:
            return None
        if answer.get("bucket_error"):
            ui.label(f"The shared bucket could not be read: {answer['bucket_error']}").classes("text-warning")
        rows = [{
            "rank": entry["rank"], "who": entry["user"] or "owner", "session_id": entry["session_id"],
            "score": score(entry["score"]),
            "laps": ("—" if entry["laps_completed"] is None
                     else f"{entry['laps_completed']} / {entry['num_trials']}"),
            "best_lap": lap_text(entry.get("best_lap_time"), entry.get("best_lap_ratio")) or "—",
            "car": entry.get("car") or "—",
            "algorithm": (entry.get("algorithm") or "—").upper(),
            "progress": "—" if entry["mean_progress"] is None else f"{entry['mean_progress']:.0f} %",
            "source": "this server" if entry["source"] == "local" else "shared bucket",
        } for entry in answer["leaderboard"]]
        if not rows:
            ui.label("No evaluated models yet: evaluate one and it appears here.") \
                .props('data-testid="leaderboard-empty"')
            return None
        columns = [{"name": key, "label": label, "field": key, "align": "left"}
                   for key, label in LEADERBOARD_COLUMNS]
        ui.table(columns=columns, rows=rows, row_key="rank").classes("w-full") \
            .props('data-testid="leaderboard"')
    return None
