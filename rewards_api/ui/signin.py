"""Signing in with the server's token (or a user's), and out."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from .client import TOKEN_COOKIE


def _safe_next(target: str | None) -> str:
    """Only a path on this server (never another site) is a place to go back to after signing in."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@ui.page("/signin")
def signin_page(request: Request) -> None:
    target = _safe_next(request.query_params.get("next"))
    ui.page_title("Sign in · rewards")
    with ui.column().classes("absolute-center items-center w-full max-w-md p-4"), \
            ui.card().classes("w-full p-6 gap-3"):
            with ui.row().classes("items-center gap-2"):
                ui.icon("sports_motorsports", size="lg", color="primary")
                ui.label("rewards").classes("text-2xl font-bold")
            ui.label("Write a reward function, watch a car learn to race.").classes("text-gray-600")
            if request.query_params.get("error"):
                ui.label("That token is not known to this server: check it and try again.") \
                    .classes("text-negative").props('data-testid="signin-error"')
            token = ui.input("Token", password=True, password_toggle_button=True) \
                .classes("w-full").props('autofocus data-testid="token"')
            ui.label("The server prints its token when it starts (the link with ?token= signs you in at "
                     "once). Students get theirs from their teacher (rewards-api users add).") \
                .classes("text-xs text-gray-500")

            def go() -> None:
                if not token.value.strip():
                    ui.notify("Paste the token first", type="warning")
                    return
                ui.navigate.to(f"{target}?{urlencode({'token': token.value.strip()})}")

            token.on("keydown.enter", go)
            ui.button("Sign in", on_click=go).classes("w-full").props('data-testid="signin"')


@ui.page("/signout")
def signout_page() -> RedirectResponse:
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path="/")
    return response
