"""The web lab: the whole workflow in the browser, served by the server itself at ``/``.

NiceGUI (Vue and Quasar, shipped in its wheel: no npm step) is mounted on the FastAPI application. Pages
act only through the ``/api/v1`` API (:mod:`rewards_api.ui.client`), so the lab obeys every rule the API
has, and nothing else.
"""

from __future__ import annotations

from fastapi import FastAPI

_mounted = False


def mount(app: FastAPI, auth_on: bool) -> None:
    """Serve the lab at ``/`` of ``app``. Once per process: NiceGUI keeps its pages in one global app."""
    global _mounted
    if _mounted:
        raise RuntimeError("the web lab is already mounted in this process: create the other apps with "
                           "Settings(web_ui=False)")
    from nicegui import ui

    from . import browse, create, models, signin, watch  # noqa: F401  (their @ui.page functions register)
    from .client import connect
    from .frame import configure

    configure(auth_on)
    connect(app)
    ui.run_with(app, mount_path="/", title="rewards", favicon="🏎️", show_welcome_message=False,
                reconnect_timeout=10.0)
    _mounted = True
