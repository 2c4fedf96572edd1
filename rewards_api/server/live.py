"""The live picture of a training: a demo car driving the session's track in real time under the current
policy, shared by every viewer of that session.

Training runs at full speed in its worker process and is never throttled by viewers; the worker sends
its newest weights to the server every half second. Here one producer per session steps a single car
with those weights (greedy, on the built-in +1 reward: no user code in the server), draws it in a worker
thread at ``car_speed`` frames per second, and publishes only the latest frame. Each viewer takes the
newest frame when it is ready for one, so a slow viewer skips frames instead of slowing anyone. When the
training ends the view shows a last frame and every stream ends; when the last viewer leaves, the view
stops drawing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..envs.render import render_jpeg
from ..params import AgentParams, EnvParams
from ..runs.jobs import JobKey, JobManager
from .streams import mjpeg_part

LIVE_QUALITY = 70
"""JPEG quality of live frames: a third smaller than 80, and hard to tell apart while the car moves."""
IDLE_GRACE = 2.0
"""Seconds a view keeps drawing after its last viewer left (a page reload reconnects at once)."""


class LiveView:
    """Frames of one session's training, produced once for all its viewers."""

    def __init__(self, jobs: JobManager, session_id: str, user: str | None = None) -> None:
        """Reads the session's files and may build its track's radar maps: make it off the event loop."""
        import torch  # loaded with the server, unless it was started with preload_workers off

        from ..agents.dqn import QNetwork
        from ..envs.car_race import CarRaceEnv
        from ..runs.train import action_bounds, observation_high

        # The server's only networks are these tiny ones: one thread, so that PyTorch's spinning worker
        # threads never take a core from a training.
        torch.set_num_threads(1)
        everything = jobs.store_of(user).all_params(session_id)
        env_params = EnvParams(**everything["env_params"])
        status = jobs.status(session_id, user)
        layers = status.layers if status and status.layers else None
        if layers is None:
            layers = AgentParams(**everything["agent_params"]).config().layers
        self.session_id = session_id
        self.user = user
        self.jobs = jobs
        self.fps = float(env_params.car_speed)
        self.env = CarRaceEnv(track=env_params.environment_world, mode="training", **env_params.car())
        bounds = action_bounds(env_params) or (None, None)
        self.network = QNetwork(layers, observation_high(env_params), *bounds)
        self._weights: Any = None
        self._observation, _ = self.env.reset(seed=0)
        self._laps = 0
        self._frame: bytes | None = None
        self._sequence = 0
        self._changed = asyncio.Event()
        self._ended = False
        self._task: asyncio.Task | None = None
        self._viewers = 0
        self._idle_since = 0.0

    @property
    def ended(self) -> bool:
        return self._ended

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._produce())

    def on_end(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (on the event loop) once the view has ended."""
        assert self._task is not None, "start the view first"
        self._task.add_done_callback(lambda _: callback())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _produce(self) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / max(self.fps, 1.0)
        deadline = loop.time()
        self._idle_since = loop.time()
        try:
            while True:
                if self._viewers == 0 and loop.time() - self._idle_since > IDLE_GRACE:
                    return  # nobody watches: draw nothing (the next viewer starts a new view)
                active = self.jobs.is_active(self.session_id, self.user)
                self._frame = await asyncio.to_thread(self._next_frame)
                self._publish()
                if not active:
                    return
                deadline += interval
                await asyncio.sleep(max(0.0, deadline - loop.time()))
        finally:
            self._ended = True
            self._publish()

    def _publish(self) -> None:
        self._sequence += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def _next_frame(self) -> bytes:
        """Drive the demo car one step with the newest weights, and draw it (in a worker thread)."""

        weights = self.jobs.latest_weights(self.session_id, self.user)
        if weights is not None and weights is not self._weights:
            self.network.load_state_dict(weights)
            self._weights = weights
        car = self.env.car
        # Until the worker's first weights arrive (it takes seconds to start) the car drives an untrained
        # network of the same shape: the policy training starts from.
        action = self.network.greedy_action(self._observation)
        self._observation, _, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            self._laps += int(info["lap_complete"])
            self._observation, _ = self.env.reset()
        status = self.jobs.status(self.session_id, self.user)
        hud: dict[str, Any] = {"training": status.state.value if status else "-"}
        if status is not None:
            hud.update({"episode": f"{status.episode} of {status.episodes}" if status.episodes else "-",
                        "last score": "-" if status.last_score is None else status.last_score,
                        "record": "-" if status.record is None else status.record,
                        "exploration": "-" if status.epsilon is None else f"{status.epsilon:.0%}"})
        hud["demo laps"] = self._laps
        hud["speed"] = f"{car.speed:.2f} m/s"
        hud["lap time"] = f"{car.time:.1f} s"
        return render_jpeg(self.env.track, car.x, car.y, car.heading_radians, car.radars, hud,
                           quality=LIVE_QUALITY)

    def expect_viewer(self) -> None:
        """Restart the idle clock: a viewer is about to attach (within the grace period)."""
        self._idle_since = asyncio.get_running_loop().time()

    async def parts(self) -> AsyncIterator[bytes]:
        """MJPEG parts for one viewer: the newest frame each time one is ready, until the view ends."""
        seen = -1
        self._viewers += 1
        try:
            while True:
                if self._frame is not None and self._sequence != seen:
                    seen = self._sequence
                    yield mjpeg_part(self._frame)
                if self._ended:
                    return
                await self._changed.wait()
        finally:
            self._viewers -= 1
            if not self._viewers:
                self._idle_since = asyncio.get_running_loop().time()


class LiveViews:
    """The live views of all sessions: one per session while it has viewers or trains."""

    def __init__(self, jobs: JobManager) -> None:
        self.jobs = jobs
        self._views: dict[JobKey, LiveView] = {}
        self._lock = asyncio.Lock()

    async def view(self, session_id: str, user: str | None = None) -> LiveView:
        """The session's live view, made (off the event loop) and started if it has none running."""
        async with self._lock:
            view = self._views.get((user, session_id))
            if view is None or view.ended:
                view = await asyncio.to_thread(LiveView, self.jobs, session_id, user)
                self._views[(user, session_id)] = view
                view.start()
                view.on_end(lambda key=(user, session_id), ended=view: self._forget(key, ended))
            view.expect_viewer()
            return view

    def _forget(self, key: JobKey, view: LiveView) -> None:
        """An ended view lets go of its network and track (its viewers hold it until they leave)."""
        if self._views.get(key) is view:
            del self._views[key]

    async def close(self) -> None:
        for view in list(self._views.values()):
            await view.stop()
        self._views.clear()
