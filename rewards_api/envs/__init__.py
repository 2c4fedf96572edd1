"""The car-race simulator: tracks, physics, reward functions and rendering."""

from __future__ import annotations

from ..registration import ENV_ID, register_envs

register_envs()

__all__ = ["ENV_ID", "register_envs"]
