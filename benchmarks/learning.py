"""How fast the product learns to race, with the original UI's defaults. Prints figures.

    .venv/bin/python benchmarks/learning.py [--budget 120] [--multi-budget 120] [--cars 64]

1. A session with the original UI's defaults (track 1, model [[5, 9], [9, 3]], lr 0.01, mse, adam,
   gamma 0.9, epsilon 20, 700 episodes, +1 while alive) is trained with ``Trainer``, exactly as
   ``rewards-api train`` does. Every ``--check-every`` seconds of wall time the current greedy policy
   drives 5 evaluation trials on track 1 (trial 1 from the start line, the others spread round the
   lap); the figure is the wall time from the start of training until >= 4 of 5 trials complete a lap.
   Checking time is included: it is wall time.
2. A full run of the same defaults (700 episodes) with no checks: its wall time, its training
   throughput (environment steps per second, all cars together), and its saved model.pth evaluated the
   same way.
3. A third session trains on the three training tracks at once (``--tracks 1,2,3``) until its policy
   laps every training track in >= 4 of 5 trials (or ``--multi-budget`` seconds), then drives 5 trials
   on the evaluation track, which it has never seen.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import gymnasium as gym

from rewards_api.envs import ENV_ID
from rewards_api.params import AgentParams, EnvParams, TrainingParams
from rewards_api.runs.evaluate import greedy_trials, load_best_model
from rewards_api.runs.events import EpisodeFinished, Event
from rewards_api.runs.train import Trainer, TrainingOptions
from rewards_api.store import SessionStore


def make_session(store: SessionStore, name: str) -> None:
    store.create(name)
    store.write_env_params(name, EnvParams())
    store.write_agent_params(name, AgentParams())
    store.write_training_params(name, TrainingParams())


def laps(network, track: int, mode: str = "training") -> tuple[int, float]:
    env = gym.make(ENV_ID, track=track, mode=mode)
    results = greedy_trials(network, env, 5)
    return sum(r.lap_complete for r in results), sum(r.progress for r in results) / len(results)


def train_until(trainer: Trainer, tracks: list[int], budget: float, check_every: float) -> dict:
    """Run the trainer, checking its greedy policy on ``tracks``; stop once all pass or on budget."""
    state = {"passed_at": None, "last_check": time.perf_counter(), "checks": []}
    started = time.perf_counter()

    def check(event: Event) -> None:
        now = time.perf_counter()
        if not isinstance(event, EpisodeFinished) or now - state["last_check"] < check_every:
            return
        results = {track: laps(trainer.agent.q, track) for track in tracks}
        state["last_check"] = time.perf_counter()
        elapsed = state["last_check"] - started
        state["checks"].append((elapsed, event.episode, event.steps, results))
        print(f"  {elapsed:6.1f} s  episode {event.episode:6d}  {event.steps:>10,} steps  laps "
              + "  ".join(f"track {t}: {n}/5 ({p:.0f} %)" for t, (n, p) in results.items()), flush=True)
        if all(n >= 4 for n, _ in results.values()):
            state["passed_at"] = elapsed
            trainer.stop()
        elif elapsed >= budget:
            trainer.stop()

    finished = trainer.run(check)
    state["finished"] = finished
    return state


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget", type=float, default=120.0, help="seconds allowed for track 1")
    parser.add_argument("--multi-budget", type=float, default=120.0, help="seconds for tracks 1, 2, 3")
    parser.add_argument("--cars", type=int, default=64)
    parser.add_argument("--check-every", type=float, default=2.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        store = SessionStore(home)
        print("1. defaults of the original UI, track 1")
        make_session(store, "defaults")
        trainer = Trainer(store, "defaults", TrainingOptions(num_cars=args.cars))
        state = train_until(trainer, [1], args.budget, args.check_every)
        done = state["finished"]
        passed = state["passed_at"]
        print("   lap in >= 4/5 greedy trials after: "
              + (f"{passed:.1f} s wall time" if passed else f"not within {args.budget:.0f} s")
              + f"   (target <= 120 s; {done.episodes} episodes, {done.steps:,} steps)")

        print("\n2. a full run of the defaults (700 episodes), no checks")
        make_session(store, "full_run")
        started = time.perf_counter()
        done = Trainer(store, "full_run", TrainingOptions(num_cars=args.cars)).run()
        wall = time.perf_counter() - started
        saved = laps(load_best_model(store, "full_run"), 1)
        print(f"   {done.episodes} episodes, {done.steps:,} steps in {wall:.1f} s wall time "
              f"({done.elapsed:.1f} s of training after start-up)")
        print(f"   training throughput: {done.steps / done.elapsed:,.0f} env steps/s (target >= 20,000)")
        print(f"   saved model.pth: {saved[0]}/5 laps on track 1 ({saved[1]:.0f} % mean progress)")

        print("\n3. the same defaults, trained on training tracks 1, 2 and 3 at once")
        make_session(store, "three_tracks")
        trainer = Trainer(store, "three_tracks", TrainingOptions(num_cars=args.cars, tracks=(1, 2, 3)))
        state = train_until(trainer, [1, 2, 3], args.multi_budget, args.check_every)
        done = state["finished"]
        passed = state["passed_at"]
        print("   laps >= 4/5 on all three training tracks after: "
              + (f"{passed:.1f} s" if passed else f"not within {args.multi_budget:.0f} s")
              + f"   ({done.episodes} episodes, {done.steps:,} steps, "
              f"{done.steps / done.elapsed:,.0f} steps/s)")
        unseen = laps(trainer.agent.q, 1, mode="evaluation")
        print(f"   evaluation track (never seen): {unseen[0]}/5 laps, {unseen[1]:.0f} % mean progress")


if __name__ == "__main__":
    main()
