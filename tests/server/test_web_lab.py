"""The web lab in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``), against a real
server on loopback: the whole workflow a student follows, with a screenshot of every step.

The screenshots go to ``test-artifacts/web-lab/`` in the project (or ``$REWARDS_ARTIFACTS``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import COMMAND, TOKEN, Server, start_server, stop_server
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from rewards_api.envs.physics import DEFAULT_ACTIONS
from rewards_api.store import SessionStore

PROJECT = Path(__file__).parents[2]
ARTIFACTS = Path(os.environ.get("REWARDS_ARTIFACTS") or PROJECT / "test-artifacts") / "web-lab"
LAPTOP = (1366, 900)
TABLET = (820, 1180)
MODEL = "lab_car"
TIMES = "\N{MULTIPLICATION SIGN}"


def browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        raise AssertionError("the browser tests need Debian's chromium and chromium-driver packages: run "
                             "`make browser` (as root), or apt-get install chromium chromium-driver")
    return chromium, driver


def headless_chromium(*arguments: str, prefs: dict[str, Any] | None = None,
                      capabilities: dict[str, Any] | None = None) -> webdriver.Chrome:
    """Debian's Chromium, headless, driven by its own chromedriver (never a downloaded one); ``arguments``
    are added to the command line, ``prefs`` and ``capabilities`` to the options."""
    binary, driver_path = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    if prefs:
        options.add_experimental_option("prefs", prefs)
    for name, value in (capabilities or {}).items():
        options.set_capability(name, value)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     *arguments):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))


@pytest.fixture(scope="module")
def bucket(s3_server: Any) -> str:
    return s3_server.new_bucket()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, s3_server: Any, bucket: str) -> Iterator[Server]:
    """A server whose models can be pushed to a bucket (moto's S3 server on loopback)."""
    storage = {"REWARDS_S3_BUCKET": bucket, "REWARDS_S3_ENDPOINT_URL": s3_server.url}
    running = start_server(tmp_path_factory.mktemp("lab") / "home", "--token", TOKEN,
                           env={**s3_server.env(), **storage})
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads: Path) -> Iterator[webdriver.Chrome]:
    driver = headless_chromium(f"--window-size={LAPTOP[0]},{LAPTOP[1]}", "--lang=en-US",
                               prefs={"download.default_directory": str(downloads),
                                      "download.prompt_for_download": False})
    driver.set_window_size(*LAPTOP)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def shot(driver: webdriver.Chrome, name: str) -> Path:
    """Keep a screenshot of the whole page as a test artefact."""
    time.sleep(0.3)  # let transitions settle
    wait(driver, lambda d: d.execute_script(
        "return [...document.images].every(image => image.complete)"
        " && !document.querySelector('.q-img__loading')"), what="the pictures to load")
    path = ARTIFACTS / f"{name}.png"
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size["width"], max(height + 120, size["height"]))
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(size["width"], size["height"])
    return path


def wait(driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], Any], timeout: float = 20,
         what: str = "the page") -> Any:
    try:
        return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(
            condition, message=f"waited {timeout:g} s for {what}")
    except TimeoutException:
        driver.save_screenshot(str(ARTIFACTS / "failed-while-waiting.png"))  # what the page showed instead
        raise


def by_id(driver: webdriver.Chrome, testid: str, timeout: float = 20) -> WebElement:
    return wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]'), timeout,
                f"[data-testid={testid}]")


def present(driver: webdriver.Chrome, testid: str) -> bool:
    return bool(driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]'))


def click(driver: webdriver.Chrome, testid: str) -> None:
    element = by_id(driver, testid)
    wait(driver, lambda d: element.is_displayed() and element.is_enabled(), what=f"{testid} to be clickable")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def type_into(driver: webdriver.Chrome, testid: str, text: str) -> None:
    field = by_id(driver, testid)  # Quasar puts the attributes on the <input> itself
    if field.tag_name != "input":
        field = field.find_element(By.CSS_SELECTOR, "input")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.BACKSPACE)
    field.send_keys(text)


def text_of(driver: webdriver.Chrome, testid: str) -> str:
    return by_id(driver, testid).text


def chart_points(driver: webdriver.Chrome) -> int:
    """How many scores the live chart holds (read from the ECharts instance in the page)."""
    chart = by_id(driver, "score-chart")
    return driver.execute_script(
        "const c = getElement(arguments[0].id.slice(1)).chart;"
        "return c ? c.getOption().series[0].data.length : -1;", chart)


def frame_bytes(driver: webdriver.Chrome, testid: str) -> bytes:
    return base64.b64decode(by_id(driver, testid).screenshot_as_base64)


def sign_in_with_the_token(lab: Server, browser: webdriver.Chrome) -> None:
    browser.delete_all_cookies()
    browser.get(f"{lab.url}/")
    wait(browser, lambda d: "/signin" in d.current_url, what="the sign-in page")
    type_into(browser, "token", "not-the-token")
    click(browser, "signin")
    assert by_id(browser, "signin-error").text.startswith("That token is not known")
    shot(browser, "01-sign-in-refused")
    type_into(browser, "token", TOKEN)
    click(browser, "signin")
    wait(browser, lambda d: d.title.startswith("Your models"), what="the models page")
    assert "token" not in browser.current_url  # taken out of the address bar ...
    cookie = browser.get_cookie("rewards_token")
    assert cookie is not None and cookie["httpOnly"]  # ... and kept where page scripts cannot read it
    assert text_of(browser, "who") == "signed in as owner"
    shot(browser, "02-no-models-yet")
    browser.get(f"{lab.url}/leaderboard")  # the cookie signs the next visit in
    assert by_id(browser, "leaderboard-empty").is_displayed()


def create_a_model_with_a_reward_error_shown_at_its_line(lab: Server, browser: webdriver.Chrome) -> None:
    browser.get(f"{lab.url}/new")
    type_into(browser, "name", "my car")
    click(browser, "next-name")
    wait(browser, lambda d: "Not a valid name" in d.page_source, what="the name's error")
    shot(browser, "03-name-refused")
    type_into(browser, "name", MODEL)
    click(browser, "next-name")
    click(browser, "track-2")
    wait(browser, lambda d: "chosen" in by_id(d, "track-2").get_attribute("class"), what="track 2 chosen")
    with lab.client() as api:  # the catalogue's difficulty and reference lap, shown with the track
        tracks = api.get("/api/v1/tracks").json()["tracks"]
    track_2 = next(track for track in tracks if track["name"] == "training-2")
    assert track_2["difficulty"] in text_of(browser, "track-2")
    assert text_of(browser, "track-2-facts") == f"reference lap {track_2['reference_lap_time']:.1f} s"
    shot(browser, "04-track-chosen")
    click(browser, "next-track")
    assert "chosen" in by_id(browser, "car-classic").get_attribute("class")  # the original's car by default
    click(browser, "next-car")
    type_into(browser, "num_episodes", "100000")  # long enough to watch; the test stops it
    type_into(browser, "learning_rate", "0")
    click(browser, "next-model")
    wait(browser, lambda d: "learning_rate" in text_of(d, "model-error"), what="the learning rate's error")
    type_into(browser, "learning_rate", "0.01")
    click(browser, "next-model")
    editor = by_id(browser, "reward-editor").find_element(By.CSS_SELECTOR, ".cm-content")
    editor.click()
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys(Keys.DELETE)
    # CodeMirror indents the line after the colon itself.
    editor.send_keys("def reward_function(params):\n", "speed = params['speed']\n",
                     "return params['radar'][2]")
    click(browser, "validate")
    verdict = wait(browser, lambda d: (t := text_of(d, "reward-verdict")).startswith("Line") and t,
                   what="the error")
    assert verdict.startswith("Line 3: ") and "did you mean 'radars'" in verdict, verdict
    marked = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".reward-error-line"),
                  what="the line mark")
    assert "params['radar'][2]" in marked[0].text
    shot(browser, "05-reward-error-at-its-line")
    click(browser, "example-centre")
    wait(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, ".reward-error-line"), what="the mark to go")
    click(browser, "validate")
    wait(browser, lambda d: text_of(d, "reward-verdict").startswith("Valid"), what="the reward to pass")
    shot(browser, "06-reward-valid")
    click(browser, "create")
    wait(browser, lambda d: d.current_url.endswith(f"/models/{MODEL}/train"), what="the training view")
    with lab.client() as api:
        params = api.get("/api/v1/get_all_params", params={"session_id": MODEL}).json()
    assert params["env_params"]["environment_world"] == 2
    assert "action_space" not in params["env_params"]  # the classic car's file keeps the original keys
    assert params["agent_params"]["num_episodes"] == 100000
    assert "distance_from_center" in params["training_params"]["reward_function"]


def train_watch_the_video_and_chart_then_stop(lab: Server, browser: webdriver.Chrome) -> None:
    browser.get(f"{lab.url}/models/{MODEL}/train")
    click(browser, "train")
    by_id(browser, "video", timeout=30)
    wait(browser, lambda d: chart_points(d) > 0, timeout=60, what="the first episodes on the chart")
    first_frame, first_points = frame_bytes(browser, "video"), chart_points(browser)
    time.sleep(2)
    wait(browser, lambda d: frame_bytes(d, "video") != first_frame, what="the video to move")
    wait(browser, lambda d: chart_points(d) > first_points, what="the chart to grow")
    wait(browser, lambda d: text_of(d, "steps-per-second").replace(",", "").isdigit(),
         what="steps per second")
    assert int(text_of(browser, "episode").split("/")[0]) > 0
    shot(browser, "07-training-live")

    browser.get(f"{lab.url}/")  # leaving the page does not stop the training ...
    assert by_id(browser, f"state-{MODEL}").text in ("running", "queued")
    shot(browser, "08-models-while-training")
    click(browser, f"watch-{MODEL}")  # ... and coming back attaches to it again
    by_id(browser, "video")
    wait(browser, lambda d: chart_points(d) > first_points, what="the chart's history")
    click(browser, "stop")
    wait(browser, lambda d: text_of(d, "job-state") in ("stopped", "finished"), timeout=30, what="the stop")
    wait(browser, lambda d: present(d, "train") and not present(d, "video"), what="the idle view")
    shot(browser, "09-training-stopped")


def choose(driver: webdriver.Chrome, testid: str, option: str) -> None:
    """Pick ``option`` in a Quasar select (an option's label may go on with " · " and its track's facts)."""
    click(driver, testid)
    wait(driver, lambda d: [item for item in d.find_elements(By.CSS_SELECTOR, ".q-menu .q-item")
                            if item.text == option or item.text.startswith(f"{option} · ")],
         what=f"the option {option}")[0].click()


def retrain_on_another_track(lab: Server, browser: webdriver.Chrome) -> None:
    browser.get(f"{lab.url}/")
    click(browser, f"retrain-{MODEL}")
    choose(browser, "retrain-track", "Training track 3")
    shot(browser, "10-retrain-on-track-3")
    click(browser, "retrain-go")
    wait(browser, lambda d: d.current_url.endswith(f"/models/{MODEL}/train"), what="the training view")
    by_id(browser, "video")
    with lab.client() as api:
        assert api.get("/api/v1/get_all_params", params={"session_id": MODEL}).json()[
            "env_params"]["environment_world"] == 3
        episodes_before = api.get(f"/api/v1/jobs/{MODEL}").json()["episode"]
    wait(browser, lambda d: int(text_of(d, "episode").split("/")[0]) > episodes_before + 5, timeout=60,
         what="episodes on track 3")
    click(browser, "stop")
    wait(browser, lambda d: present(d, "train") and not present(d, "video"), timeout=30, what="the stop")
    with lab.client() as api:
        runs = api.get("/api/v1/model_info", params={"session_id": MODEL}).json()["runs"]
    assert [run["start"] for run in runs] == ["fresh", "warm"] and runs[1]["track"] == "training-3"


def evaluate_on_the_unseen_track(lab: Server, browser: webdriver.Chrome) -> None:
    browser.get(f"{lab.url}/")
    click(browser, f"evaluate-{MODEL}")
    click(browser, "evaluate-go")
    wait(browser, lambda d: "/evaluate" in d.current_url, what="the evaluation view")
    laps = by_id(browser, "evaluation-laps", timeout=60).text
    assert laps.endswith("/ 5")
    wait(browser, lambda d: (by_id(d, "evaluation-video").get_attribute("src") or "").startswith("blob:"),
         what="the trials to play")
    first = frame_bytes(browser, "evaluation-video")
    wait(browser, lambda d: frame_bytes(d, "evaluation-video") != first, what="the trials to move")
    assert "Evaluation track (unseen)" in text_of(browser, "results")
    lap = text_of(browser, "evaluation-best-lap")  # timed by the evaluation, beside the track's reference
    assert lap == "no lap" or re.fullmatch(rf"\d+(\.\d+)? s \(\d+\.\d\d{TIMES} reference\)", lap), lap
    assert text_of(browser, "evaluation-off-track").endswith("/ 5")
    assert text_of(browser, "evaluation-reference").startswith("Reference lap ")
    shot(browser, "11-evaluation")
    browser.get(f"{lab.url}/models/{MODEL}/evaluate?mode=training&track=9")  # no such track: the API's word
    refused = wait(browser, lambda d: (t := text_of(d, "evaluation-status")).startswith("The evaluation")
                   and "could not run" in t and t, what="the refusal")
    assert "track_num" in refused, refused


def push_to_the_bucket(lab: Server, browser: webdriver.Chrome, s3_server: Any, bucket: str) -> None:
    browser.get(f"{lab.url}/")
    click(browser, f"push-{MODEL}")
    type_into(browser, "push-user-id", "teacher")
    shot(browser, "12-push")
    click(browser, "push-go")
    wait(browser, lambda d: f"{MODEL} pushed" in d.page_source, what="the push")
    listed = s3_server.client().list_objects_v2(Bucket=bucket, Prefix=f"Models/teacher/{MODEL}/")
    assert {item["Key"].rsplit("/", 1)[1] for item in listed["Contents"]} >= {"model.pth", "summary.json"}


def leaderboard_lists_the_evaluated_model(lab: Server, browser: webdriver.Chrome) -> None:
    browser.get(f"{lab.url}/leaderboard")
    table = by_id(browser, "leaderboard")
    rows = [row.text for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert any(MODEL in row and "this server" in row for row in rows), rows
    assert any(MODEL in row and "teacher" in row and "shared bucket" in row for row in rows), rows
    shot(browser, "13-leaderboard")


def export_a_zip(lab: Server, browser: webdriver.Chrome, downloads: Path) -> None:
    browser.get(f"{lab.url}/")
    click(browser, f"export-{MODEL}")
    archive = wait(browser, lambda d: [path for path in downloads.glob("*.zip")], what="the download")[0]
    with zipfile.ZipFile(archive) as opened:
        names = opened.namelist()
    assert any(name.endswith("model.pth") for name in names), names
    assert any(name.endswith("training_params.json") for name in names), names


def models_page_fits_a_tablet(lab: Server, browser: webdriver.Chrome) -> None:
    browser.set_window_size(*TABLET)
    try:
        browser.get(f"{lab.url}/")
        card = by_id(browser, f"card-{MODEL}")
        assert "Evaluation track (unseen)" in card.text and "record" in card.text
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        shot(browser, "14-models-on-a-tablet")
    finally:
        browser.set_window_size(*LAPTOP)


def delete_after_confirming(lab: Server, browser: webdriver.Chrome) -> None:
    browser.get(f"{lab.url}/")
    click(browser, f"delete-{MODEL}")
    by_id(browser, "delete-confirm")
    shot(browser, "15-delete-confirm")
    click(browser, "delete-confirm")
    wait(browser, lambda d: not present(d, f"card-{MODEL}"), what="the card to go")
    with lab.client() as api:
        assert MODEL not in api.get("/api/v1/get_all_sessions").json()
    shot(browser, "16-deleted")


def test_a_students_session_from_sign_in_to_delete(lab: Server, browser: webdriver.Chrome, s3_server: Any,
                                                   bucket: str, downloads: Path) -> None:
    """The whole workflow, step by step, each step depending on the one before (hence one test)."""
    sign_in_with_the_token(lab, browser)
    create_a_model_with_a_reward_error_shown_at_its_line(lab, browser)
    train_watch_the_video_and_chart_then_stop(lab, browser)
    retrain_on_another_track(lab, browser)
    evaluate_on_the_unseen_track(lab, browser)
    push_to_the_bucket(lab, browser, s3_server, bucket)
    leaderboard_lists_the_evaluated_model(lab, browser)
    export_a_zip(lab, browser, downloads)
    models_page_fits_a_tablet(lab, browser)
    delete_after_confirming(lab, browser)


RACER = "lab_racer"


def visible(driver: webdriver.Chrome, testid: str) -> bool:
    return any(element.is_displayed()
               for element in driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]'))


def fan_rays(driver: webdriver.Chrome) -> int:
    return len(by_id(driver, "action-fan").find_elements(By.CSS_SELECTOR, "g.fan-action"))


def test_a_racing_car_with_its_own_actions(lab: Server, browser: webdriver.Chrome) -> None:
    """The wizard's racing car: its actions edited (the server's word beside the wrong one), drawn as a fan,
    the network following the car; then the card and the leaderboard show its lap beside the reference."""
    browser.get(f"{lab.url}/new?token={TOKEN}")
    type_into(browser, "name", RACER)
    click(browser, "next-name")
    click(browser, "track-drag-strip")  # a racing track: a long straight braking into a hairpin
    wait(browser, lambda d: "chosen" in by_id(d, "track-drag-strip").get_attribute("class"),
         what="drag-strip chosen")
    assert "intermediate" in text_of(browser, "track-drag-strip")
    assert not present(browser, "track-gauntlet")  # held out: an evaluation track is never trained on
    click(browser, "next-track")
    click(browser, "car-discrete")
    wait(browser, lambda d: fan_rays(d) == 15, what="the default actions' fan")
    type_into(browser, "action-3-speed", "9")
    refused = wait(browser, lambda d: (t := text_of(d, "action-3-effect")).startswith("actions[3]") and t,
                   what="the speed's refusal beside it")
    assert "actions[3].speed = 9" in refused and "0.5 to 4 m/s" in refused, refused
    click(browser, "next-car")  # refused: the car's step stays
    time.sleep(0.5)
    assert by_id(browser, "action-3-speed").is_displayed() and not visible(browser, "next-model")
    shot(browser, "18-racing-action-refused")
    type_into(browser, "action-3-speed", "3.5")
    wait(browser, lambda d: text_of(d, "action-3-effect") == "15° left at 3.5 m/s: a 2.04 m circle "
         "(grip-limited)", what="the action's effect")
    click(browser, "action-14-remove")
    wait(browser, lambda d: not present(d, "action-14") and fan_rays(d) == 14, what="the action removed")
    click(browser, "action-add")  # straight on at the slowest speed the list has not
    wait(browser, lambda d: present(d, "action-14") and fan_rays(d) == 15, what="the action added")
    shot(browser, "19-racing-actions")
    click(browser, "next-car")
    shape = wait(browser, lambda d: (t := text_of(d, "network-shape")) and t, what="the network's shape")
    assert "6 inputs" in shape and "15 outputs" in shape, shape
    assert by_id(browser, "hidden").get_attribute("value") == "64, 64"  # the racing car's default network
    click(browser, "next-model")
    click(browser, "create")
    wait(browser, lambda d: d.current_url.endswith(f"/models/{RACER}/train"), what="the training view")
    expected = [action.as_dict() for action in DEFAULT_ACTIONS]
    expected[3]["speed"] = 3.5
    expected[14] = {"steering_angle": 0.0, "speed": 0.5}
    with lab.client() as api:
        params = api.get("/api/v1/get_all_params", params={"session_id": RACER}).json()
    assert params["env_params"]["action_space"] == "discrete"
    assert params["env_params"]["environment_world"] == "drag-strip"
    assert params["env_params"]["actions"] == expected
    layers = params["agent_params"]["model_configuration"]
    assert (json.loads(layers) if isinstance(layers, str) else layers) == [[6, 64], [64, 64], [64, 15]]

    # An evaluation of the racing car, as the server records one: the card and leaderboard show its lap.
    metrics = {"num_trials": 5, "record": 1.0e6, "mean_score": 9.0e5, "laps_completed": 3,
               "mean_progress": 81.2, "total_elapsed_time": 2.5, "evaluated_at": "2026-12-03T12:00:00Z",
               "completion_percent": 81.2, "best_lap_time": 12.3, "mean_lap_time": 13.4, "off_track_count": 2,
               "reference_lap_time": 10.42, "best_lap_ratio": 1.18, "car": "discrete"}
    SessionStore(lab.home).record_evaluation(RACER, "evaluation", "1", metrics)
    browser.get(f"{lab.url}/")
    card = by_id(browser, f"card-{RACER}").text
    lap = f"12.3 s (1.18{TIMES} reference)"
    assert "racing car, 15 actions" in card and lap in card and "2 / 5" in card, card
    shot(browser, "20-racing-card")
    browser.get(f"{lab.url}/leaderboard")
    rows = [row.text for row in by_id(browser, "leaderboard").find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert any(RACER in row and lap in row and "3 / 5" in row and "discrete" in row for row in rows), rows
    assert "laps completed" in text_of(browser, "leaderboard-rule")


def test_a_user_sees_only_their_own_models(lab: Server, browser: webdriver.Chrome) -> None:
    with lab.client() as api:
        assert api.post("/api/v1/create_session", params={"session_id": "owners_car"}).status_code == 200
    added = subprocess.run([COMMAND, "--home", str(lab.home), "users", "add", "alice"], capture_output=True,
                           text=True, check=True)
    alice = next(word for word in added.stdout.split() if len(word) >= 32)
    browser.delete_all_cookies()
    browser.get(f"{lab.url}/?token={alice}")  # the start-up URL style
    wait(browser, lambda d: d.title.startswith("Your models"), what="alice's models")
    assert text_of(browser, "who") == "signed in as alice"
    assert not present(browser, "card-owners_car")
    browser.get(f"{lab.url}/models/owners_car/train")  # the owner's model is not there for alice
    assert "owners_car" in text_of(browser, "page-error")
    with lab.client() as api:
        assert "owners_car" in api.get("/api/v1/get_all_sessions").json()


def test_no_browser_errors_on_the_pages(lab: Server, browser: webdriver.Chrome) -> None:
    browser.get(f"{lab.url}/?token={TOKEN}")
    browser.get_log("browser")  # forget what earlier tests on this browser logged (a refused evaluation)
    problems = []
    for page in ("/", "/new", "/environments", "/leaderboard"):
        browser.get(f"{lab.url}{page}")
        by_id(browser, "who")
        try:
            logs = browser.get_log("browser")
        except WebDriverException:  # pragma: no cover - a driver without logs
            logs = []
        problems += [entry for entry in logs if entry["level"] == "SEVERE"]
    assert problems == []
    browser.get(f"{lab.url}/environments")
    assert "available" in by_id(browser, "env-car_racer").text  # the original's ids (its pictures' names)
    assert "coming soon" in by_id(browser, "env-snake_game").text
    shot(browser, "17-environments")
