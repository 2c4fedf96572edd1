"""rewards: a local, fast lab for learning reinforcement learning by writing reward functions.

``import rewards_api`` registers the Gymnasium environment ``rewards/CarRace-v0``, without importing
Gymnasium itself (with NumPy, ~0.2 s that commands running no simulation, such as ``rewards-api --help``,
should not wait for): if Gymnasium is loaded already the environment is registered at once, otherwise as
soon as Gymnasium is imported (a post-import hook on ``sys.meta_path``), so ``gymnasium.make`` always finds
it. ``rewards_api.ENV_ID`` and ``rewards_api.register_envs`` load the simulator's package on first use.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from typing import Any

__version__ = "0.2.0"

__all__ = ["ENV_ID", "__version__", "register_envs"]


from .registration import ENV_ID, register_envs


class _RegisterAfterGymnasium(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when ``gymnasium`` is imported, wraps its loader so that the environment is
    registered right after Gymnasium's own code has run; then removes itself."""

    def find_spec(self, name: str, path: Any = None, target: Any = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if name != "gymnasium":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader

        class _Loader(importlib.abc.Loader):
            def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
                return loader.create_module(spec)

            def exec_module(self, module: Any) -> None:
                loader.exec_module(module)
                register_envs()

        spec.loader = _Loader()
        return spec


if "gymnasium" in sys.modules:
    register_envs()
elif not any(isinstance(finder, _RegisterAfterGymnasium) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterGymnasium())
