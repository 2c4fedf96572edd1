"""rewards: a local, fast lab for learning reinforcement learning by writing reward functions.

Importing the package registers the Gymnasium environment ``rewards/CarRace-v0``.
"""

from __future__ import annotations

from .envs import ENV_ID, register_envs

__version__ = "0.2.0"

register_envs()

__all__ = ["ENV_ID", "__version__", "register_envs"]
