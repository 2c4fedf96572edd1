"""The car-race simulator: tracks, physics, reward functions and rendering."""

from __future__ import annotations

import gymnasium as gym

ENV_ID = "rewards/CarRace-v0"


def register_envs() -> None:
    """Register ``rewards/CarRace-v0`` (single and native vector entry points) with Gymnasium."""
    if ENV_ID in gym.registry:
        return
    gym.register(
        id=ENV_ID,
        entry_point="rewards_api.envs.car_race:CarRaceEnv",
        vector_entry_point="rewards_api.envs.car_race:CarRaceVectorEnv",
        # The step limit is built in (and scales with the track), not a TimeLimit wrapper.
        max_episode_steps=None,
        disable_env_checker=False,
    )


__all__ = ["ENV_ID", "register_envs"]
