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
4. The table (``--table`` runs only it): {DQN, PPO} x {classic, discrete, continuous (PPO only)} x
   {reward x1, x10^6}. Each cell is a new session with the defaults a learner gets for it (DQN: the
   original UI's, 700 episodes; PPO: PPO_DEFAULTS, lr 0.0003, 30,000 episodes, 256 cars), training on
   training track 1; every ``--check-every`` seconds of training the current greedy policy drives 5
   trials on evaluation track 1, which it never trains on. The cell is the first check with >= 4 of 5
   laps: its laps and the training time to it (seconds of training, the checks' own time left out), or
   the best laps seen when the run ends or ``--table-budget`` passes. Rewards: +1 while alive for the
   classic car (the original's default); speed x (1 - (distance from centre / half width)^2) for the
   racing cars; the x10^6 rows multiply them by 1,000,000. Also each cell's training throughput.
5. PPO's throughput (``--table`` runs it too): a run of each car with PPO's defaults and no checks, for
   ``--throughput-seconds`` of training: env steps per second (all 256 cars), and its saved model.pth
   on the unseen evaluation track 1.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import gymnasium as gym

from rewards_api.envs import ENV_ID
from rewards_api.params import PPO_DEFAULTS, AgentParams, EnvParams, TrainingParams
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
        results = {track: laps(trainer.policy, track) for track in tracks}
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


STAY_ALIVE = "def reward_function(params):\n    return {scale} if params['is_alive'] else 0\n"
RACING = """def reward_function(params):
    if not params["all_wheels_on_track"] or params["is_reversed"]:
        return 0.0
    x = params["distance_from_center"] / (params["track_width"] / 2)
    return {scale} * params["speed"] * max(0.0, 1.0 - x * x)
"""
CELLS = [(algorithm, car) for algorithm in ("dqn", "ppo") for car in ("classic", "discrete", "continuous")
         if not (algorithm == "dqn" and car == "continuous")]


def table_cell(store: SessionStore, algorithm: str, car: str, scale: int, budget: float, check_every: float,
               seed: int, normalize: bool = True) -> dict:
    """Train one cell's session, checking its greedy policy on the unseen evaluation track 1."""
    name = f"{algorithm}_{car}_{scale}_{seed}_{int(normalize)}"
    env_params = EnvParams(environment_world=1, action_space=car)
    store.create(name)
    store.write_env_params(name, env_params)
    defaults = dict(PPO_DEFAULTS) if algorithm == "ppo" else {}
    if not normalize:
        defaults["normalize_rewards"] = False
    store.write_agent_params(name, AgentParams(model_configuration=env_params.shape().default(), **defaults))
    source = (STAY_ALIVE if car == "classic" else RACING).format(scale=scale)
    store.write_training_params(name, TrainingParams(learning_algorithm=algorithm, reward_function=source))
    trainer = Trainer(store, name, TrainingOptions(seed=seed))
    evaluation = gym.make(ENV_ID, track=1, mode="evaluation", **env_params.car())
    state = {"checking": 0.0, "next": check_every, "best": (0, 0.0), "passed": None}

    def check(event: Event) -> None:
        if not isinstance(event, EpisodeFinished):
            return
        trained = event.elapsed - state["checking"]
        if trained < state["next"]:
            return
        began = time.perf_counter()
        results = greedy_trials(trainer.policy, evaluation, 5)
        state["checking"] += time.perf_counter() - began
        state["next"] = trained + check_every
        laps_now = sum(r.lap_complete for r in results)
        laps_times = [r.lap_time for r in results if r.lap_time is not None]
        if (laps_now, -min(laps_times or [0])) > (state["best"][0], -state["best"][1]):
            state["best"] = (laps_now, min(laps_times or [0]))
        if laps_now >= 4 and state["passed"] is None:
            state["passed"] = (trained, laps_now, min(laps_times), event.steps)
            trainer.stop()
        elif trained >= budget:
            trainer.stop()

    finished = trainer.run(check)
    trained = finished.elapsed - state["checking"]
    return {"passed": state["passed"], "best": state["best"], "trained": trained,
            "throughput": finished.steps / max(trained, 1e-9), "episodes": finished.episodes}


def run_table(store: SessionStore, budget: float, check_every: float, seeds: int,
              without_normalization: bool = False) -> None:
    print(f"4. laps on the unseen evaluation track 1 (of 5 greedy trials) and the training time to the first "
          f"check with >= 4 (checked every {check_every:g} s; budget {budget:g} s)")
    print(f"   {'algorithm':9s} {'car':10s} {'reward':9s} {'laps':>5s} {'time':>8s} {'best lap':>9s} "
          f"{'steps/s':>9s}  episodes")
    times: dict[tuple[str, str, int], list[float | None]] = {}
    rows = [(algorithm, car, scale, True) for algorithm, car in CELLS for scale in (1, 1_000_000)]
    if without_normalization:  # what a learner got before rewards were normalized
        rows += [(algorithm, car, scale, False) for algorithm, car in CELLS for scale in (1, 1_000_000)]
    for algorithm, car, scale, normalize in rows:
        for seed in range(seeds):
            cell = table_cell(store, algorithm, car, scale, budget, check_every, seed, normalize)
            passed = cell["passed"]
            if normalize:
                times.setdefault((algorithm, car, scale), []).append(passed[0] if passed else None)
            if passed:
                laps_text, time_text, lap = f"{passed[1]}/5", f"{passed[0]:.1f} s", f"{passed[2]:.1f} s"
            else:
                best = cell["best"]
                laps_text, time_text = f"{best[0]}/5", f"> {cell['trained']:.0f} s"
                lap = f"{best[1]:.1f} s" if best[0] else "-"
            factor = ("x1" if scale == 1 else "x10^6") + ("" if normalize else " raw")
            print(f"   {algorithm.upper():9s} {car:10s} {factor:9s} {laps_text:>5s} {time_text:>8s} "
                  f"{lap:>9s} {cell['throughput']:>9,.0f}  {cell['episodes']}", flush=True)
    print("   x10^6 against x1 (time to >= 4/5 laps, mean over seeds; goal: within 25 %):")
    for algorithm, car in CELLS:
        one, million = times[(algorithm, car, 1)], times[(algorithm, car, 1_000_000)]
        if None in one or None in million:
            print(f"   {algorithm.upper()} {car}: x1 {one}, x10^6 {million} (a run did not lap)")
            continue
        a, b = sum(one) / len(one), sum(million) / len(million)
        print(f"   {algorithm.upper()} {car}: x1 {a:.1f} s, x10^6 {b:.1f} s: {100 * (b - a) / a:+.0f} %")


def ppo_throughput(store: SessionStore, seconds: float) -> None:
    print(f"\n5. PPO's training throughput: PPO's defaults, 256 cars, {seconds:g} s of training, no checks")
    for car in ("classic", "discrete", "continuous"):
        name = f"throughput_{car}"
        env_params = EnvParams(environment_world=1, action_space=car)
        store.create(name)
        store.write_env_params(name, env_params)
        store.write_agent_params(name, AgentParams(model_configuration=env_params.shape().default(),
                                                   **PPO_DEFAULTS))
        source = (STAY_ALIVE if car == "classic" else RACING).format(scale=1)
        store.write_training_params(name, TrainingParams(learning_algorithm="ppo", reward_function=source))
        done = Trainer(store, name, TrainingOptions(max_seconds=seconds)).run()
        evaluation = gym.make(ENV_ID, track=1, mode="evaluation", **env_params.car())
        results = greedy_trials(load_best_model(store, name), evaluation, 5)
        best = min((r.lap_time for r in results if r.lap_time is not None), default=None)
        print(f"   {car:10s} {done.steps / done.elapsed:>9,.0f} env steps/s (goal >= 50,000)  "
              f"{done.episodes:>6} episodes; model.pth: {sum(r.lap_complete for r in results)}/5 laps on "
              "the unseen track"
              + (f", best {best:.1f} s" if best else ""), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget", type=float, default=120.0, help="seconds allowed for track 1")
    parser.add_argument("--multi-budget", type=float, default=120.0, help="seconds for tracks 1, 2, 3")
    parser.add_argument("--cars", type=int, default=64)
    parser.add_argument("--check-every", type=float, default=2.0)
    parser.add_argument("--table", action="store_true", help="run only the table (section 4)")
    parser.add_argument("--table-budget", type=float, default=60.0, help="seconds of training per cell")
    parser.add_argument("--table-check-every", type=float, default=1.0)
    parser.add_argument("--seeds", type=int, default=1, help="table: runs per cell")
    parser.add_argument("--without-normalization", action="store_true",
                        help="table: also each cell with normalize_rewards off (rows marked raw)")
    parser.add_argument("--throughput-seconds", type=float, default=20.0, help="section 5: seconds per car")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        store = SessionStore(home)
        if args.table:
            run_table(store, args.table_budget, args.table_check_every, args.seeds,
                      args.without_normalization)
            ppo_throughput(store, args.throughput_seconds)
            return
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
        unseen = laps(trainer.policy, 1, mode="evaluation")
        print(f"   evaluation track (never seen): {unseen[0]}/5 laps, {unseen[1]:.0f} % mean progress")
        print()
        run_table(store, args.table_budget, args.table_check_every, args.seeds,
                      args.without_normalization)
        ppo_throughput(store, args.throughput_seconds)


if __name__ == "__main__":
    main()
