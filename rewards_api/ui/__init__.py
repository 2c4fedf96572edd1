"""The web lab: the whole workflow in the browser, served by the server itself at ``/``.

NiceGUI (Vue and Quasar, shipped in its wheel: no npm step) is mounted on the FastAPI application. Pages
act only through the ``/api/v1`` API (:mod:`rewards_api.ui.client`), so the lab obeys every rule the API
has, and nothing else.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.routing import Match, Mount
from starlette.types import Scope

API_PATHS = ("/api/",)
"""Paths the lab never answers: a wrong method there stays the API's 405, an unknown path its JSON 404."""
API_PAGES = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})

_mounted = False


class _LabMount(Mount):
    """The lab's catch-all mount at ``/``, which leaves the API's own paths to the API."""

    def matches(self, scope: Scope) -> tuple[Match, dict[str, Any]]:
        path = scope.get("path", "")
        if path.startswith(API_PATHS) or path in API_PAGES:
            return Match.NONE, {}
        return super().matches(scope)


def mount(app: FastAPI, auth_on: bool) -> None:
    """Serve the lab at ``/`` of ``app``. Once per process: NiceGUI keeps its pages in one global app."""
    global _mounted
    if _mounted:
        raise RuntimeError("the web lab is already mounted in this process: create the other apps with "
                           "Settings(web_ui=False)")
    from nicegui import core, ui

    from . import browse, create, models, signin, watch  # noqa: F401  (their @ui.page functions register)
    from .client import connect
    from .frame import configure

    configure(auth_on)
    connect(app)
    # No value bindings here: binding_refresh_interval=None spares the event loop a 0.1 s polling task.
    ui.run_with(app, mount_path="/", title="rewards", favicon="🏎️", show_welcome_message=False,
                reconnect_timeout=10.0, binding_refresh_interval=None)
    routes = app.router.routes
    for index, route in enumerate(routes):
        if isinstance(route, Mount) and route.app is core.app:
            routes[index] = _LabMount(route.path, app=route.app, name=route.name)
    _mounted = True
