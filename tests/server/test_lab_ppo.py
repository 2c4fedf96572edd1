"""The web lab's wizard learns PPO, in a real headless Chromium against a real server: the algorithm's
choice and defaults, the continuous car (which only PPO drives) with its speed range, the server's word
beside a refused PPO value, the files written and the card naming the algorithm."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from conftest import TOKEN, Server
from selenium import webdriver
from selenium.webdriver.common.by import By
from test_web_lab import (
    ARTIFACTS,
    LAPTOP,
    by_id,
    click,
    headless_chromium,
    shot,
    text_of,
    type_into,
    visible,
    wait,
)

from rewards_api.params import PPO_DEFAULTS, PPO_KEYS

MODEL = "lab_ppo"


@pytest.fixture(scope="module")
def chromium() -> Iterator[webdriver.Chrome]:
    driver = headless_chromium(f"--window-size={LAPTOP[0]},{LAPTOP[1]}", "--lang=en-US")
    driver.set_window_size(*LAPTOP)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def value_of(driver: webdriver.Chrome, testid: str) -> str:
    return by_id(driver, testid).get_attribute("value")


def field_message(driver: webdriver.Chrome, testid: str) -> str:
    """What Quasar shows under a field: its error, or else its hint."""
    field = by_id(driver, testid).find_element(By.XPATH, "./ancestor::label[contains(@class, 'q-field')]")
    return field.find_element(By.CSS_SELECTOR, ".q-field__messages").text


def chosen(driver: webdriver.Chrome, testid: str) -> bool:
    return "chosen" in by_id(driver, testid).get_attribute("class")


def test_a_ppo_model_of_the_continuous_car(server: Server, chromium: webdriver.Chrome) -> None:
    with server.client() as api:  # the server's own words for the value the wizard will send (a number
        # field's 0 is 0.0)
        assert api.post("/api/v1/create_session", params={"session_id": "scratch"}).status_code == 200
        refused = api.post("/api/v1/write_agent_params", json={"session_id": "scratch", "clip_range": 0.0})
        assert refused.status_code == 422
        clip_message = refused.json()["errors"][0]["message"]
    assert "clip_range" in clip_message

    browser = chromium
    browser.get(f"{server.url}/new?token={TOKEN}")
    type_into(browser, "name", MODEL)
    click(browser, "next-name")
    click(browser, "next-track")
    click(browser, "next-car")  # the classic car first: the algorithm's defaults follow the choice
    assert chosen(browser, "algorithm-dqn") and not visible(browser, "ppo-fields")
    assert value_of(browser, "learning_rate") == "0.01" and visible(browser, "epsilon")
    assert by_id(browser, "normalize_rewards").get_attribute("aria-checked") == "true"
    click(browser, "algorithm-ppo")
    wait(browser, lambda d: value_of(d, "learning_rate") == "0.0003", what="PPO's learning rate")
    assert value_of(browser, "num_episodes") == str(PPO_DEFAULTS["num_episodes"])
    assert all(visible(browser, key) for key in PPO_KEYS) and not visible(browser, "epsilon")
    assert value_of(browser, "clip_range") == "0.2" and value_of(browser, "batch_size") == "4096"
    type_into(browser, "num_episodes", "5000")  # the user's value: kept whatever the algorithm
    click(browser, "algorithm-dqn")
    wait(browser, lambda d: value_of(d, "learning_rate") == "0.01", what="DQN's learning rate again")
    assert value_of(browser, "num_episodes") == "5000" and not visible(browser, "ppo-fields")

    browser.find_element(By.XPATH, "//button[.//span[text()='Back']][not(ancestor::*[contains("
                                   "@style, 'display: none')])]").click()  # back to the car
    click(browser, "car-continuous")
    wait(browser, lambda d: visible(d, "speed-range-max"), what="the speed range")
    type_into(browser, "speed-range-max", "9")
    message = wait(browser, lambda d: (t := text_of(d, "speed-range-error")).startswith("speed_range") and t,
                   what="the speed range's refusal beside it")
    assert "0.5 <= min < max <= 4" in message, message
    type_into(browser, "speed-range-max", "3.5")
    wait(browser, lambda d: text_of(d, "speed-range-error") == "The car drives from 0.5 to 3.5 m/s.",
         what="the speed range accepted")
    click(browser, "next-car")
    wait(browser, lambda d: chosen(d, "algorithm-ppo"), what="PPO, the continuous car's algorithm")
    assert visible(browser, "algorithm-dqn-reason") and "list of actions" in text_of(browser,
                                                                                     "algorithm-dqn-reason")
    click(browser, "algorithm-dqn")  # refused: DQN cannot drive it
    assert chosen(browser, "algorithm-ppo") and value_of(browser, "learning_rate") == "0.0003"
    shape = text_of(browser, "network-shape")
    assert "6 inputs" in shape and "2 outputs (the steering angle and the speed)" in shape, shape

    type_into(browser, "clip_range", "0")
    wait(browser, lambda d: field_message(d, "clip_range") == clip_message, what="clip_range's refusal")
    click(browser, "next-model")  # refused: the step stays, with the server's word
    wait(browser, lambda d: clip_message in text_of(d, "model-error"), what="the step's refusal")
    assert "chosen" not in by_id(browser, "algorithm-dqn").get_attribute("class")
    shot(browser, "21-ppo-continuous")
    type_into(browser, "clip_range", "0.3")
    type_into(browser, "rollout_length", "16")
    wait(browser, lambda d: field_message(d, "clip_range") != clip_message, what="clip_range accepted")
    click(browser, "next-model")
    click(browser, "create")
    wait(browser, lambda d: d.current_url.endswith(f"/models/{MODEL}/train"), what="the training view")

    with server.client() as api:
        params = api.get("/api/v1/get_all_params", params={"session_id": MODEL}).json()
    agent = params["agent_params"]
    assert {key: agent[key] for key in PPO_KEYS} == {"batch_size": 4096, "num_epochs": 4,
                                                    "beta_entropy": 0.01, "rollout_length": 16,
                                                    "clip_range": 0.3, "gae_lambda": 0.95}
    assert agent["learning_rate"] == PPO_DEFAULTS["learning_rate"] and agent["num_episodes"] == 5000
    assert agent["normalize_rewards"] is True
    layers = agent["model_configuration"]
    assert (json.loads(layers) if isinstance(layers, str) else layers) == [[6, 64], [64, 64], [64, 2]]
    assert params["training_params"]["learning_algorithm"] == "ppo"
    assert params["env_params"]["action_space"] == "continuous"
    assert params["env_params"]["speed_range"] == [0.5, 3.5]

    browser.get(f"{server.url}/")
    config = text_of(browser, f"config-{MODEL}")
    assert "racing car, continuous · PPO ·" in config and "lr 0.0003" in config, config
    assert "epsilon" not in config  # DQN's only
    assert "classic car · DQN ·" in text_of(browser, "config-scratch")
