"""Simulator throughput on this machine, one process: prints steps/s and frames/s.

    .venv/bin/python benchmarks/env_throughput.py [--seconds 5] [--num-envs 256]
        [--original-python PATH | --install-original]

Measures
  1. one env (``gymnasium.make``, wrappers included) with the default reward;
  2. the native vector env with N cars and the default reward given as *Python source* (as users give it);
  3. render + JPEG-encode frames/s at 800x700;
  4. the original engine (``rewards-envs`` 0.1.3 ``CarGame.step``), when an interpreter that has it is
     given (``--original-python``, ``$REWARDS_ORIGINAL_PYTHON``) or installed into ``.bench-original/``
     by ``--install-original``; it runs in that interpreter, in this same run, and the ratio is printed.

Actions are random (60 % straight, 20 % left, 20 % right), with resets whenever an episode ends.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import rewards_api
from rewards_api.envs.pilot import pilot_actions
from rewards_api.envs.render import encode_jpeg
from rewards_api.envs.reward import DEFAULT_REWARD_SOURCE

ROOT = Path(__file__).resolve().parent.parent
ORIGINAL_VENV = ROOT / ".bench-original"
ACTION_PROBS = (0.2, 0.2, 0.6)

ORIGINAL_SNIPPET = textwrap.dedent(
    """
    import os, sys, time, random
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    os.environ["PYGAME_HIDE_SUPPORT_PROMPT"] = "1"
    import contextlib, io
    with contextlib.redirect_stdout(io.StringIO()):
        from rewards_envs import CarConfig, CarGame
        game = CarGame(mode="training", track_num=1, config=CarConfig(render_mode="rgb_array"))
    seconds = float(sys.argv[1])
    rng = random.Random(0)
    one_hot = {0: [1, 0, 0, 0, 0, 0], 1: [0, 1, 0, 0, 0, 0], 2: [0, 0, 1, 0, 0, 0]}
    game.initialize()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        action = rng.choices((0, 1, 2), weights=(0.2, 0.2, 0.6))[0]
        _, _, alive, _ = game.step(one_hot[action])
        steps += 1
        if not alive:
            game.initialize()
    print(steps / (time.perf_counter() - start))
    """
)


def timed(seconds: float, step: callable) -> tuple[float, int]:
    """Call ``step()`` (which returns how many steps it made) for ``seconds``; return (rate, steps)."""
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        done += step()
    return done / elapsed, done


def single_env(seconds: float) -> tuple[float, float]:
    env = gym.make(rewards_api.ENV_ID, track=1)
    env.reset(seed=0)
    actions = np.random.default_rng(0).choice(3, size=1 << 16, p=ACTION_PROBS).tolist()
    state = {"i": 0, "episodes": 0}

    def step() -> int:
        for _ in range(1000):
            i = state["i"] = (state["i"] + 1) & 0xFFFF
            _, _, terminated, truncated, _ = env.step(actions[i])
            if terminated or truncated:
                env.reset()
                state["episodes"] += 1
        return 1000

    rate, steps = timed(seconds, step)
    return rate, steps / max(state["episodes"], 1)


def vector_env(seconds: float, num_envs: int, reward: str | None) -> float:
    env = gym.make_vec(rewards_api.ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point",
                       track=1, reward_function=reward)
    env.reset(seed=0)
    actions = np.random.default_rng(0).choice(3, size=(256, num_envs), p=ACTION_PROBS)
    state = {"i": 0}

    def step() -> int:
        for _ in range(20):
            state["i"] = (state["i"] + 1) % len(actions)
            env.step(actions[state["i"]])
        return 20 * num_envs

    return timed(seconds, step)[0]


def render_and_encode(seconds: float) -> tuple[float, float, int]:
    env = gym.make(rewards_api.ENV_ID, track=1, render_mode="rgb_array").unwrapped
    env.reset(seed=0)
    sizes: list[int] = []

    def frame() -> int:
        _, _, terminated, truncated, _ = env.step(int(pilot_actions(env.car)[0]))
        if terminated or truncated:
            env.reset()
        sizes.append(len(encode_jpeg(env.render())))
        return 1

    for _ in range(100):  # warm the sprite cache for every heading, as a long run would
        frame()
    fps, _ = timed(seconds, frame)
    render_only, _ = timed(min(seconds, 2.0), lambda: env.render() is not None)
    return fps, render_only, int(np.mean(sizes))


def original_python(args: argparse.Namespace) -> str | None:
    if args.original_python:
        return args.original_python
    if os.environ.get("REWARDS_ORIGINAL_PYTHON"):
        return os.environ["REWARDS_ORIGINAL_PYTHON"]
    candidate = ORIGINAL_VENV / "bin" / "python"
    if args.install_original and not candidate.exists():
        print(f"installing rewards-envs 0.1.3 into {ORIGINAL_VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(ORIGINAL_VENV)], check=True)
        packages = ["rewards-envs==0.1.3", "matplotlib"]  # its engine imports matplotlib undeclared
        subprocess.run([str(candidate), "-m", "pip", "install", "-q", *packages], check=True)
    return str(candidate) if candidate.exists() else None


def original_engine(python: str, seconds: float) -> float | None:
    result = subprocess.run([python, "-c", ORIGINAL_SNIPPET, str(seconds)], capture_output=True,
                            text=True, timeout=seconds + 120)
    if result.returncode != 0:
        print(f"  (the original engine did not run: {result.stderr.strip().splitlines()[-1:]})")
        return None
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    parser.add_argument("--num-envs", type=int, default=256, help="cars in the vector env")
    parser.add_argument("--original-python", help="a Python interpreter that has rewards-envs 0.1.3")
    parser.add_argument("--install-original", action="store_true",
                        help=f"install rewards-envs 0.1.3 into {ORIGINAL_VENV.name}/ to compare with it")
    args = parser.parse_args()

    print(f"rewards {rewards_api.__version__}  |  python {sys.version.split()[0]}  |  "
          f"numpy {np.__version__}  |  {os.cpu_count()} cores  |  one process\n")
    single, episode = single_env(args.seconds)
    print(f"single env, default reward           {single:>12,.0f} steps/s   (target >= 20,000; "
          f"mean episode {episode:.0f} steps)")
    vector = vector_env(args.seconds, args.num_envs, DEFAULT_REWARD_SOURCE)
    print(f"vector env N={args.num_envs}, reward as source   {vector:>12,.0f} steps/s   (target >= 200,000)")
    native = vector_env(args.seconds, args.num_envs, None)
    print(f"vector env N={args.num_envs}, built-in reward    {native:>12,.0f} steps/s")
    fps, render_only, jpeg = render_and_encode(args.seconds)
    print(f"render + JPEG encode, 800x700         {fps:>12,.0f} frames/s  (target >= 150; "
          f"render alone {render_only:,.0f}/s; {jpeg / 1024:.0f} KiB a frame)")

    python = original_python(args)
    if python is None:
        print("\noriginal engine: not measured (pass --install-original, or --original-python PATH)")
        return
    original = original_engine(python, args.seconds)
    if original:
        print(f"original CarGame.step (rewards-envs)  {original:>12,.0f} steps/s")
        print(f"\nratios: single env {single / original:,.0f}x the original engine, "
              f"vector env {vector / original:,.0f}x")


if __name__ == "__main__":
    main()
