"""Property-based fuzzing of the HTTP API with schemathesis, against a real server on loopback.

    .venv/bin/pytest tests/server/test_fuzz.py -q          (about 30 s on 2 cores)
    FUZZ_EXAMPLES=300 .venv/bin/pytest tests/server/test_fuzz.py -q    (a deeper run, a few minutes)

Schemathesis generates requests from the OpenAPI document (valid ones, and invalid ones: wrong types,
missing fields, other methods, bodies that are not JSON or not UTF-8) and sends them to a real
``rewards-api serve`` started with a token on a free loopback port. Every answer must:

- never be a 5xx (``not_a_server_error``);
- conform to the document: a documented status code, the documented content type and headers, a body
  that matches the documented schema; and refuse schema-invalid input with a 4xx;
- carry ``status`` equal to the HTTP status when it is a JSON object (SPEC.md §5).

The streaming endpoints (``/stream``, ``/evaluate``, ``/metrics/stream``) have their own test with few
examples, which reads an answer's status and headers but not an endless body; every operation is also
called without a token (it must be a 401). Runs are reproducible (``derandomize``) and bounded
(``max_examples``): CI sees the same cases every time. A few sessions exist before fuzzing starts, and
generated session ids are sometimes replaced by one of them, so the fuzzer reaches the handlers' real
work and not only their 404s. The server runs one training at a time, and the last test stops them all.

A failure prints a ``curl`` command that reproduces it (the token shown is this file's test token). What
the fuzzer found so far, all fixed: a 500 for a bad ``learning_algorithm`` next to a valid reward
function; bare ``{"detail": ...}`` answers without ``status`` for 405 and for bodies that are not UTF-8;
``POST /evaluate`` hidden from the document.

Why the schema is loaded when this module is imported, from the app, and not with
``schemathesis.openapi.from_url`` from the running server: the lazy loader meant for a server started by
a fixture (``schemathesis.pytest.from_fixture``) fails under pytest 9 ("'Function' object has no
attribute '_nodeid'", schemathesis 4.32). The document is the same: ``test_the_fuzzed_document_is_the_
servers`` loads the running server's ``/openapi.json`` with ``from_url`` and checks that it is.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from conftest import TOKEN, Server, start_server, stop_server
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import allow_header_conformance, positive_data_acceptance

from rewards_api.config import Settings
from rewards_api.server.app import create_app

V1 = "/api/v1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

STREAMING = r"^/api/v1/(stream|evaluate/?|metrics/stream)$"
"""Endpoints whose 200 answer is an endless (or long) stream: fuzzed by their own test below, which reads
the status and headers but not the body (schemathesis' own call would wait for the end of the body)."""

REWARD = "def reward_function(params):\n    return 1.0 if params['is_alive'] else 0.0\n"

# Sessions that exist before fuzzing starts, by what the fuzzer may do to them.
CONFIGURED = "fuzz_configured"  # every parameter file written
FRESH = "fuzz_fresh"  # only created
TRAINED = "fuzz_trains"  # trained by /train and /stream: 2 episodes, so each training is over in seconds
DOOMED = "fuzz_doomed"  # deleted by /delete_session
POOLS: dict[str, tuple[str, ...]] = {
    "/delete_session": (DOOMED,),
    "/train": (TRAINED,),
    "/stream": (TRAINED,),
    "/stop": (TRAINED,),
    "/jobs/{session_id}": (TRAINED,),
    "/metrics/stream": (TRAINED,),
    # Never trained: an evaluation of it is refused at once (409), instead of running trials for seconds.
    "/evaluate": (CONFIGURED, FRESH),
    "/evaluate/": (CONFIGURED, FRESH),
}
DEFAULT_POOL = (CONFIGURED, FRESH)

FUZZ_SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),  # FUZZ_EXAMPLES=500 for a deeper run
    deadline=None,  # a real server over HTTP, and a reward check runs in a child process
    derandomize=True,  # the same cases on every run: a CI failure reproduces on a laptop
    suppress_health_check=list(HealthCheck),  # the server is slow to hypothesis' eyes, by design
    database=None,
)

# Checks left out, on purpose:
# - positive_data_acceptance: the document does not state every rule a value must follow (session ids'
#   pattern, ranges of numbers, a reward function that must compile...), so "schema-valid" requests are
#   legitimately refused with 422; the API's own tests cover what it accepts.
# - allow_header_conformance: /get_all_envs and /get_all_tracks are two routes each (GET and POST), and
#   Starlette's 405 names only the first route's method in ``Allow``.
EXCLUDED_CHECKS = [positive_data_acceptance, allow_header_conformance]


def status_field_matches(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                         case: schemathesis.Case) -> bool | None:
    """SPEC.md §5: a JSON object answer carries ``status`` equal to the HTTP status code (except
    get_all_sessions, whose keys are session ids only)."""
    content_type = (response.headers.get("content-type") or [""])[0]
    if not content_type.startswith("application/json") or case.operation.path.endswith("/get_all_sessions"):
        return None
    body = response.json()
    if isinstance(body, dict):
        assert body.get("status") == response.status_code, (
            f"the answer's 'status' is {body.get('status')!r}, its HTTP status {response.status_code}"
        )
    return None


ADDITIONAL_CHECKS = [status_field_matches]


def _document() -> dict[str, Any]:
    """The OpenAPI document of an app built like ``rewards-api serve`` builds it (nothing is started)."""
    home = Path(tempfile.gettempdir()) / "rewards-fuzz-unused-home"
    return create_app(Settings(home=home, token=TOKEN, web_ui=False), TOKEN).openapi()


def _config() -> schemathesis.Config:
    config = schemathesis.Config()
    # Show session ids and bodies as sent: the token is this file's test token, nothing secret.
    config.output.sanitization.update(enabled=False)
    config.output.truncation.update(enabled=False)
    return config


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=_config())
anonymous = schemathesis.openapi.from_dict(DOCUMENT, config=_config())
"""The same document, for requests without a token: valid ones only, which must all get a 401."""
anonymous.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE])


def _pool(operation_path: str) -> tuple[str, ...]:
    return POOLS.get(operation_path.removeprefix(V1), DEFAULT_POOL)


def _sometimes_existing(value: Any, path: str) -> st.SearchStrategy[Any]:
    """``value``, or (when it has a session id) the same with an existing session's id and, for a body
    with a reward function, a valid one: the fuzzer alone would hardly ever write a function that compiles."""
    if not isinstance(value, dict) or not isinstance(value.get("session_id"), str):
        return st.just(value)

    def existing(name: str) -> dict[str, Any]:
        if isinstance(value.get("reward_function"), str):
            return {**value, "session_id": name, "reward_function": REWARD}
        return {**value, "session_id": name}

    return st.one_of(st.just(value), st.sampled_from(_pool(path)).map(existing))


@schema.hook("flatmap_query")
def existing_in_query(context: schemathesis.HookContext, query: dict[str, Any]) -> st.SearchStrategy:
    assert context.operation is not None
    return _sometimes_existing(query, context.operation.path)


@schema.hook("flatmap_path_parameters")
def existing_in_path(context: schemathesis.HookContext, parameters: dict[str, Any]) -> st.SearchStrategy:
    assert context.operation is not None
    return _sometimes_existing(parameters, context.operation.path)


@schema.hook("flatmap_body")
def existing_in_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy:
    assert context.operation is not None
    return _sometimes_existing(body, context.operation.path)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server that runs one training at a time (others wait in its queue): whatever the fuzzer
    starts, it keeps at most one core busy; the last test stops every training."""
    server = start_server(tmp_path_factory.mktemp("fuzz") / "home", "--token", TOKEN, "--max-jobs", "1")
    try:
        with server.client() as api:
            for session in (CONFIGURED, FRESH, TRAINED, DOOMED):
                api.post(f"{V1}/create_session", params={"session_id": session}).raise_for_status()
            for session, episodes in ((CONFIGURED, 50), (TRAINED, 2)):
                for path, body in (
                    ("write_env_params", {"environment_world": 2, "car_speed": 30}),
                    ("write_agent_params", {"model_configuration": "[[5, 9], [9, 3]]", "learning_rate": 0.01,
                                            "loss_fn": "mse", "optimizer": "adam", "gamma": 0.9,
                                            "epsilon": 0.2, "num_episodes": episodes}),
                    ("write_training_params", {"learning_algorithm": "dqn", "enable_wandb": False,
                                               "reward_function": REWARD}),
                ):
                    api.post(f"{V1}/{path}", json={"session_id": session, **body}).raise_for_status()
        yield server
    finally:
        stop_server(server)


def test_the_fuzzed_document_is_the_servers(live: Server) -> None:
    served = schemathesis.openapi.from_url(f"{live.url}/openapi.json", headers=AUTH, timeout=30)
    assert served.raw_schema == DOCUMENT
    labels = {operation.ok().label for operation in served.get_all_operations()}
    assert f"GET {V1}/get_all_params" in labels and f"POST {V1}/train" in labels


@schema.exclude(path_regex=STREAMING).parametrize()
@FUZZ_SETTINGS
def test_no_server_errors_and_answers_match_the_document(case: schemathesis.Case, live: Server) -> None:
    case.call_and_validate(base_url=live.url, headers=AUTH, excluded_checks=EXCLUDED_CHECKS,
                           additional_checks=ADDITIONAL_CHECKS, timeout=30)


@schema.include(path_regex=STREAMING).parametrize()
@settings(FUZZ_SETTINGS, max_examples=6)  # each valid case starts a training or an evaluation process
def test_streams_start_without_server_errors(case: schemathesis.Case, live: Server) -> None:
    """Only the status and headers of a 200 stream are read (its body is endless, or long: an evaluation
    replays its trials in real time); an error's body is read and checked like any other answer.
    ``requests``, schemathesis' own client, takes the case's transport arguments as they are."""
    transport = case.as_transport_kwargs(base_url=live.url, headers=AUTH)
    with requests.request(**{**transport, "timeout": 60}, stream=True) as response:
        if response.status_code == 200:
            response._content = b""  # checked: status code and content type; the body is not JSON
        case.validate_response(response, excluded_checks=EXCLUDED_CHECKS, additional_checks=ADDITIONAL_CHECKS,
                               transport_kwargs=transport)


@anonymous.exclude(path="/health").parametrize()
@settings(FUZZ_SETTINGS, max_examples=3)
def test_every_operation_needs_the_token(case: schemathesis.Case, live: Server) -> None:
    """The document declares no security scheme, so schemathesis cannot check auth by itself: a valid
    request without a token is refused before any work, with a message and the ``status`` field."""
    response = case.call(base_url=live.url, timeout=30)
    assert response.status_code == 401, (case.operation.label, response.status_code, response.text[:200])
    assert response.headers.get("www-authenticate") == ["Bearer"]
    assert response.json()["status"] == 401


def _active(api: httpx.Client) -> list[dict[str, Any]]:
    return [job for job in api.get(f"{V1}/jobs").json()["jobs"] if job["state"] in ("queued", "running")]


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _exited(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_fuzzing_leaves_no_training_running(live: Server) -> None:
    """Stop whatever the fuzzer started (a generated session may have 700 episodes to go), and see the
    training processes go."""
    with live.client() as api:
        active = _active(api)
        for job in active:
            api.get(f"{V1}/stop", params={"session_id": job["session_id"]}).raise_for_status()
        assert _wait(lambda: not _active(api), 30), _active(api)
        workers = [job["pid"] for job in active if job["pid"] is not None]
        assert _wait(lambda: all(_exited(pid) for pid in workers), 15), workers
        assert api.get("/health").status_code == 200
