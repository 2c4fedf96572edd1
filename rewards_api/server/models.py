"""Request bodies of the original API: a session id plus the parameters (``rewards_api.params``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from ..params import AgentParams, EnvParams, ParameterError
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


class EnvParamsRequest(EnvParams, SessionRequest):
    """``POST /write_env_params``."""


class AgentParamsRequest(AgentParams, SessionRequest):
    """``POST /write_agent_params``."""


class TrainingParamsRequest(SessionRequest):
    """``POST /write_training_params``: the reward function is checked in a child process, not here."""

    model_config = ConfigDict(extra="ignore")
    learning_algorithm: str = "dqn"
    enable_wandb: bool | int | str = False
    reward_function: str


class RewardFunctionRequest(SessionRequest):
    """``POST /write_reward_fn``."""

    reward_function: str


def params_of(request: BaseModel) -> dict[str, Any]:
    """The parameters of a request, without its session id."""
    return request.model_dump(exclude={"session_id"})


class EvaluateRequest(SessionRequest):
    """``POST /evaluate/``: evaluate the session's best model on one track."""

    mode: str = "training"
    track_num: int | str = 1
    num_trials: int = 5
