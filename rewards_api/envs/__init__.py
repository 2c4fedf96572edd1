"""The car-race simulator: tracks, physics, reward functions and rendering.

Importing it loads neither Gymnasium nor the simulator: ``rewards/CarRace-v0`` is registered by the
package (:mod:`rewards_api`) as soon as Gymnasium is imported.
"""

from __future__ import annotations

from ..registration import ENV_ID, register_envs

__all__ = ["ENV_ID", "register_envs"]
