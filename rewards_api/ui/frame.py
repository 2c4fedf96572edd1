"""What every page of the web lab shares: signing in with the token, the header, and error reporting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import app as nicegui_app
from nicegui import ui

from ..cards import TRACKS
from .client import TOKEN_COOKIE, ApiError, LabClient

T = TypeVar("T")

STATIC_PATH = "/lab-static"
COOKIE_DAYS = 30
NAVIGATION = (("Your models", "/", "directions_car"), ("New model", "/new", "add_circle"),
              ("Environments", "/environments", "map"), ("Leaderboard", "/leaderboard", "emoji_events"))

_auth_on = True


def configure(auth_on: bool) -> None:
    """Called once when the lab is mounted: whether the server asks for a token."""
    global _auth_on
    _auth_on = auth_on
    nicegui_app.add_static_files(STATIC_PATH, Path(__file__).parent / "static")


async def sign_in(request: Request) -> LabClient | RedirectResponse:
    """The signed-in user's client, or the redirect a page returns instead of rendering.

    ``?token=`` in the URL (the start-up URL carries it) is checked with the API and kept in an HttpOnly
    cookie, then taken out of the address bar. Without a valid token the browser goes to ``/signin``.
    """
    here = request.url.path
    supplied = request.query_params.get("token")
    if supplied is not None:
        lab = await _client_for(supplied)
        if lab is None:
            return RedirectResponse("/signin?" + urlencode({"next": here, "error": "1"}), status_code=303)
        rest = {key: value for key, value in request.query_params.items() if key != "token"}
        response = RedirectResponse(here + ("?" + urlencode(rest) if rest else ""), status_code=303)
        response.set_cookie(TOKEN_COOKIE, supplied, max_age=COOKIE_DAYS * 86400, httponly=True,
                            samesite="lax", path="/")
        return response
    lab = await _client_for(request.cookies.get(TOKEN_COOKIE))
    if lab is None:
        return RedirectResponse("/signin?" + urlencode({"next": here}), status_code=303)
    return lab


async def _client_for(token: str | None) -> LabClient | None:
    if _auth_on and not token:
        return None
    lab = LabClient(token if _auth_on else None)
    try:
        who = await lab.whoami()
    except ApiError as exc:
        if exc.status == 401:
            return None
        raise
    lab.user = who["user"]
    return lab


async def open_page(request: Request, title: str) -> LabClient | RedirectResponse:
    """Sign the browser in (:func:`sign_in`) and draw the page's frame; a redirect is returned as is."""
    lab = await sign_in(request)
    if not isinstance(lab, RedirectResponse):
        frame(lab, title)
    return lab


def dialog_actions(dialog: ui.dialog, label: str, action: Callable[[], Any], testid: str | None = None,
                   color: str = "primary") -> None:
    """A dialog's row of buttons: ``label`` does ``action``, Cancel closes it."""
    with ui.row():
        button = ui.button(label, color=color, on_click=action)
        if testid:
            button.props(f'data-testid="{testid}"')
        ui.button("Cancel", on_click=dialog.close).props("flat")


def frame(lab: LabClient, title: str) -> None:
    """The page's header (navigation, who is signed in) and its title."""
    ui.page_title(f"{title} · rewards")
    ui.colors(primary="#1f6feb", secondary="#26a69a", accent="#f4511e")
    ui.add_head_html(f'<script src="{STATIC_PATH}/lab.js"></script>'
                     f'<link rel="stylesheet" href="{STATIC_PATH}/lab.css">')
    with ui.header(elevated=True).classes("items-center gap-2 px-4 py-2 flex-wrap"):
        with ui.link(target="/").classes("no-underline text-white flex items-center gap-1 mr-4"):
            ui.icon("sports_motorsports", size="sm")
            ui.label("rewards").classes("text-xl font-bold tracking-wide")
        for label, target, icon in NAVIGATION:
            ui.button(label, icon=icon, on_click=lambda target=target: ui.navigate.to(target)) \
                .props(f'flat color=white no-caps data-testid="nav-{target.strip("/") or "models"}"')
        ui.space()
        ui.link("API docs", "/docs", new_tab=True).classes("text-white")
        who = "owner" if lab.user is None else lab.user
        ui.label(f"signed in as {who}").classes("text-sm opacity-80").props('data-testid="who"')
        if _auth_on:
            ui.button("Sign out", on_click=lambda: ui.navigate.to("/signout")) \
                .props("flat color=white no-caps dense")


def page_body() -> ui.column:
    """The page's main column: centred, full width on a tablet, bounded on a laptop."""
    return ui.column().classes("w-full max-w-6xl mx-auto p-4 gap-4")


async def attempt(action: Awaitable[T], doing: str) -> T | None:
    """Await an API call; on a refusal, tell the user what went wrong (and what to do) and give ``None``."""
    try:
        return await action
    except ApiError as exc:
        ui.notify(f"Could not {doing}: {exc.message}", type="negative", multi_line=True, timeout=10000,
                  close_button=True)
        return None


def track_label(mode: str, key: str | int) -> str:
    """How the lab names a track: "Training track 2", "Evaluation track (unseen)", and a named track by its
    catalogue title ("Serpent", "Gauntlet (unseen)") once the catalogue is read (:func:`load_catalogue`)."""
    if mode == "evaluation" and str(key) == "1":
        return "Evaluation track (unseen)"
    if str(key).isdigit():
        return f"{mode.capitalize()} track {key}"
    entry = _catalogue.get((mode, str(key))) if _catalogue else None
    if entry:
        return entry["title"] + (" (unseen)" if mode == "evaluation" else "")
    return f"{mode.capitalize()} track {key}"


TRACK_CHOICES = {(mode, key): track_label(mode, key) for mode, keys in TRACKS.items() for key in keys}
"""Every built-in track a model can be evaluated on, by (mode, track key), before the catalogue is read."""
TRAINING_TRACKS = [int(key) for key in TRACKS["training"]]
DIFFICULTY_COLOURS = {"beginner": "positive", "intermediate": "primary", "advanced": "orange",
                      "expert": "negative"}

_catalogue: dict[tuple[str, str], dict[str, Any]] | None = None


async def load_catalogue(lab: LabClient) -> dict[tuple[str, str], dict[str, Any]]:
    """The built-in tracks (``GET /api/v1/tracks``: title, difficulty, reference lap time...) by (mode,
    track key), read once per process (they are the server's own); empty when it cannot be read."""
    global _catalogue
    if _catalogue is None:
        try:
            answer = await lab.call("GET", "/tracks")
        except ApiError:
            return {}
        _catalogue = catalogue_by_track(answer)
    return _catalogue


def catalogue_by_track(answer: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """The ``GET /api/v1/tracks`` answer's tracks by (mode, track key): ``("training", "1")``,
    ``("evaluation", "gauntlet")``."""
    tracks = answer.get("tracks") if isinstance(answer, dict) else None
    return {(entry["mode"], str(entry["track"])): entry for entry in tracks or []
            if isinstance(entry, dict) and {"mode", "track", "title"} <= set(entry)}


def track_facts(entry: dict[str, Any] | None) -> str:
    """A catalogue entry's difficulty and reference lap: "beginner · reference lap 8.7 s" ("" for none)."""
    if not entry:
        return ""
    parts = [str(entry["difficulty"])] if entry.get("difficulty") else []
    reference = entry.get("reference_lap_time")
    if isinstance(reference, (int, float)) and not isinstance(reference, bool) and reference > 0:
        parts.append(f"reference lap {reference:.1f} s")
    return " · ".join(parts)


def difficulty_badge(entry: dict[str, Any] | None) -> None:
    """A catalogue entry's difficulty as a coloured badge (nothing without one)."""
    if entry and entry.get("difficulty"):
        ui.badge(str(entry["difficulty"]), color=DIFFICULTY_COLOURS.get(str(entry["difficulty"]), "grey"))


def track_choices(catalogue: dict[tuple[str, str], dict[str, Any]], mode: str | None = None
                  ) -> dict[str, str]:
    """Tracks to pick from, as ``{"mode:key": "label · difficulty · reference lap"}``: the catalogue's (of
    ``mode`` only, when given), or the built-in ones before there is a catalogue."""
    if not catalogue:
        return {f"{m}:{key}": label for (m, key), label in TRACK_CHOICES.items() if mode in (None, m)}
    return {f"{m}:{key}": " · ".join(filter(None, (track_label(m, key), track_facts(entry))))
            for (m, key), entry in catalogue.items() if mode in (None, m)}


def score(value: float | None) -> str:
    """A score as people read it: one decimal ("—" for none)."""
    return "—" if value is None else f"{value:.1f}"


def when(stamp: dict[str, Any] | None) -> str:
    """``{"date", "time"}`` as "2026-11-24 14:03", or "never"."""
    if not stamp:
        return "never"
    return f"{stamp.get('date', '')} {str(stamp.get('time', ''))[:5]}".strip()
