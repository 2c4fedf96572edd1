"""Imported once by the reward checks' fork server (see :mod:`rewards_api.server.reward_check`): the sandbox,
the limits, and the sample cars of every built-in track, so that each forked check starts with them ready."""

from __future__ import annotations

from ..envs import reward, samples
from ..runs import reward_limits

samples.check_samples()  # computed here once; every check forked from here inherits them

__all__ = ["reward", "reward_limits", "samples"]
