"""Request bodies of the original API: a session id plus the parameters (``rewards_api.params``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..params import AgentParams, EnvParams, ParameterError, TrainingParams, stored_model_configuration
from ..store import validate_session_id


def check_session_id(value: Any) -> str:
    """A valid session id, or a ParameterError naming ``session_id`` (a 422)."""
    try:
        return validate_session_id(value)
    except ValueError as exc:
        raise ParameterError("session_id", value, "use 1-64 letters, digits or underscores") from exc


class SessionRequest(BaseModel):
    session_id: str

    @field_validator("session_id", mode="before")
    @classmethod
    def _check_session_id(cls, value: Any) -> str:
        return check_session_id(value)


def network_form(value: Any) -> Any:
    """A ``model_configuration`` whose form is checked here; its inputs and outputs are checked against the
    session's car by the store, so that the message names that car's numbers."""
    return stored_model_configuration(value, any_car=False)


class EnvParamsRequest(EnvParams, SessionRequest):
    """``POST /write_env_params``: the original four keys, and (optional) the car. A new car's network
    follows it (see ``SessionStore.write_car``); ``model_configuration``, when given, is the network to
    write to agent_params.json with it (it is not a key of env_params.json)."""

    model_configuration: str | list[list[int]] | None = Field(
        None, description="Optional: the network for the car these env params choose, written to "
        "agent_params.json with them (first in: the car's observation, last out: its actions). Without it "
        "a network that fits is kept, a default one follows the car, and one that does not fit is refused.")

    @field_validator("model_configuration", mode="before")
    @classmethod
    def _check_network(cls, value: Any) -> Any:
        return None if value is None else network_form(value)


class AgentParamsRequest(AgentParams, SessionRequest):
    """``POST /write_agent_params``: the network is checked against the session's car by the store."""

    @field_validator("model_configuration", mode="before")
    @classmethod
    def _check_layers(cls, value: Any, info: Any) -> Any:
        return network_form(value)


class TrainingParamsRequest(SessionRequest):
    """``POST /write_training_params``: the reward function is checked in a child process, not here."""

    model_config = ConfigDict(extra="ignore")
    learning_algorithm: str = "dqn"
    enable_wandb: bool | int | str = False
    reward_function: str

    # Checked here, as TrainingParams checks them, so that a bad value is a 422 that names it (not a 500
    # from TrainingParams after the reward check), and no child process is started for it.
    @field_validator("learning_algorithm", mode="before")
    @classmethod
    def _check_algorithm(cls, value: Any) -> str:
        return TrainingParams._check_algorithm(value)

    @field_validator("enable_wandb", mode="before")
    @classmethod
    def _check_wandb(cls, value: Any) -> bool:
        return TrainingParams._check_wandb(value)


class RewardFunctionRequest(SessionRequest):
    """``POST /write_reward_fn``."""

    reward_function: str


class RewardCheckRequest(BaseModel):
    """``POST /check_reward_fn``: a reward function to check before any session holds it."""

    reward_function: str


class WhoAmIResponse(BaseModel):
    status: int = 200
    user: str | None = Field(description="The user the token belongs to; null for the server's owner.")
    owner: bool = Field(description="Whether the caller is the server's owner (an admin).")


def params_of(request: BaseModel) -> dict[str, Any]:
    """The parameters of a request, without its session id."""
    return request.model_dump(exclude={"session_id"})


class EvaluateRequest(SessionRequest):
    """``POST /evaluate/``: evaluate the session's best model on one track."""

    mode: str = "training"
    track_num: int | str = 1
    num_trials: int = 5


# ----- responses (they document the API in /docs; handlers return JSON directly, so long score lists
# are not walked by FastAPI's encoder) --------------------------------------------------------------------
class StatusResponse(BaseModel):
    """Every JSON object answer carries the HTTP status, as the original API did."""

    status: int = 200


class MessageResponse(StatusResponse):
    message: str


class ParameterProblem(BaseModel):
    """One refused input: which parameter, why, and (for a reward function) the line."""

    parameter: str
    message: str
    line: int | None = None


class ErrorResponse(MessageResponse):
    """A 4xx or 5xx answer: ``message`` says what is wrong and how to fix it."""

    detail: str
    errors: list[ParameterProblem] | None = None


class DirPaths(BaseModel):
    session_root_dir: str
    saved_models_dir: str


class JsonPaths(BaseModel):
    training_metrics: str
    evaluation_metrics: str
    model_history: str


class CreateSessionResponse(StatusResponse):
    session_id: str
    session_creation_date: str  # YYYY-MM-DD
    session_creation_time: str  # HH:MM:SS.ffffff
    dir_paths: DirPaths
    json_paths: JsonPaths


class EnvParamsResponse(MessageResponse):
    env_params: dict[str, Any]
    agent_params: dict[str, Any] | None = Field(
        None, description="Present when agent_params.json was written too: the network followed a new car.")


class ModelHistoryResponse(StatusResponse):
    """``write_agent_params``: the new model's ``last_created`` and the last training's ``last_trained``."""

    last_created: dict[str, Any]
    last_trained: dict[str, Any]


class TrainingParamsResponse(MessageResponse):
    training_params: dict[str, Any]


class SessionParams(BaseModel):
    env_params: dict[str, Any]
    agent_params: dict[str, Any]
    training_params: dict[str, Any]
    training_metrics: dict[str, Any]
    evaluation_metrics: dict[str, Any]


class AllParamsResponse(SessionParams, StatusResponse):
    """``get_all_params``: the five session files ({} for one not written yet)."""


class FinalScoreResponse(StatusResponse):
    score: float


class JobResponse(StatusResponse):
    """One session's training job (see ``rewards_api.runs.jobs.JobStatus``)."""

    session_id: str
    state: str  # queued, running, finished, failed or stopped
    episode: int
    episodes: int
    record: float | None
    last_score: float | None
    epsilon: float | None
    steps: int
    error: str | None
    queued_at: float | None
    started_at: float | None
    finished_at: float | None
    pid: int | None
    layers: list[list[int]] | None
    user: str | None = None  # whose session: null for the server's owner


class JobsResponse(StatusResponse):
    jobs: list[dict[str, Any]]


class StartResponse(StatusResponse):
    job: dict[str, Any]


class StopResponse(MessageResponse):
    job: dict[str, Any] | None


class Stamp(BaseModel):
    date: str  # YYYY-MM-DD
    time: str  # HH:MM:SS.ffffff


class ModelSummary(BaseModel):
    """The Q-network and its hyper-parameters (``gamma`` and ``epsilon`` as fractions)."""

    layers: list[list[int]]
    model_configuration: str | list[list[int]]  # as stored
    loss_fn: str
    optimizer: str
    learning_rate: float
    gamma: float
    epsilon: float
    num_episodes: int
    parameters: int  # weights + biases
    configured: bool  # False: agent_params.json not written yet, the defaults apply


class ModelCardResponse(StatusResponse):
    """``GET /model_info``: a session's model card (see ``rewards_api.cards.model_card``)."""

    session_id: str
    created: Stamp | None
    last_trained: Stamp | None
    model: ModelSummary
    trained_model: bool  # model.pth exists
    record: float | None
    episodes_trained: int
    last_mean_score: float | None
    environment: dict[str, Any]
    track: int
    evaluation: dict[str, dict[str, dict[str, Any] | None]]  # mode -> track -> metrics (None: not evaluated)
    lap_times: dict[str, dict[str, dict[str, Any] | None]]  # mode -> track -> lap figures (cards.lap_times)
    final_eval_score: float
    runs: list[dict[str, Any]]  # {date, time, start, track, episodes, record, steps, duration}


class ImportResponse(MessageResponse):
    """``POST /import``: the id the session was imported as."""

    session_id: str
