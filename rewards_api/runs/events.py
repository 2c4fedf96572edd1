"""What a run tells its consumers (the CLI's progress bar, the server's streams).

Events are small frozen dataclasses; ``to_dict()`` gives a JSON-ready dict with a ``kind`` field, so a
worker process can send them over a pipe and a server can relay them as Server-Sent Events.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from ..scores import clamp

_EXACT_INTS = 2.0**53  # whole floats beyond this print as floats: not as 309-digit ints


def score_value(value: float) -> float | int:
    """A score as the session files show it: whole numbers as ints (as the original wrote them),
    others rounded to 4 decimals; always finite (a reward of 1e308 a step sums to infinity: that is the
    largest float instead, see :func:`rewards_api.scores.clamp`)."""
    rounded = round(clamp(value), 4)
    return int(rounded) if rounded.is_integer() and abs(rounded) < _EXACT_INTS else rounded


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class TrainingStarted(Event):
    """The run is set up (a resumed run starts at its checkpoint's counters) and about to step."""

    kind: ClassVar[str] = "started"
    episode: int
    episodes: int  # the episodes this run trains up to
    steps: int
    record: float | None
    layers: list[list[int]]
    algorithm: str = "dqn"  # the session's learning_algorithm
    start: str = "fresh"  # fresh, warm or resumed (see rewards_api.runs.train)
    message: str | None = None  # why a new model started, when the session had one for another algorithm


@dataclass(frozen=True)
class EpisodeFinished(Event):
    """A car finished an episode (crashed, completed a lap, or ran out of steps)."""

    kind: ClassVar[str] = "episode"
    episode: int  # 1-based count of episodes finished in this session's training
    score: float
    record: float
    mean_score: float
    epsilon: float | None  # DQN's exploration rate; None for PPO, which explores by sampling its policy
    steps: int  # environment steps so far, all cars together
    elapsed: float  # seconds of this run
    lap_complete: bool
    progress: float  # percent of the lap driven in this episode
    track: str


@dataclass(frozen=True)
class FrameReady(Event):
    """A JPEG picture of a training car, produced because a consumer asked for one."""

    kind: ClassVar[str] = "frame"
    jpeg: bytes = field(repr=False)
    episode: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "episode": self.episode, "score": self.score, "bytes": len(self.jpeg)}


@dataclass(frozen=True)
class TrainingFinished(Event):
    """The run ended: its episodes are done, or it was stopped. What it learned is saved."""

    kind: ClassVar[str] = "finished"
    episodes: int
    record: float | None  # None when no episode finished
    steps: int
    elapsed: float
    stopped: bool


@dataclass(frozen=True)
class TrainingFailed(Event):
    """The run could not go on (for example the reward function raised). What it learned is saved."""

    kind: ClassVar[str] = "failed"
    message: str
    episodes: int
    steps: int


@dataclass(frozen=True)
class TrialFinished(Event):
    """One evaluation trial ended."""

    kind: ClassVar[str] = "trial"
    trial: int
    score: float
    lap_complete: bool
    progress: float
    steps: int
    time: float | None = None  # simulated seconds driven (the lap time when lap_complete); None: not timed
    offtrack: bool | None = None  # the trial ended by leaving the track; None: not known
