"""Imported by the training fork server (:mod:`rewards_api.runs.processes`) before it forks any worker.

Everything a training worker or an evaluation child would otherwise load after it starts: PyTorch and
``torch._dynamo`` (which ``torch.optim``'s optimizers import on first use), Gymnasium and the environment,
the trainer, the evaluator, the reward sandbox; and the built-in tracks' look-up grids and radar maps (those
measured already on this machine: :mod:`rewards_api.envs.map_cache`; a track not measured yet is measured
by the first child that needs it, which stores it for the next).

The fork server must hold no thread when it forks: OpenBLAS (loaded with NumPy) starts a thread per core
at load unless told otherwise, so its thread count, and OpenMP's and MKL's, are set to one before anything
loads them. A worker runs its tiny network on one thread anyway (``TrainingOptions.torch_threads``). Nothing
here runs a tensor operation: PyTorch's thread pools start on first use, in the worker.

A failure here must not stop the fork server (it would then fail every start): it is caught and logged,
and a worker then loads what is missing itself.
"""

from __future__ import annotations

import gc
import logging
import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"
log = logging.getLogger(__name__)


def _load() -> None:
    import torch
    import torch._dynamo  # noqa: F401  (the optimizers import it on their first use)

    from ..envs.radar import is_measured, radar_maps
    from ..envs.reference import reference_lap_time
    from ..envs.reward import DEFAULT_REWARD_SOURCE, compile_reward_source
    from ..envs.tracks import builtin_tracks
    from ..server import evaluation  # noqa: F401  (its child's code)
    from . import evaluate, jobs, train  # noqa: F401

    compile_reward_source(DEFAULT_REWARD_SOURCE)  # the sandbox's own first-use set-up
    for track in builtin_tracks():
        track.nearest_waypoint  # noqa: B018  (computed once here, inherited by every worker)
        if is_measured(track):
            radar_maps(track)
        reference_lap_time(track)  # its racing line: 0.2 s the first time on a machine, then from the cache


try:
    _load()
except Exception:
    log.exception("the training fork server could not preload everything; workers will load it")
# What was loaded lives as long as every child: out of the collector's sight, a child's collections do not
# walk (and so copy, page by page) the hundreds of thousands of objects it shares with the fork server.
gc.freeze()
