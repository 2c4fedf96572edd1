"""Rewards on one scale, whatever the reward function's units: divided by the spread of the return.

A learner's reward may give 1 a step or 1,000,000 a step; the learning rate and the networks' first
values are made for returns of a few units. As Stable-Baselines3's ``VecNormalize`` does, each car's
discounted return so far (``return = gamma * return + reward``, back to 0 when its episode ends) feeds a
running estimate of the returns' mean and variance; rewards are divided by the returns' root mean square
(``sqrt(variance + mean^2)``; SB3 uses the standard deviation alone, which is near 0 for a reward that
is nearly constant, such as +1 a step at first, and would blow such rewards up), then clipped to
±``clip``. The estimate starts from the first steps (no prior, which would have a scale of its own), so
multiplying the reward function by any constant multiplies it by the same constant: the learner sees
the same numbers. The scores the user sees are never scaled.

The estimate is saved with the resume checkpoint; the cars' running returns are not (a run, resumed or
not, starts every car on a new episode).
"""

from __future__ import annotations

import numpy as np

CLIP = 10.0
"""Normalized rewards are clipped to [-CLIP, CLIP] (SB3's default)."""
TINY = 1e-300
"""The smallest scale divided by: a reward function that always returns 0 has none."""


class RewardNormalizer:
    """A running mean and variance of ``num_cars`` cars' discounted returns (Chan et al.'s parallel
    update, as SB3's ``RunningMeanStd``) and the rewards divided by their root mean square."""

    def __init__(self, num_cars: int, gamma: float, clip: float = CLIP) -> None:
        self.gamma = gamma
        self.clip = clip
        self.returns = np.zeros(num_cars)
        self.mean = 0.0
        self.var = 0.0
        self.count = 0.0

    def observe(self, rewards: np.ndarray, dones: np.ndarray, cars: slice = slice(None)) -> None:
        """One step of the cars ``cars`` (all by default): their returns grow by ``rewards`` and update the
        estimate; those whose episode ended (``dones``) start again from 0."""
        with np.errstate(over="ignore", invalid="ignore"):  # a return beyond the float range: see _update
            returns = self.returns[cars] * self.gamma + np.asarray(rewards, dtype=np.float64)
            self._update(returns)
        returns[np.asarray(dones, dtype=bool)] = 0.0
        self.returns[cars] = returns

    def _update(self, batch: np.ndarray) -> None:
        batch = batch[np.isfinite(batch)]  # a return beyond the float range would make the estimate NaN
        if not batch.size:
            return
        batch_mean, batch_var, n = float(batch.mean()), float(batch.var()), batch.size
        total = self.count + n
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * n + delta * delta * self.count * n / total
        new_var = m2 / total
        if np.isfinite(new_var):
            self.mean, self.var, self.count = self.mean + delta * n / total, new_var, total

    @property
    def scale(self) -> float:
        """What rewards are divided by: the returns' root mean square (1 before the first step)."""
        if not self.count:
            return 1.0
        with np.errstate(over="ignore"):
            return max(float(np.sqrt(self.var + self.mean * self.mean)), TINY)

    def normalize(self, rewards: np.ndarray) -> np.ndarray:
        """``rewards`` (any float array) divided by :attr:`scale` and clipped, as float32."""
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = np.asarray(rewards, dtype=np.float64) / self.scale
        return np.clip(np.nan_to_num(scaled, nan=0.0), -self.clip, self.clip).astype(np.float32)

    def state(self) -> dict:
        """The estimate, to continue it (:meth:`load_state`)."""
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state(self, state: dict) -> None:
        self.mean, self.var, self.count = float(state["mean"]), float(state["var"]), float(state["count"])
