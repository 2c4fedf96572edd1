"""The Gymnasium id of the car race and its registration (imports Gymnasium only when registering)."""

from __future__ import annotations

ENV_ID = "rewards/CarRace-v0"


def register_envs() -> None:
    """Register ``rewards/CarRace-v0`` (single and native vector entry points) with Gymnasium."""
    import gymnasium as gym

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
