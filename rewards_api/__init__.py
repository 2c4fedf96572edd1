"""rewards: a local, fast lab for learning reinforcement learning by writing reward functions.

Importing the simulator (``rewards_api.envs`` or any module in it) registers the Gymnasium environment
``rewards/CarRace-v0``; ``rewards_api.ENV_ID`` and ``rewards_api.register_envs`` import it on first use.
The package itself imports nothing heavy: gymnasium and numpy take ~0.25 s, which commands that run no
simulation (``rewards-api --help``, ``sessions``) should not wait for.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__version__ = "0.2.0"

__all__ = ["ENV_ID", "__version__", "register_envs"]


class _Package(types.ModuleType):
    """This package's module: registers the environment once its ``envs`` subpackage is imported.

    The import system sets ``rewards_api.envs`` when that subpackage has run, whichever module imported
    it (``from rewards_api.envs.car_race import ...`` included), so every ``gym.make(ENV_ID)`` finds it.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "envs" and isinstance(value, types.ModuleType):
            value.register_envs()

    def __getattr__(self, name: str) -> Any:
        if name in ("ENV_ID", "register_envs"):
            from . import envs

            return getattr(envs, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


sys.modules[__name__].__class__ = _Package
