"""``import rewards_api`` registers rewards/CarRace-v0 (SPEC), without loading Gymnasium itself."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("program", [
    # rewards_api first: Gymnasium is not loaded by it, and registers the car race once it is imported.
    "import sys, rewards_api\nassert 'gymnasium' not in sys.modules\nimport gymnasium as gym\n"
    "print(gym.make('rewards/CarRace-v0', track=2).unwrapped.track.name)",
    # Gymnasium first: registered at once.
    "import gymnasium as gym, rewards_api\n"
    "print(gym.make('rewards/CarRace-v0', track=2).unwrapped.track.name)",
    # Only the simulator's own modules.
    "import rewards_api.envs.car_race, gymnasium as gym\n"
    "print(gym.make_vec('rewards/CarRace-v0', num_envs=2, vectorization_mode='vector_entry_point',"
    " track=2).track.name)",
])
def test_the_car_race_is_registered_whatever_is_imported_first(program: str) -> None:
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "training-2"
