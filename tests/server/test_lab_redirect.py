"""The sign-in page in a real headless Chromium: wherever ``next=`` points, the browser stays on this
server, and the token never rides in a URL the page navigates to (issue 14, finding 11).

A second HTTP server on loopback plays the classmate's site: it records every request that reaches it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, urlsplit

import pytest
from conftest import TOKEN, Server
from selenium import webdriver
from test_web_lab import by_id, click, headless_chromium, type_into, wait

from rewards_api.ui.signin import _safe_next


@pytest.fixture(scope="module")
def thief() -> Iterator[tuple[str, list[str]]]:
    """Another site on loopback (``host:port``) and the paths of the requests that reached it."""
    seen: list[str] = []

    class Record(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"stolen")

        def log_message(self, *args: object) -> None:
            pass

    site = ThreadingHTTPServer(("127.0.0.1", 0), Record)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{site.server_address[1]}", seen
    site.shutdown()


@pytest.fixture(scope="module")
def chromium() -> Iterator[webdriver.Chrome]:
    # The performance log: every request the page makes.
    driver = headless_chromium(capabilities={"goog:loggingPrefs": {"performance": "ALL"}})
    yield driver
    driver.quit()


def requested_urls(driver: webdriver.Chrome) -> list[str]:
    """The URLs of the requests the browser sent since the last call (Chrome's performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def sign_in_through(driver: webdriver.Chrome, server: Server, link: str) -> str:
    """Follow a sign-in link, sign in with the token, and give the URL the browser ends on."""
    driver.delete_all_cookies()
    driver.get(link)
    requested_urls(driver)  # forget the link itself (it carries no token)
    type_into(driver, "token", TOKEN)
    click(driver, "signin")
    wait(driver, lambda d: "/signin" not in d.current_url, what="the page after signing in")
    wait(driver, lambda d: d.execute_script("return document.readyState") == "complete")
    return driver.current_url


CRAFTED = {
    "backslash": "/\\{host}/steal",
    "two backslashes": "\\\\{host}/steal",
    "slash backslash slash": "/\\/{host}/steal",
    "tab": "/\t/{host}/steal",
    "newline": "/\n/{host}/steal",
    "scheme-relative": "//{host}/steal",
    "absolute": "http://{host}/steal",
    "encoded once more": "/%5C{host}/steal",
    "encoded slashes": "/%2F{host}/steal",
}
"""``next`` values (as the page receives them, once the link's own encoding is undone) that point away."""


@pytest.mark.parametrize("form", CRAFTED, ids=list(CRAFTED))
def test_a_crafted_next_link_never_leaves_the_server_nor_shows_the_token(
        server: Server, chromium: webdriver.Chrome, thief: tuple[str, list[str]], form: str) -> None:
    host, seen = thief
    target = CRAFTED[form].format(host=host)
    landed = sign_in_through(chromium, server, f"{server.url}/signin?next={quote(target, safe='')}")
    assert seen == [], f"{form}: the browser went to the other site: {seen}"
    assert urlsplit(landed).netloc == urlsplit(server.url).netloc, landed
    sent = requested_urls(chromium)
    assert not [url for url in sent if TOKEN in url], sent
    assert chromium.get_cookie("rewards_token")["httpOnly"]


def test_a_path_on_this_server_is_where_signing_in_leads(server: Server, chromium: webdriver.Chrome) -> None:
    landed = sign_in_through(chromium, server, f"{server.url}/signin?next={quote('/leaderboard?x=1')}")
    assert landed == f"{server.url}/leaderboard?x=1"
    assert not [url for url in requested_urls(chromium) if TOKEN in url]
    by_id(chromium, "who")  # signed in by the cookie alone


def test_a_wrong_token_comes_back_to_the_form_with_its_next(server: Server, chromium: webdriver.Chrome
                                                           ) -> None:
    chromium.delete_all_cookies()
    chromium.get(f"{server.url}/signin?next=%2Fleaderboard")
    type_into(chromium, "token", "not-the-token")
    click(chromium, "signin")
    assert by_id(chromium, "signin-error").text.startswith("That token is not known")
    type_into(chromium, "token", TOKEN)
    click(chromium, "signin")
    wait(chromium, lambda d: d.current_url == f"{server.url}/leaderboard", what="the leaderboard")


@pytest.mark.parametrize("target", ["/\\evil.example/", "/\t/evil.example", "\\\\evil.example", "/\x00x",
                                    "//evil.example", "https://evil.example/", "javascript:alert(1)",
                                    " /x", "/x#\\evil"])
def test_only_paths_on_this_server_are_kept(target: str) -> None:
    assert _safe_next(target) == "/"


def test_a_path_and_its_query_are_kept() -> None:
    assert _safe_next("/models/x/train?fresh=1") == "/models/x/train?fresh=1"
    assert _safe_next("/%5Cx") == "/%5Cx"  # a literal %5C stays a path on this server
