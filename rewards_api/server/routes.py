"""The original ``/api/v1`` endpoints for sessions and their parameters, with the same shapes.

Handlers are plain ``def``: FastAPI runs them in its thread pool, so file work never blocks the event
loop. Every JSON object answer carries ``status`` (the HTTP status) except ``get_all_sessions``, whose
keys are session ids only (the original UI lists sessions with ``Object.keys``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from ..envs.catalogue import catalogue_json
from ..envs.render import track_png
from ..envs.tracks import ALL_NAMED_TRACKS, Track, builtin_track, get_track, named_track
from ..params import REWARD_CHECKED, AgentParams, EnvParams, ParameterError, TrainingParams
from ..runs.jobs import JobManager, StillRunning
from ..scores import final_eval_score
from ..store import SessionNotFound, SessionStore
from .auth import Caller, CurrentCaller, caller_store
from .evaluation import (
    EVALUATIONS_AT_ONCE,
    EVALUATIONS_PER_USER,
    EvaluationFailed,
    evaluations_of,
    run_evaluation,
    until_cancelled,
)
from .limits import BoundedWork
from .models import (
    AgentParamsRequest,
    AllParamsResponse,
    CreateSessionResponse,
    EnvParamsRequest,
    EnvParamsResponse,
    ErrorResponse,
    EvaluateRequest,
    FinalScoreResponse,
    MessageResponse,
    ModelHistoryResponse,
    RewardCheckRequest,
    RewardFunctionRequest,
    SessionParams,
    TrainingParamsRequest,
    TrainingParamsResponse,
    WhoAmIResponse,
    check_session_id,
    params_of,
)
from .responses import EncodedJSONResponse, SafeJSONResponse
from .reward_check import check_reward
from .streams import MJPEG_MEDIA_TYPE, mjpeg_response, paced, replay_frames

router = APIRouter()

EVALUATIONS = BoundedWork("evaluation", EVALUATIONS_PER_USER, EVALUATIONS_AT_ONCE, EVALUATIONS_AT_ONCE,
                          "wait for one to end, then evaluate again")
"""Evaluations being computed: bounded per user and overall, on threads of their own."""
BUSY: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorResponse, "description": "The caller, or the server, has as many at once as allowed"},
}


class Conflict(Exception):
    """A request that cannot be done in the session's current state (a 409)."""

TRACK_FILES = {
    "track-1.png": ("training", 1),
    "track-2.png": ("training", 2),
    "track-3.png": ("training", 3),
    "evaluation-track-1.png": ("evaluation", 1),
}
"""Track pictures by file name: the original API's three training names, and the evaluation track."""

ENVIRONMENTS = [
    {"name": "Car Racer", "id": "car_racer", "isReleased": True,
     "description": "2D racing: a car learns to drive round a track with its 5 radars, taught by a reward."},
    {"name": "Snake Game", "id": "snake_game", "isReleased": False,
     "description": "2D snakes, each driven by its own model, race one another to the food."},
    {"name": "Street Fighter", "id": "street_fighter", "isReleased": False,
     "description": "A 2D arena where two fighters learn to fight for the highest score."},
    {"name": "Bi-Pedal", "id": "bi-pedal", "isReleased": False,
     "description": "A 2D rough road on which a two-legged walker learns to walk as fast as it can."},
]
"""The original server's environments, under its ids. The original UI shows
``src/assets/images/environments/<id>.gif`` (``car_racer.gif`` for the released one; its unreleased bi-pedal
picture is ``bi_pedal.gif``, which the original's id never found either). Sessions store the UI's
``environment_name`` ("car-race"); every name is accepted there (see EnvParams)."""


Store = Annotated[SessionStore, Depends(caller_store)]
"""The caller's own sessions: another user's session id is simply not there (a 404 that reveals nothing)."""


async def session_query(session_id: Annotated[str, Query(description="The session's id.")]) -> str:
    return check_session_id(session_id)


SessionId = Annotated[str, Depends(session_query)]


def ok(**body: Any) -> SafeJSONResponse:
    """A 200 answer with the original's ``status`` field. Returned as a response, so FastAPI does not
    walk the (possibly long) score lists with its pure-Python encoder: json.dumps does the work."""
    return SafeJSONResponse({"status": 200, **body})


@router.post("/create_session", summary="Create a session", response_model=CreateSessionResponse)
def create_session(store: Store, session_id: SessionId) -> SafeJSONResponse:
    return ok(**store.create(session_id))


@router.post("/delete_session", summary="Delete a session and its files (its training and evaluations "
             "are stopped first)", response_model=MessageResponse)
def delete_session(request: Request, caller: CurrentCaller, store: Store, session_id: SessionId
                   ) -> SafeJSONResponse:
    """The original UI has no Stop button: deleting a session that trains stops its training (a queued one
    is dropped) and its evaluations, waits for their processes to end (killing one that does not stop in
    time), then deletes the folder. Nothing of any other session is touched."""
    if not store.exists(session_id):
        raise SessionNotFound(session_id)
    jobs = getattr(request.app.state, "jobs", None)  # None: an app run without its lifespan
    with _no_training(jobs, session_id, caller.name) as was_training:
        if not evaluations_of(request.app.state).cancel((caller.name, session_id)):
            raise Conflict(f"the evaluation of session {session_id!r} did not end: try again in a moment")
        store.delete(session_id)
    stopped = " (its training was stopped first)" if was_training else ""
    return ok(message=f"session {session_id!r} deleted{stopped}")


@contextlib.contextmanager
def _no_training(jobs: JobManager | None, session_id: str, user: str | None) -> Iterator[bool]:
    """:meth:`JobManager.retired` (StillRunning as a 409); yields whether the session was training."""
    if jobs is None:
        yield False
        return
    was_training = jobs.is_active(session_id, user)
    try:
        with jobs.retired(session_id, user):
            yield was_training
    except StillRunning as exc:
        raise Conflict(str(exc)) from None


def _existing(store: SessionStore, session_id: str) -> None:
    store.read(session_id, "model_history")  # SessionNotFound (404) for an unknown session


@router.post("/write_env_params", summary="Write env_params.json", response_model=EnvParamsResponse)
def write_env_params(store: Store, body: EnvParamsRequest) -> SafeJSONResponse:
    _existing(store, body.session_id)
    env = EnvParams(**params_of(body))
    stored, agent = store.write_car(body.session_id, env, body.model_configuration)
    if agent is None:
        return ok(message="env_params.json written", env_params=stored)
    return ok(message=f"env_params.json written, and agent_params.json: the {env.action_space} car's network "
              f"is {agent['model_configuration']}", env_params=stored, agent_params=agent)


@router.post("/write_agent_params", summary="Write agent_params.json and start a new model",
             response_model=ModelHistoryResponse)
@router.post("/write_agent_parameters", summary="Write agent_params.json (the original's other name)",
             response_model=ModelHistoryResponse)
def write_agent_params(store: Store, body: AgentParamsRequest) -> SafeJSONResponse:
    _existing(store, body.session_id)
    # Checked by the request model, but for the network's inputs and outputs: the store checks them against
    # the session's car (validating here would check them against the classic car's).
    history = store.write_agent_params(body.session_id, AgentParams.model_construct(**params_of(body)))
    return ok(last_created=history.get("last_created", {}), last_trained=history.get("last_trained", {}))


# The reward-checking handlers are async: a check waits for its slot without holding a pool thread
# (check_reward), and their file work goes to the thread pool like any plain handler's.
@router.post("/write_training_params", summary="Check the reward function and write training_params.json",
             response_model=TrainingParamsResponse, responses=BUSY)
async def write_training_params(caller: CurrentCaller, store: Store, body: TrainingParamsRequest
                                ) -> SafeJSONResponse:
    await asyncio.to_thread(_existing, store, body.session_id)
    await check_reward(body.reward_function, caller.name)
    params = TrainingParams.model_validate(params_of(body), context=REWARD_CHECKED)
    switch = await asyncio.to_thread(algorithm_switch, store, body.session_id, params.learning_algorithm)
    stored = await asyncio.to_thread(store.write_training_params, body.session_id, params)
    message = "training_params.json written" + (f"; {switch}" if switch else "")
    return ok(message=message, training_params=stored)


def algorithm_switch(store: SessionStore, session_id: str, algorithm: str) -> str | None:
    """What changing a trained session's learning algorithm to ``algorithm`` means, or None when it does
    not change it (or the session has no model yet)."""
    was = store.trained_algorithm(session_id)
    if was is None or was == algorithm:
        return None
    return (f"learning_algorithm changes from {was} to {algorithm}: the next training starts a new "
            f"{algorithm} model (the {was} model, its metrics and checkpoint are kept until then)")


@router.post("/write_reward_fn", summary="Check and replace only the reward function",
             response_model=TrainingParamsResponse, responses=BUSY)
async def write_reward_fn(caller: CurrentCaller, store: Store, body: RewardFunctionRequest
                          ) -> SafeJSONResponse:
    await asyncio.to_thread(_existing, store, body.session_id)
    await check_reward(body.reward_function, caller.name)

    def replace_reward() -> dict[str, Any]:
        current = store.read(body.session_id, "training_params")
        params = TrainingParams.model_validate({**current, "reward_function": body.reward_function},
                                               context=REWARD_CHECKED)
        return store.write_training_params(body.session_id, params)

    return ok(message="reward function written", training_params=await asyncio.to_thread(replace_reward))


@router.post("/check_reward_fn", summary="Check a reward function without saving it (errors name its line)",
             response_model=MessageResponse, responses=BUSY)
async def check_reward_fn(caller: CurrentCaller, body: RewardCheckRequest) -> SafeJSONResponse:
    await check_reward(body.reward_function, caller.name)
    TrainingParams.model_validate({"reward_function": body.reward_function}, context=REWARD_CHECKED)
    return ok(message="the reward function is valid: it ran on sample cars and returned numbers")


@router.get("/whoami", summary="Who the token belongs to (the web lab's sign-in check)",
            response_model=WhoAmIResponse)
async def whoami(caller: CurrentCaller) -> SafeJSONResponse:
    return ok(user=caller.name, owner=caller.is_owner)


@router.get("/get_all_params", summary="Every parameter and metric of a session",
            response_model=AllParamsResponse)
def get_all_params(store: Store, session_id: SessionId) -> EncodedJSONResponse:
    # ok(**store.all_params(...)) as bytes: the documents' encodings are cached (the session page polls it)
    return EncodedJSONResponse(b'{"status":200,' + store.all_params_json(session_id)[1:])


@router.get("/get_all_sessions", summary="Every session's parameters and metrics, by session id",
            response_model=dict[str, SessionParams])
def get_all_sessions(store: Store) -> EncodedJSONResponse:
    return EncodedJSONResponse(store.all_sessions_json())


@router.get("/get_all_envs", summary="The environments on offer")
@router.post("/get_all_envs", summary="The environments on offer", operation_id="post_get_all_envs")
async def get_all_envs() -> list[dict[str, Any]]:
    return ENVIRONMENTS


@router.get("/get_all_tracks", summary="The training tracks' file names")
@router.post("/get_all_tracks", summary="The training tracks' file names", operation_id="post_get_all_tracks")
async def get_all_tracks() -> list[str]:
    return [name for name, (mode, _) in TRACK_FILES.items() if mode == "training"]


class TrackInfoModel(BaseModel):
    """One built-in track of ``GET /tracks`` (:class:`rewards_api.envs.catalogue.TrackInfo`)."""

    name: str = Field(description="The track's own name: training-1, evaluation-1, serpent...")
    title: str = Field(description="A name to show: Track 1, Evaluation track 1, Serpent...")
    description: str
    difficulty: str = Field(description="beginner, intermediate, advanced or expert")
    mode: str = Field(description="training, or evaluation: held out from training")
    track: str = Field(description="What to ask for it with, with its mode: env track=, /evaluate track_num, "
                                   "the CLI's --track")
    size: list[int] = Field(description="Image [width, height], pixels")
    width_px: float = Field(description="Width of the asphalt, pixels (1 px = 1 cm)")
    length_m: float = Field(description="Lap length along the centre line, metres")
    tightest_bend_px: float = Field(description="Radius of the tightest bend of the centre line, pixels")
    reference_lap_time: float = Field(description="Fastest lap the racing car's physics allows (the faster "
                                                  "of the centre line and a racing line) from a standing "
                                                  "start, seconds")


class TrackCatalogueResponse(BaseModel):
    status: int = 200
    difficulties: list[str] = Field(description="The difficulties, easiest first")
    random: str = Field(description="How to ask for a random track, with a difficulty")
    tracks: list[TrackInfoModel]


@router.get("/tracks", summary="Every built-in track: difficulty, size, length and reference lap time",
            response_model=TrackCatalogueResponse)
def get_track_catalogue() -> SafeJSONResponse:
    return ok(**catalogue_json())


@router.get("/tracks/{name}", summary="A track's picture (PNG)", response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
def get_track_png(name: str) -> Response:
    pictures = [*TRACK_FILES, *(f"{track}.png" for track in ALL_NAMED_TRACKS)]
    if name not in pictures:
        raise HTTPException(404, f"there is no track {name!r}: tracks are {', '.join(pictures)}")
    return Response(_track_picture(name), media_type="image/png",
                    headers={"Cache-Control": "public, max-age=3600"})


@functools.lru_cache(maxsize=len(TRACK_FILES) + len(ALL_NAMED_TRACKS))
def _track_picture(name: str) -> bytes:
    """A built-in track's PNG, encoded once (0.2-0.8 s each): every student's wizard shows all of them.
    ``name`` is one of TRACK_FILES or a named track's name with ``.png``."""
    if name in TRACK_FILES:
        mode, number = TRACK_FILES[name]
        return track_png(builtin_track(mode, number))
    return track_png(named_track(name.removesuffix(".png")))


def _evaluation_target(mode: str, track_num: int | str, num_trials: int) -> tuple[str, Track]:
    if mode not in ("training", "evaluation"):
        raise ParameterError("mode", mode, "use 'training' or 'evaluation'")
    try:
        track = get_track(int(track_num) if str(track_num).isdigit() else track_num, mode)
    except (ValueError, TypeError) as exc:
        raise ParameterError("track_num", track_num, str(exc)) from None
    if not 1 <= int(num_trials) <= 100:
        raise ParameterError("num_trials", num_trials, "use a whole number from 1 to 100")
    return mode, track


async def _evaluate(request: Request, caller: Caller, store: SessionStore, body: EvaluateRequest
                    ) -> StreamingResponse:
    everything = await asyncio.to_thread(store.all_params, body.session_id)  # 404 before any other work
    # Off the event loop: a random:SEED track is generated (~12 ms).
    mode, track = await asyncio.to_thread(_evaluation_target, body.mode, body.track_num, body.num_trials)
    fps = float(everything["env_params"].get("car_speed", 20))
    key = str(body.track_num)
    # Registered until its replay ends, so that deleting the session ends both (see delete_session).
    evaluations, session = evaluations_of(request.app.state), (caller.name, body.session_id)
    run = evaluations.begin(session)
    try:
        done = await EVALUATIONS.run(caller.name, run_evaluation, store.home, body.session_id, mode, key,
                                     body.num_trials, run=run)
    except EvaluationFailed as exc:
        evaluations.finish(session, run)
        raise HTTPException(exc.status, str(exc)) from None
    except BaseException:
        evaluations.finish(session, run)
        raise
    label = f"{mode} track {key}"
    frames = paced(replay_frames(track, done.poses, label), fps)
    return mjpeg_response(until_cancelled(frames, run, lambda: evaluations.finish(session, run)))


@router.post("/evaluate/", summary="Evaluate the best model (JSON body); streams the trials as MJPEG",
             response_class=StreamingResponse, responses={200: {"content": {MJPEG_MEDIA_TYPE: {}}}})
@router.post("/evaluate", summary="Evaluate the best model (JSON body, without the trailing slash)",
             operation_id="evaluate_post_without_slash", response_class=StreamingResponse,
             responses={200: {"content": {MJPEG_MEDIA_TYPE: {}}}})
async def evaluate_post(request: Request, caller: CurrentCaller, store: Store, body: EvaluateRequest
                        ) -> StreamingResponse:
    return await _evaluate(request, caller, store, body)


@router.get("/evaluate", summary="Evaluate the best model (query); streams the trials as MJPEG",
            response_class=StreamingResponse, responses={200: {"content": {MJPEG_MEDIA_TYPE: {}}}})
async def evaluate_get(request: Request, caller: CurrentCaller, store: Store, session_id: SessionId,
                       mode: str = "training", track_num: str = "1", num_trials: int = 5
                       ) -> StreamingResponse:
    body = EvaluateRequest(session_id=session_id, mode=mode, track_num=track_num, num_trials=num_trials)
    return await _evaluate(request, caller, store, body)


@router.get("/final_eval_score", summary="Sum over evaluated tracks of record / num_trials",
            response_model=FinalScoreResponse)
def get_final_eval_score(store: Store, session_id: SessionId) -> SafeJSONResponse:
    return ok(score=final_eval_score(store.read(session_id, "evaluation_metrics")))
