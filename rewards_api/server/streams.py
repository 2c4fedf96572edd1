"""Live pictures for browsers: MJPEG (``multipart/x-mixed-replace``, usable as ``<img src>``) and
Server-Sent Events. Frames are drawn in worker threads so the event loop never waits on Pillow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from fastapi.responses import StreamingResponse

from ..envs.physics import STEPS_PER_SECOND
from ..envs.render import render_jpeg
from ..envs.tracks import Track

if TYPE_CHECKING:  # runs.evaluate loads PyTorch
    from ..runs.evaluate import CarPose

BOUNDARY = "frame"
MJPEG_MEDIA_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"


def mjpeg_part(jpeg: bytes) -> bytes:
    """One part of an MJPEG stream."""
    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
    return head + jpeg + b"\r\n"


def mjpeg_response(parts: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(parts, media_type=MJPEG_MEDIA_TYPE,
                             headers={"Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"})


def replay_frames(track: Track, trials: list[list[CarPose]], label: str) -> Iterator[bytes]:
    """JPEG frames of recorded trials, one per step, with a HUD."""
    for number, poses in enumerate(trials, start=1):
        for step, (x, y, heading, radars, score, progress, speed) in enumerate(poses):
            hud = {"evaluation": label, "trial": f"{number} of {len(trials)}", "step": step,
                   "score": score, "progress": f"{progress:.1f} %", "speed": f"{speed:.2f} m/s",
                   "lap time": f"{step / STEPS_PER_SECOND:.1f} s"}
            yield render_jpeg(track, x, y, heading, radars, hud)


async def paced(frames: Iterator[bytes], fps: float) -> AsyncIterator[bytes]:
    """MJPEG parts from a blocking frame iterator, at ``fps`` frames per second (real time)."""
    interval = 1.0 / max(fps, 1.0)
    loop = asyncio.get_running_loop()
    deadline = loop.time()
    done = object()
    while True:
        frame = await asyncio.to_thread(next, frames, done)
        if frame is done:
            return
        yield mjpeg_part(frame)
        deadline += interval
        await asyncio.sleep(max(0.0, deadline - loop.time()))
