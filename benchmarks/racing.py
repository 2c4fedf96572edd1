"""Racing on this machine: reference laps, simulator speed of each car, and what a reward function changes.

    .venv/bin/python benchmarks/racing.py [--seconds 60] [--seeds 1] [--skip-training] [--env-seconds 4]

Prints
  1. the reference lap time of every built-in track (the fastest lap the physics allows, from rest);
  2. vector-env steps/s of each car (classic, discrete, continuous), 256 cars, the default reward given as
     Python source (as users give it), in one process and in two at once (one per core);
  3. for two reward functions, a ``discrete``-car session with the defaults a learner gets (the original
     UI's hyper-parameters, 700 episodes, the car's default network and actions) trained with DQN on
     training track 1 (at most ``--seconds``), then evaluated (5 greedy trials) on the held-out evaluation
     track, which it never saw: laps, best and mean lap time, and each lap against the reference lap from
     its own start.
     Goal: the DeepRacer-style reward laps in at least 4 of 5 trials within 1.3x the reference;
     stay-alive is visibly slower.

Everything runs through the product's own code: the session store, the parameters' checks, the trainer
and the evaluator, as ``rewards-api train`` and ``rewards-api evaluate`` do.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STAY_ALIVE = '''def reward_function(params):
    """+1 for every step on the track."""
    return 1.0 if params["is_alive"] else 0.0
'''
DEEPRACER_STYLE = '''def reward_function(params):
    """Pay for speed (the progress made in the step), less the further from the centre line."""
    if not params["is_alive"]:
        return 0.0
    half_width = params["track_width"] / 2
    centred = 1.0 - (params["distance_from_center"] / half_width) ** 2
    return params["speed"] * max(centred, 0.2)
'''
REWARDS = {"stay alive": STAY_ALIVE, "DeepRacer-style (speed)": DEEPRACER_STYLE}
GOAL_RATIO = 1.3
NUM_CARS = 256


def reference_laps() -> None:
    from rewards_api.envs.reference import reference_lap_time
    from rewards_api.envs.tracks import builtin_tracks

    print("1. Reference laps (racing car, from rest at the start line)")
    print(f"   {'track':<16}{'difficulty':<14}{'width px':>9}{'length m':>10}{'reference s':>13}")
    for track in builtin_tracks():
        difficulty = getattr(track, "difficulty", "") or ""
        print(f"   {track.name:<16}{difficulty:<14}{track.width:>9.0f}{track.length / 100:>10.1f}"
              f"{reference_lap_time(track):>13.2f}")


def _env_rate(space: str, seconds: float, seed: int) -> float:
    import gymnasium as gym

    import rewards_api  # noqa: F401  (registers the env)
    from rewards_api.envs.reward import DEFAULT_REWARD_SOURCE

    env = gym.make_vec("rewards/CarRace-v0", num_envs=NUM_CARS, vectorization_mode="vector_entry_point",
                       action_space=space, reward_function=DEFAULT_REWARD_SOURCE, random_start=True,
                       autoreset_mode="SameStep")
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    straight = {"classic": [2], "discrete": [2, 7, 12]}.get(space)

    def actions() -> np.ndarray:
        if space == "continuous":  # mostly small steering, any speed
            return np.stack([rng.normal(0.0, 8.0, NUM_CARS), rng.uniform(0.5, 4.0, NUM_CARS)], axis=1)
        chosen = rng.choice(straight, NUM_CARS)  # mostly straight on, at the car's speeds
        other = rng.integers(0, env.single_action_space.n, NUM_CARS)
        return np.where(rng.random(NUM_CARS) < 0.3, other, chosen)

    for _ in range(20):
        env.step(actions())
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        env.step(actions())
        steps += NUM_CARS
    return steps / (time.perf_counter() - started)


def _rate_worker(space: str, seconds: float, seed: int, results: multiprocessing.Queue) -> None:
    results.put(_env_rate(space, seconds, seed))


def env_speeds(seconds: float) -> None:
    print(f"\n2. Vector env steps/s, {NUM_CARS} cars, the default reward as Python source")
    print(f"   {'car':<12}{'1 process':>12}{'2 processes':>14}")
    context = multiprocessing.get_context("spawn")
    for space in ("classic", "discrete", "continuous"):
        one = _env_rate(space, seconds, 0)
        results = context.Queue()
        workers = [context.Process(target=_rate_worker, args=(space, seconds, seed, results))
                   for seed in (1, 2)]
        for worker in workers:
            worker.start()
        both = sum(results.get() for _ in workers)
        for worker in workers:
            worker.join()
        print(f"   {space:<12}{one:>12,.0f}{both:>14,.0f}")


def train_and_evaluate(name: str, source: str, seconds: float, seed: int) -> dict:
    from rewards_api.envs.reference import reference_lap_time
    from rewards_api.envs.tracks import get_track
    from rewards_api.params import AgentParams, EnvParams, TrainingParams, default_model_configuration
    from rewards_api.runs.evaluate import evaluate
    from rewards_api.runs.events import TrialFinished
    from rewards_api.runs.train import Trainer, TrainingOptions
    from rewards_api.store import SessionStore

    with tempfile.TemporaryDirectory() as home:
        store = SessionStore(Path(home))
        session = "racer"
        store.create(session)
        env = EnvParams(environment_world=1, action_space="discrete")
        store.write_env_params(session, env)
        # What a learner gets: the original UI's defaults (lr 0.01, mse, adam, gamma 0.9, epsilon 20,
        # 700 episodes) and the car's default network; the run ends after its episodes or the time limit.
        agent = AgentParams.model_validate(
            {"model_configuration": default_model_configuration("discrete", env.actions)},
            context=env.shape().context())
        store.write_agent_params(session, agent)
        store.write_training_params(session, TrainingParams(reward_function=source))
        trainer = Trainer(store, session, TrainingOptions(max_seconds=seconds, seed=seed))
        started = time.perf_counter()
        finished = trainer.run()
        trained = time.perf_counter() - started
        trials: list[TrialFinished] = []
        metrics = evaluate(store, session, mode="evaluation", track=1,
                           on_event=lambda event: trials.append(event) if isinstance(event, TrialFinished)
                           else None)
    track = get_track(1, "evaluation")
    ratios = []
    for number, trial in enumerate(trials):
        start = number * track.num_waypoints // len(trials)
        ratios.append(trial.time / reference_lap_time(track, start) if trial.lap_complete else None)
    return {"name": name, "episodes": finished.episodes, "steps": finished.steps, "trained": trained,
            "metrics": metrics, "ratios": ratios}


def training(seconds: float, seeds: int) -> None:
    print(f"\n3. DQN on the discrete car, the session defaults, at most {seconds:g} s on training track 1; 5 "
          "trials on the unseen evaluation track")
    print(f"   {'reward':<26}{'seed':>5}{'episodes':>10}{'trained s':>10}{'steps/s':>9}{'laps':>6}"
          f"{'best s':>8}{'mean s':>8}{'best/ref':>10}  laps within {GOAL_RATIO}x the reference: "
          "each trial's lap / reference")
    for name, source in REWARDS.items():
        for seed in range(seeds):
            result = train_and_evaluate(name, source, seconds, seed)
            m = result["metrics"]
            within = sum(r is not None and r <= GOAL_RATIO for r in result["ratios"])
            shown = ", ".join("off" if r is None else f"{r:.2f}" for r in result["ratios"])
            best = "-" if m.get("best_lap_time") is None else f"{m['best_lap_time']:.2f}"
            mean = "-" if m.get("mean_lap_time") is None else f"{m['mean_lap_time']:.2f}"
            ratio = "-" if m.get("best_lap_ratio") is None else f"{m['best_lap_ratio']:.2f}"
            rate = result["steps"] / result["trained"]
            print(f"   {name:<26}{seed:>5}{result['episodes']:>10}{result['trained']:>10.1f}{rate:>9,.0f}"
                  f"{m['laps_completed']:>4}/{m['num_trials']}{best:>8}{mean:>8}{ratio:>10}  "
                  f"{within}/{m['num_trials']}: {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="training time per reward (default 60)")
    parser.add_argument("--seeds", type=int, default=3, help="trainings per reward (default 3)")
    parser.add_argument("--env-seconds", type=float, default=4.0, help="seconds per env measurement")
    parser.add_argument("--skip-training", action="store_true", help="only the tracks and the env speeds")
    args = parser.parse_args()
    reference_laps()
    env_speeds(args.env_seconds)
    if not args.skip_training:
        training(args.seconds, args.seeds)


if __name__ == "__main__":
    main()
