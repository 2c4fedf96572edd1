"""Bounded requests: big bodies are refused with 413 before they are read, declared or streamed."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

V1 = "/api/v1"


def test_a_10_mb_reward_function_is_refused_with_413(api: httpx.Client) -> None:
    api.post(f"{V1}/create_session", params={"session_id": "big_body"})
    huge = "def reward_function(params):\n    return 1\n" + "#" * 10_000_000
    response = api.post(f"{V1}/write_reward_fn", json={"session_id": "big_body", "reward_function": huge})
    assert response.status_code == 413
    assert "larger than 1,000,000 bytes" in response.json()["message"]
    kept = api.get(f"{V1}/get_all_params", params={"session_id": "big_body"}).json()
    assert len(kept["training_params"].get("reward_function", "")) < 1000


def test_a_streamed_body_without_a_length_is_cut_off_too(api: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"session_id": "big_body", "reward_function": "'
        for _ in range(200):
            yield b"#" * 10_000
        yield b'"}'

    response = api.post(f"{V1}/write_reward_fn", content=chunks(),
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert api.get("/health").status_code == 200


def test_a_body_under_the_bound_is_served(api: httpx.Client) -> None:
    api.post(f"{V1}/create_session", params={"session_id": "ok_body"})
    source = "def reward_function(params):\n    return 1\n" + "# a comment line\n" * 1000
    response = api.post(f"{V1}/write_reward_fn", json={"session_id": "ok_body", "reward_function": source})
    assert response.status_code == 200, response.text
