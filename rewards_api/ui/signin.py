"""Signing in with the server's token (or a user's), and out.

The sign-in page is a plain HTML form posted to ``POST /signin/submit``: the token travels in the request
body only, never in a URL, and the answer sets the HttpOnly cookie and sends the browser to a place on this
server (:func:`_safe_next`), or back to the form with an error.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from nicegui import app as nicegui_app
from nicegui import ui

from .client import TOKEN_COOKIE
from .frame import COOKIE_DAYS, _client_for

SUBMIT_PATH = "/signin/submit"
"""Where the form posts (a path of its own: NiceGUI's page at /signin replaces every route of its path)."""
MAX_FORM_BYTES = 8192
"""A sign-in form holds a token and a path: anything longer is refused."""


def _safe_next(target: str | None) -> str:
    """Only a path on this server (never another site) is a place to go back to after signing in.

    Parsed, not matched by prefix: browsers drop tabs and newlines anywhere in a URL and read a backslash
    as a slash (``/\\host`` is ``//host``), so any of those, another control character, a scheme, a host or a
    path that does not start with exactly one ``/`` gives ``/`` instead.
    """
    if not target or any(ord(char) < 0x21 or char in "\\\x7f" for char in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return "/"
    return urlunsplit(("", "", parts.path, parts.query, ""))


def _back_to_form(target: str, error: str) -> RedirectResponse:
    return RedirectResponse("/signin?" + urlencode({"next": target, "error": error}), status_code=303)


@nicegui_app.post(SUBMIT_PATH, include_in_schema=False)
async def signin_submit(request: Request) -> Response:
    """The sign-in form: check the token with the API, keep it in the cookie, go to ``next``."""
    if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):  # another site's form
        return Response("sign in from this server's own sign-in page", status_code=403)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return Response("the sign-in form is too large", status_code=413)
    form = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=4)
    target = _safe_next((form.get("next") or ["/"])[0])
    token = (form.get("token") or [""])[0].strip()
    if not token:
        return _back_to_form(target, "empty")
    if await _client_for(token) is None:
        return _back_to_form(target, "1")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(TOKEN_COOKIE, token, max_age=COOKIE_DAYS * 86400, httponly=True, samesite="lax",
                        path="/")
    return response


@ui.page("/signin")
def signin_page(request: Request) -> None:
    target = _safe_next(request.query_params.get("next"))
    error = request.query_params.get("error")
    ui.page_title("Sign in · rewards")
    with ui.column().classes("absolute-center items-center w-full max-w-md p-4"), \
            ui.card().classes("w-full p-6 gap-3"):
            with ui.row().classes("items-center gap-2"):
                ui.icon("sports_motorsports", size="lg", color="primary")
                ui.label("rewards").classes("text-2xl font-bold")
            ui.label("Write a reward function, watch a car learn to race.").classes("text-gray-600")
            if error:
                text = ("Paste the token first." if error == "empty" else
                        "That token is not known to this server: check it and try again.")
                ui.label(text).classes("text-negative").props('data-testid="signin-error"')
            # A native form: the browser posts the token in the body, and the answer sets the cookie.
            form = ui.element("form").props(f'method="post" action="{SUBMIT_PATH}"')
            with form.classes("w-full column gap-3"):
                ui.input("Token", password=True, password_toggle_button=True) \
                    .classes("w-full").props('name="token" autofocus data-testid="token"')
                ui.element("input").props("type=hidden name=next").props["value"] = target
                ui.label("The server prints its token when it starts (the link with ?token= signs you in "
                         "at once). Students get theirs from their teacher (rewards-api users add).") \
                    .classes("text-xs text-gray-500")
                ui.button("Sign in").classes("w-full").props('type="submit" data-testid="signin"')


@ui.page("/signout")
def signout_page() -> RedirectResponse:
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path="/")
    return response
