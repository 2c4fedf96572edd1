"""The ``rewards-api`` command line: the whole loop without a server.

    rewards-api [--home DIR] create SESSION [--track 1] [--model "[[5, 9], [9, 3]]"] [--reward-file F] ...
    rewards-api [--home DIR] create SESSION --action-space discrete [--actions "-30:1.5,0:4,30:1.5"] ...
    rewards-api [--home DIR] create SESSION --algorithm ppo [--batch-size 4096] [--clip-range 0.2] ...
    rewards-api [--home DIR] set SESSION [--reward-file F] [--lr 0.005] ...   # the flags of create
    rewards-api [--home DIR] train SESSION          # live progress bar; Ctrl-C stops and keeps the model
    rewards-api [--home DIR] evaluate SESSION --mode evaluation --track 1 [--trials 5] [--json]
    rewards-api [--home DIR] sessions
    rewards-api [--home DIR] delete SESSION [--yes]
    rewards-api [--home DIR] push SESSION --user-id ID --user NAME [--s3-bucket B] [--s3-endpoint-url URL]
    rewards-api [--home DIR] leaderboard [--s3-bucket B] [--json]
    rewards-api [--home DIR] users add NAME | users list | users remove NAME
    rewards-api --version

Every command answers at once: this module imports only typer and rich. The store, the parameters and the
simulator load in the commands that use them, and PyTorch only where a network runs (``train``,
``evaluate``), after the arguments and the session have been checked.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperArgument, TyperCommand, TyperGroup

if TYPE_CHECKING:
    from .config import Settings
    from .runs.events import Event
    from .runs.train import Trainer
    from .store import SessionStore
    from .users import UserRegistry

DEFAULT_TRIALS = 5  # as rewards_api.runs.evaluate's, which imports PyTorch
DEFAULT_MODEL = "[[5, 9], [9, 3]]"
"""The classic car's default network (rewards_api.params.DEFAULT_MODEL_CONFIGURATION; a racing car's
follows its actions: params.default_model_configuration)."""

PARAMETER_FLAGS = {
    "environment_world": "--track", "car_speed": "--car-speed", "model_configuration": "--model",
    "learning_rate": "--lr", "loss_fn": "--loss", "optimizer": "--optimizer", "gamma": "--gamma",
    "epsilon": "--epsilon", "num_episodes": "--episodes", "reward_function": "--reward-file",
    "action_space": "--action-space", "actions": "--actions", "speed_range": "--speed-range",
    "learning_algorithm": "--algorithm", "normalize_rewards": "--normalize-rewards",
    "batch_size": "--batch-size", "num_epochs": "--epochs", "beta_entropy": "--entropy",
    "rollout_length": "--rollout-length", "clip_range": "--clip-range", "gae_lambda": "--gae-lambda",
}
"""The flag of ``create`` and ``set`` that gives each session parameter: errors name what the user typed."""
SETTINGS_FLAGS = {
    "home": "--home", "host": "--host", "port": "--port", "token": "--token", "max_jobs": "--max-jobs",
    "cors_origins": "--cors-origin", "cors_origin": "--cors-origin", "ui_metrics_file": "--ui-metrics-file",
    "s3_bucket": "--s3-bucket", "s3_endpoint_url": "--s3-endpoint-url", "s3_region": "--s3-region",
}
"""The same for the server's settings (``serve``, ``push``, ``leaderboard``)."""

_TYPE_METAVARS = {"<int>": "INTEGER", "<int range>": "INTEGER", "<float>": "NUMBER",
                  "<float range>": "NUMBER", "<str>": "TEXT", "<path>": "PATH"}


class _ReadableHelp:
    """Help as a user reads it: texts exactly as written (rich markup escaped, so ``[[in, out], ...]``
    stays), nothing after a flag, a plain metavar (TEXT, INTEGER, JSON, FILE...) after an option that
    takes a value, and arguments in capitals in the usage line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.help:
            self.help = escape(self.help)
        for param in self.params:
            if getattr(param, "help", None):
                param.help = escape(param.help)

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if param.metavar is None:
                param.metavar = _metavar(param, ctx)
        return params

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                pieces.append(param.metavar if param.required else f"[{param.metavar}]")
        if isinstance(self, TyperGroup):
            pieces.append(self.subcommand_metavar)
        return pieces


def _metavar(param: Any, ctx: Any) -> str:
    if isinstance(param, TyperArgument):
        return param.name.upper()
    if param.is_flag:
        return ""
    shown = param.display_type(ctx)
    return _TYPE_METAVARS.get(shown, shown.strip("<>").upper())


class _Command(_ReadableHelp, TyperCommand):
    pass


class _Group(_ReadableHelp, TyperGroup):
    pass


app = typer.Typer(
    cls=_Group,
    help="rewards: write a reward function, train a car to race, evaluate it. Sessions live in "
    "$REWARDS_HOME (default ~/.rewards_ai).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)


def command(name: str | None = None, parent: typer.Typer = app) -> Any:
    """``@app.command`` with the readable help of :class:`_ReadableHelp`."""
    return parent.command(name, cls=_Command)


def fail(message: str, code: int = 2) -> None:
    """Print a user error (what is wrong and how to fix it) and exit."""
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def user_errors(flags: Mapping[str, str] | None = None) -> Iterator[None]:
    """Turn the errors a user can cause into one clear line instead of a traceback; ``flags`` maps the
    parameters the checks name (``environment_world``) to the flags the user typed (``--track``)."""
    try:
        yield
    except Exception as exc:
        message = _user_error(exc, flags or {})
        if message is None:
            raise
        fail(message)


def _user_error(exc: Exception, flags: Mapping[str, str]) -> str | None:
    """The message for an error the user caused, None for a bug (imports only what raised it can be)."""
    import pydantic

    from .params import ParameterError, validation_errors
    from .store import SessionError

    if isinstance(exc, pydantic.ValidationError):
        found = validation_errors(exc)
        return _flagged(found[0]["parameter"], found[0]["message"], flags) if found else str(exc)
    if isinstance(exc, ParameterError):
        return _flagged(exc.parameter, str(exc), flags)
    if isinstance(exc, (SessionError, ValueError)):
        return str(exc)
    evaluation = sys.modules.get("rewards_api.runs.evaluate")  # loaded if it can have raised ModelNotTrained
    if evaluation is not None and isinstance(exc, evaluation.ModelNotTrained):
        return str(exc)
    return None


def _flagged(parameter: str, message: str, flags: Mapping[str, str]) -> str:
    """``environment_world = 4 is not valid: ...`` as ``--track 4 is not valid: ...``; a part of a value
    (``actions[1].speed = 9 is not valid: ...``) as ``--actions: actions[1].speed = 9 ...``."""
    flag = flags.get(parameter)
    part_of = flags.get(parameter.split("[", 1)[0])
    if flag is None and part_of is not None:
        return f"{part_of}: {message}"
    if flag is None:
        return message
    if message.startswith(f"{parameter} = "):
        return f"{flag} {message[len(parameter) + 3:]}"
    if message.startswith(parameter):
        return flag + message[len(parameter):]
    return f"{flag}: {message}"


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"rewards-api {version('rewards-api')}", highlight=False)
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option("--home", metavar="DIR", help="Folder of the sessions "
                                              "(default: $REWARDS_HOME or ~/.rewards_ai).")] = None,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_show_version,
                                          help="Print the version and exit.")] = False,
) -> None:
    ctx.obj = home


def _store(ctx: typer.Context) -> SessionStore:
    from .store import SessionStore

    return SessionStore(ctx.obj)


# The session parameters, shared by create (with defaults) and set (all optional: None keeps the value).
TrackOption = typer.Option("--track", metavar="TRACK", help="Training track: 1-3, or a named training track "
                           "such as drag-strip (rewards-api serve's GET /api/v1/tracks lists them).")
CarSpeedOption = typer.Option("--car-speed", help="Frames per second of the live stream, 1-60.")
ModelOption = typer.Option("--model", metavar="JSON", help="Q-network layers as JSON [[in, out], ...].")
LearningRateOption = typer.Option("--lr", help="Learning rate, > 0 and <= 1.5 (create: 0.01 for DQN, 0.0003 "
                                  "for PPO).")
LossOption = typer.Option("--loss", metavar="NAME", help="mse, rmse, mae or huber.")
OptimizerOption = typer.Option("--optimizer", metavar="NAME", help="adam, rmsprop or adagrad.")
GammaOption = typer.Option("--gamma", help="Discount: a fraction 0-1 or a percentage.")
EpsilonOption = typer.Option("--epsilon", help="Starting exploration: fraction or percentage.")
EpisodesOption = typer.Option("--episodes", help="Episodes to train, 1-100000 (create: 700 for DQN, 30000 "
                              "for PPO).")
RewardFileOption = typer.Option("--reward-file", metavar="FILE", help="Python file defining "
                                "reward_function(params); default: +1 while on the track.")
ActionSpaceOption = typer.Option("--action-space", metavar="CAR", help="The car: classic (the original: 3 "
                                 "actions at one speed), discrete (speed and steering: a list of actions) or "
                                 "continuous (any steering angle and speed; trains with PPO).")
ActionsOption = typer.Option("--actions", metavar="ANGLE:SPEED,...", help="The discrete car's actions: "
                             "steering angle (degrees, -30 to 30, + is left) and speed (m/s, 0.5 to 4) "
                             "pairs, e.g. -30:1.5,0:4,30:1.5 (default: 5 angles x 3 speeds).")
SpeedRangeOption = typer.Option("--speed-range", metavar="MIN:MAX", help="The continuous car's speed range, "
                                "m/s (default 0.5:4).")
AlgorithmOption = typer.Option("--algorithm", metavar="NAME", help="Learning algorithm: dqn (deep "
                               "Q-learning, the original) or ppo (proximal policy optimization, any car). "
                               "create: dqn, or ppo for the continuous car.")
NormalizeOption = typer.Option("--normalize-rewards/--no-normalize-rewards", help="Divide rewards by the "
                               "running spread of the return before learning (both algorithms; default on).",
                               show_default=False)
BatchSizeOption = typer.Option("--batch-size", help="PPO: samples per gradient step, 16-65536 (default "
                               "4096).")
EpochsOption = typer.Option("--epochs", help="PPO: passes over each rollout, 1-100 (default 4).")
EntropyOption = typer.Option("--entropy", help="PPO: weight of the entropy bonus, 0-1 (default 0.01).")
RolloutOption = typer.Option("--rollout-length", help="PPO: steps each car drives between updates, 4-4096 "
                             "(default 32).")
ClipRangeOption = typer.Option("--clip-range", help="PPO: clipping of the policy ratio, > 0 and <= 1 "
                               "(default 0.2).")
GaeLambdaOption = typer.Option("--gae-lambda", help="PPO: GAE's lambda, 0-1 (default 0.95).")


@command()
def create(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Session id: letters, digits and underscores.")],
    track: Annotated[str, TrackOption] = "1",
    car_speed: Annotated[int, CarSpeedOption] = 20,
    model: Annotated[str | None, ModelOption] = None,
    lr: Annotated[float | None, LearningRateOption] = None,
    loss: Annotated[str, LossOption] = "mse",
    optimizer: Annotated[str, OptimizerOption] = "adam",
    gamma: Annotated[float, GammaOption] = 0.9,
    epsilon: Annotated[float, EpsilonOption] = 20,
    episodes: Annotated[int | None, EpisodesOption] = None,
    reward_file: Annotated[Path | None, RewardFileOption] = None,
    action_space: Annotated[str | None, ActionSpaceOption] = None,
    actions: Annotated[str | None, ActionsOption] = None,
    speed_range: Annotated[str | None, SpeedRangeOption] = None,
    algorithm: Annotated[str | None, AlgorithmOption] = None,
    normalize_rewards: Annotated[bool | None, NormalizeOption] = None,
    batch_size: Annotated[int | None, BatchSizeOption] = None,
    epochs: Annotated[int | None, EpochsOption] = None,
    entropy: Annotated[float | None, EntropyOption] = None,
    rollout_length: Annotated[int | None, RolloutOption] = None,
    clip_range: Annotated[float | None, ClipRangeOption] = None,
    gae_lambda: Annotated[float | None, GaeLambdaOption] = None,
) -> None:
    """Create a session with its parameters (the original UI's defaults unless given). The network
    follows the car unless --model is given: [[5, 9], [9, 3]] for the classic car; for a racing car two
    hidden layers of 64 between its observation (5 radars and the speed) and its actions.

    --algorithm ppo starts from PPO's learning rate and episodes (0.0003, 30000) unless --lr or --episodes
    is given; the continuous car trains with PPO (DQN cannot drive it)."""
    from .envs.reward import DEFAULT_REWARD_SOURCE
    from .params import DEFAULT_AGENT_PARAMS, PPO_DEFAULTS, AgentParams, EnvParams, check_action_space

    store = _store(ctx)
    chosen = None  # why the algorithm was chosen for the user, when it was
    with user_errors(_parameter_flags(reward_file)):
        source = DEFAULT_REWARD_SOURCE if reward_file is None else _read_reward_file(reward_file)
        # Every parameter is checked before anything is written: a mistake leaves no half-made session.
        space = check_action_space(action_space)
        _check_car_flags(space, actions, speed_range, "")
        env = EnvParams(environment_world=track, car_speed=car_speed, action_space=space, actions=actions,
                        speed_range=speed_range)
        if algorithm is None and space == "continuous":
            algorithm = "ppo"
            chosen = "The continuous car trains with PPO (DQN cannot drive it): --algorithm ppo"
        learning_algorithm = _checked_algorithm(env, algorithm or "dqn")
        defaults = PPO_DEFAULTS if learning_algorithm == "ppo" else {
            "learning_rate": DEFAULT_AGENT_PARAMS.learning_rate,
            "num_episodes": DEFAULT_AGENT_PARAMS.num_episodes}
        agent = AgentParams.model_validate(
            {"model_configuration": model,
             "learning_rate": defaults["learning_rate"] if lr is None else _plain(lr), "loss_fn": loss,
             "optimizer": optimizer, "gamma": _plain(gamma), "epsilon": _plain(epsilon),
             "num_episodes": defaults["num_episodes"] if episodes is None else episodes,
             **_agent_options(normalize_rewards, batch_size, epochs, entropy, rollout_length, clip_range,
                              gae_lambda)},
            context=env.shape().context())
        training = _checked_training_params({"learning_algorithm": learning_algorithm}, source)
        created = store.create(session)
        store.write_env_params(session, env, agent.model_configuration)
        store.write_agent_params(session, agent)
        store.write_training_params(session, training)
    console.print(f"Created session [bold]{session}[/] in {created['dir_paths']['session_root_dir']}")
    if chosen:
        console.print(f"  {chosen}", highlight=False, markup=False)
    learning_algorithm = training.learning_algorithm
    console.print(f"  track {track} · {_car_text(env)} car · {_algorithm_text(learning_algorithm, agent)} · "
                  f"model {agent.model_configuration} · {_hyper_text(learning_algorithm, agent)}",
                  highlight=False, markup=False)


def _agent_options(normalize_rewards: bool | None, batch_size: int | None, epochs: int | None,
                   entropy: float | None, rollout_length: int | None, clip_range: float | None,
                   gae_lambda: float | None) -> dict[str, Any]:
    """agent_params.json's optional keys that were typed (those not typed are not written)."""
    return _given(normalize_rewards=normalize_rewards, batch_size=batch_size, num_epochs=epochs,
                  beta_entropy=None if entropy is None else _plain(entropy), rollout_length=rollout_length,
                  clip_range=None if clip_range is None else _plain(clip_range),
                  gae_lambda=None if gae_lambda is None else _plain(gae_lambda))


def _checked_algorithm(env: Any, algorithm: str) -> str:
    """``algorithm`` checked as training_params.json's learning_algorithm, and for the car
    (check_trainable): a ParameterError for ``learning_algorithm``, which the CLI names --algorithm."""
    from .params import REWARD_CHECKED, TrainingParams, check_trainable

    checked = TrainingParams.model_validate({"learning_algorithm": algorithm},
                                            context=REWARD_CHECKED).learning_algorithm
    check_trainable(env, checked)
    return checked


def _algorithm_text(algorithm: str, agent: Any) -> str:
    """"dqn" or "ppo (batch 4096 · epochs 4 · entropy 0.01 · rollout 32 · clip 0.2 · gae-lambda 0.95)"."""
    if algorithm != "ppo":
        return algorithm
    return (f"ppo (batch {agent.batch_size} · epochs {agent.num_epochs} · entropy {agent.beta_entropy:g} · "
            f"rollout {agent.rollout_length} · clip {agent.clip_range:g} · gae-lambda {agent.gae_lambda:g})")


def _hyper_text(algorithm: str, agent: Any) -> str:
    """The hyper-parameters both algorithms use (epsilon is DQN's only), as the files store them."""
    epsilon = f" · epsilon {agent.epsilon}" if algorithm != "ppo" else ""
    normalized = "" if agent.normalize_rewards else " · rewards not normalized"
    return (f"lr {agent.learning_rate:g} · {agent.loss_fn} · {agent.optimizer} · gamma {agent.gamma}"
            f"{epsilon} · {agent.num_episodes} episodes{normalized}")


def _car_text(env: Any) -> str:
    """"classic", "discrete (3 actions)" or "continuous (0.5-4 m/s)"."""
    if env.action_space == "discrete":
        return f"discrete ({len(env.actions)} actions)"
    if env.action_space == "continuous":
        return f"continuous ({env.speed_range[0]:g}-{env.speed_range[1]:g} m/s)"
    return env.action_space


def _check_car_flags(space: str, actions: str | None, speed_range: str | None, whose: str) -> None:
    """--actions only for the discrete car, --speed-range only for the continuous one (``whose``: the
    session's car when --action-space was not given)."""
    for flag, value, owner in (("--actions", actions, "discrete"),
                               ("--speed-range", speed_range, "continuous")):
        if value is not None and space != owner:
            fail(f"{flag} {value} is for the {owner} car only, and {whose or 'the car'} is the {space} car: "
                 f"add --action-space {owner}, or leave {flag} out")


def _parameter_flags(reward_file: Path | None) -> dict[str, str]:
    return {**PARAMETER_FLAGS, "reward_function": f"--reward-file {reward_file}"}


def _read_reward_file(reward_file: Path) -> str:
    try:
        return reward_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        fail(f"--reward-file {reward_file}: {reason}; give the path of a Python file")
        raise  # not reached: fail exits


def _checked_training_params(stored: dict[str, Any], source: str) -> Any:
    """training_params with ``source`` as the reward function, checked as the server checks it: in a child
    process with CPU and memory limits (ParameterError for ``reward_function`` if refused)."""
    from .params import REWARD_CHECKED, TrainingParams
    from .server.reward_check import check_reward_source

    check_reward_source(source)
    return TrainingParams.model_validate({**stored, "reward_function": source}, context=REWARD_CHECKED)


def _plain(value: float) -> float | int:
    """90.0 -> 90: keep the numbers the way the user typed them in the session files."""
    return int(value) if float(value).is_integer() else value


@command("set")
def set_command(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Session id.")],
    track: Annotated[str | None, TrackOption] = None,
    car_speed: Annotated[int | None, CarSpeedOption] = None,
    model: Annotated[str | None, ModelOption] = None,
    lr: Annotated[float | None, LearningRateOption] = None,
    loss: Annotated[str | None, LossOption] = None,
    optimizer: Annotated[str | None, OptimizerOption] = None,
    gamma: Annotated[float | None, GammaOption] = None,
    epsilon: Annotated[float | None, EpsilonOption] = None,
    episodes: Annotated[int | None, EpisodesOption] = None,
    reward_file: Annotated[Path | None, RewardFileOption] = None,
    action_space: Annotated[str | None, ActionSpaceOption] = None,
    actions: Annotated[str | None, ActionsOption] = None,
    speed_range: Annotated[str | None, SpeedRangeOption] = None,
    algorithm: Annotated[str | None, AlgorithmOption] = None,
    normalize_rewards: Annotated[bool | None, NormalizeOption] = None,
    batch_size: Annotated[int | None, BatchSizeOption] = None,
    epochs: Annotated[int | None, EpochsOption] = None,
    entropy: Annotated[float | None, EntropyOption] = None,
    rollout_length: Annotated[int | None, RolloutOption] = None,
    clip_range: Annotated[float | None, ClipRangeOption] = None,
    gae_lambda: Annotated[float | None, GaeLambdaOption] = None,
) -> None:
    """Change a session's reward function or hyper-parameters: the flags of create, each optional (the
    others keep their values). Checked as create checks them; the model, metrics and runs are kept, and the
    next train continues the model with the new values. Not while the session is training.

    A new car (--action-space, --actions, --speed-range) needs a new network: the default one follows it,
    one you chose needs --model for the new car. A session with a trained model keeps its network and car
    (create a new session for another). A new --algorithm keeps the other values as they are (--lr and
    --episodes too); a trained session's next training then starts a new model for it."""
    env_changes = _given(environment_world=track, car_speed=car_speed, action_space=action_space,
                         actions=actions, speed_range=speed_range)
    agent_changes = _given(model_configuration=model, learning_rate=None if lr is None else _plain(lr),
                           loss_fn=loss, optimizer=optimizer, gamma=None if gamma is None else _plain(gamma),
                           epsilon=None if epsilon is None else _plain(epsilon), num_episodes=episodes)
    agent_changes.update(_agent_options(normalize_rewards, batch_size, epochs, entropy, rollout_length,
                                        clip_range, gae_lambda))
    if not env_changes and not agent_changes and reward_file is None and algorithm is None:
        fail(f"nothing to change: give the new values, e.g. rewards-api set {session} --reward-file F.py "
             "--lr 0.005 (rewards-api set --help lists the flags)")
    store = _store(ctx)
    trained_by: str | None = None  # what trained its model, if any (read while the training mark is held)
    changing = _training_mark(store, session, "changing its parameters")
    with user_errors(_parameter_flags(reward_file)), changing:
        stored = store.all_params(session)
        stored_env, stored_agent = stored["env_params"], dict(stored["agent_params"])
        env, new_network = _changed_car(store, session, stored_env, stored_agent, env_changes, model)
        car = (env or _env_or_default(stored_env)).shape()
        if new_network is not None:  # written with the env params; the other agent changes go on top
            stored_agent["model_configuration"] = new_network
            agent_changes.pop("model_configuration", None)
        if "model_configuration" in agent_changes:
            current = stored_agent.get("model_configuration", car.default())
            new_layers = car.parse(agent_changes["model_configuration"])
            if _layers_or_none(current) == new_layers:
                agent_changes.pop("model_configuration")  # the same network, written another way
            elif store.paths(session).model.exists():
                fail(f"--model {model} changes the network of session {session!r}, whose trained model has "
                     f"layers {current}: its next training would start a new model and lose this one. Create "
                     f"a new session for the new network: rewards-api create NEW_SESSION --model '{model}'")
        agent = _changed_agent(stored_agent, agent_changes, car)
        stored_training = dict(stored["training_params"])
        was = _stored_algorithm(stored_training)
        new_algorithm = was if algorithm is None else _checked_algorithm(env or _env_or_default(stored_env),
                                                                         algorithm)
        training = None
        if reward_file is not None:
            source = _read_reward_file(reward_file)
            if source != stored_training.get("reward_function"):
                training = _checked_training_params({**stored_training, "learning_algorithm": new_algorithm},
                                                    source)
        if training is None and new_algorithm != was:  # the reward function stays, checked when written
            from .params import REWARD_CHECKED, TrainingParams

            training = TrainingParams.model_validate({**stored_training, "learning_algorithm": new_algorithm},
                                                     context=REWARD_CHECKED)
        if env is None and agent is None and training is None:
            fail(f"nothing to change: session {session!r} already has these values")
        changed = []
        if env is not None:
            store.write_env_params(session, env, new_network)
            changed += [PARAMETER_FLAGS[name] for name in env_changes]
        if agent is not None:
            store.write_agent_params(session, agent)
            changed += [PARAMETER_FLAGS[name] for name in agent_changes]
        if training is not None:
            trained_by = store.trained_algorithm(session)
            store.write_training_params(session, training)
            if training.reward_function != stored_training.get("reward_function"):
                changed.append("--reward-file")
            if new_algorithm != was:
                changed.append("--algorithm")
    changed = [_typed_flag(flag, normalize_rewards) for flag in changed]
    console.print(f"Changed {', '.join(changed)} of session [bold]{escape(session)}[/]; its model and "
                  f"metrics are kept. See it with: rewards-api info {session}", highlight=False)
    if new_algorithm != was:
        # A new model only if the algorithm differs from the one that trained the model (set ppo then dqn
        # again before training: the DQN model carries on).
        _algorithm_notes(session, trained_by or was, new_algorithm,
                         trained_by is not None and trained_by != new_algorithm, agent or stored_agent, car)
    final_space = env.action_space if env is not None else _env_or_default(stored_env).action_space
    if final_space == "continuous" and new_algorithm == "dqn":
        console.print(f"Session {session!r} drives the continuous car, which DQN cannot train: add "
                      "--algorithm ppo before training it", highlight=False, markup=False)


def _typed_flag(flag: str, normalize_rewards: bool | None) -> str:
    return "--no-normalize-rewards" if flag == "--normalize-rewards" and normalize_rewards is False else flag


def _stored_algorithm(training: dict[str, Any]) -> str:
    """training_params.json's learning_algorithm as training reads it (absent: dqn, the original)."""
    value = training.get("learning_algorithm", "dqn")
    return value.strip().lower() if isinstance(value, str) else value


def _algorithm_notes(session: str, was: str, algorithm: str, trained: bool, agent: Any, car: Any) -> None:
    """What a new algorithm means: a trained session's next training starts a new model; a session going to
    PPO with DQN's learning rate or episodes hears of PPO's (the stored values are never changed for it)."""
    from .params import DEFAULT_AGENT_PARAMS, PPO_DEFAULTS, AgentParams

    if trained:
        console.print(f"Session {session!r} has a trained {was} model: its next training starts a new "
                      f"{algorithm} model (the {was} model, its metrics and its checkpoint are replaced "
                      f"then; nothing is lost until then: rewards-api set {session} --algorithm {was} goes "
                      "back).",
                      highlight=False, markup=False)
    if algorithm != "ppo":
        return
    if not isinstance(agent, AgentParams):
        try:
            agent = AgentParams.model_validate(agent, context=car.context())
        except ValueError:  # a hand-edited file training will refuse, naming the parameter
            return
    kept, hints = [], []
    for name, flag, shown in (("learning_rate", "--lr", "lr {:g}"), ("num_episodes", "--episodes",
                                                                      "{} episodes")):
        if getattr(agent, name) == getattr(DEFAULT_AGENT_PARAMS, name):
            kept.append(shown.format(getattr(agent, name)))
            hints.append(f"{flag} {PPO_DEFAULTS[name]:g}")
    if hints:
        console.print(f"Hint: {' and '.join(kept)} {'are' if len(kept) > 1 else 'is'} DQN's default"
                      f"{'s' if len(kept) > 1 else ''}, kept as stored; PPO's: rewards-api set {session} "
                      f"{' '.join(hints)}",
                      highlight=False, markup=False)


def _given(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _layers_or_none(configuration: Any) -> Any:
    from .params import parse_any_model_configuration

    try:
        return parse_any_model_configuration(configuration)
    except ValueError:
        return None


def _env_or_default(stored: dict[str, Any]) -> Any:
    """The stored env params, checked (the defaults, a classic car, if they are not valid)."""
    from .params import EnvParams

    try:
        return EnvParams(**stored)
    except ValueError:
        return EnvParams()


def _changed_car(store: SessionStore, session: str, stored_env: dict[str, Any], stored_agent: dict[str, Any],
                 changes: dict[str, Any], model: str | None) -> tuple[Any, Any]:
    """The new env params (None: unchanged) and, when the car changes, the network to write with them
    (None: the stored one fits, or the store gives a racing car without agent params its default)."""
    from .params import EnvParams, check_action_space, is_default_network

    current = _env_or_default(stored_env)
    space = check_action_space(changes.get("action_space", current.action_space))
    _check_car_flags(space, changes.get("actions"), changes.get("speed_range"),
                     "" if "action_space" in changes else f"the car of session {session!r}")
    # The keys of the car the session leaves go: actions do not follow it to the continuous car.
    kept = {key: value for key, value in stored_env.items()
            if key not in ("actions", "speed_range") or space == current.action_space}
    env = _changed(EnvParams, kept, changes)
    if env is None or env.car() == current.car():
        return env, None
    what = ", ".join(f"{PARAMETER_FLAGS[name]} {value}" for name, value in changes.items()
                     if name in ("action_space", "actions", "speed_range"))
    if store.paths(session).model.exists():
        fail(f"{what} changes the car of session {session!r}, whose trained model drives the "
             f"{_car_text(current)} car: its next training would start a new model and lose this one. "
             f"Create a new session for the new car: rewards-api create NEW_SESSION {what}")
    car = env.shape()
    if model is not None:
        return env, _checked_network(car, model)
    network = stored_agent.get("model_configuration")
    if network is None or car.fits(network):
        return env, None
    if is_default_network(network):
        return env, car.default()
    layers = _layers_or_none(network)
    from .params import configuration_from_hidden, hidden_sizes

    fitting = car.default() if layers is None else configuration_from_hidden(hidden_sizes(layers), car.inputs,
                                                                             car.outputs)
    fail(f"{what}: the session's network {network} is not one for the {_car_text(env)} car, whose network "
         f"takes {car.inputs} inputs and gives {car.outputs} outputs: add --model '{fitting}' (your hidden "
         "layers) or another network for it")
    raise AssertionError  # not reached: fail exits


def _checked_network(car: Any, model: str) -> Any:
    """``model`` as agent_params.json stores it, checked for the car (a ParameterError names --model)."""
    from .params import stored_model_configuration

    return stored_model_configuration(model, car)


def _changed_agent(stored: dict[str, Any], changes: dict[str, Any], car: Any) -> Any:
    """The agent params ``stored`` with ``changes``, checked for the car; None when they stay the same."""
    from .params import AgentParams

    if not changes:
        return None
    new = AgentParams.model_validate({**stored, **changes}, context=car.context())
    try:
        current = AgentParams.model_validate(stored, context=car.context())
    except ValueError:  # what is stored is not valid: the change fixes it
        return new
    return None if new == current else new


def _changed(kind: Any, stored: dict[str, Any], changes: dict[str, Any]) -> Any:
    """The parameters ``stored`` with ``changes``, checked; None when they would stay the same."""
    if not changes:
        return None
    new = kind(**{**stored, **changes})
    try:
        current = kind(**stored)
    except ValueError:  # what is stored is not valid: the change fixes it
        return new
    return None if new == current else new


@contextmanager
def _training_mark(store: SessionStore, session: str, doing: str) -> Iterator[None]:
    """Hold the session's training mark while the block runs (SessionStore.training_mark: a second
    ``train``, a ``set``, or a server training the session meanwhile is refused, naming the holder)."""
    from .store import SessionBusy

    with contextlib.ExitStack() as held:
        try:
            held.enter_context(store.training_mark(session, doing))
        except SessionBusy as exc:
            fail(str(exc))
        yield


@command()
def train(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Session id.")],
    cars: Annotated[int | None, typer.Option(help="Cars driving at once (default: 64 for DQN, 256 for PPO).",
                                             min=1, max=4096)] = None,
    track: Annotated[str | None, typer.Option(metavar="TRACK", help="Train on this track this time, e.g. 2 "
                                              "or random:42 (default: the session's track).")] = None,
    tracks: Annotated[str | None, typer.Option(metavar="TRACKS", help="Train on these tracks at once, e.g. "
                                               "1,2,3 (default: the session's track).")] = None,
    seconds: Annotated[float | None, typer.Option(metavar="SECONDS", help="Stop after this many "
                                                  "seconds.")] = None,
    fresh: Annotated[bool, typer.Option(help="Start a new model instead of continuing the session's "
                                        "model.")] = False,
    restart: Annotated[bool, typer.Option(hidden=True, help="Deprecated: use --fresh.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Train the session's agent with a live progress bar. Ctrl-C stops and keeps what was learned.

    A session with a model continues it: an interrupted run finishes, a finished one warm-starts
    (num_episodes more from its weights, exploring from a quarter of epsilon).
    --fresh starts a new model. model_history.json lists every run under "runs".
    """
    store = _store(ctx)
    if track is not None and tracks is not None:
        fail(f"--track {track} and --tracks {tracks} cannot be used together: give one track with --track, "
             "or several with --tracks")
    if restart:
        errors.print("--restart is deprecated: use --fresh", highlight=False)
    track_list = tuple(_track(t) for t in tracks.split(",")) if tracks else None
    if track is not None:
        track_list = (_track(track),)
    flag = "--tracks" if tracks else "--track"
    with user_errors():
        _check_session(store, session)
    with user_errors({"track": flag}):
        _check_tracks(track_list or (), "training", flag)
    with user_errors(), _training_mark(store, session, "training it (rewards-api train)"):
        _run_training(store, session, track_list, cars=cars, seed=seed, fresh=fresh or restart,
                      seconds=seconds)


def _check_session(store: SessionStore, session: str) -> None:
    """SessionNotFound or a parameter's error now, before PyTorch loads (seconds) for a run: a network
    that does not fit the car, a car its learning algorithm cannot train (as the run would refuse them)."""
    from .params import EnvParams, check_trainable, session_agent_params

    stored = store.all_params(session)
    try:
        env = EnvParams(**stored["env_params"])
        session_agent_params(env, stored["agent_params"]).config()
        algorithm = stored["training_params"].get("learning_algorithm", "dqn")
        check_trainable(env, algorithm.strip().lower() if isinstance(algorithm, str) else algorithm)
    except ValueError as exc:
        problem = _user_error(exc, PARAMETER_FLAGS)
        fail(f"session {session!r}: {problem}; fix it with rewards-api set {session}")


def _check_tracks(tracks: tuple[int | str, ...], mode: str, flag: str) -> None:
    from .envs.tracks import get_track

    for chosen in tracks:
        try:
            get_track(chosen, mode)
        except (ValueError, TypeError) as exc:
            fail(f"{flag} {chosen}: {exc}")


def _run_training(store: SessionStore, session: str, track_list: tuple[int | str, ...] | None, *,
                  cars: int | None, seed: int, fresh: bool, seconds: float | None) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .runs.events import EpisodeFinished, TrainingStarted
    from .runs.train import Trainer, TrainingError, TrainingOptions

    trainer = Trainer(store, session, TrainingOptions(num_cars=cars, tracks=track_list, seed=seed,
                                                      fresh=fresh, max_seconds=seconds))
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn())
    start = {"episode": 0, "steps": 0}  # where this run began: a warm start or a resume counts on
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("training", total=trainer.setup.config.num_episodes, status="starting")

        def show(event: Event) -> None:
            if isinstance(event, TrainingStarted):
                start.update(episode=event.episode, steps=event.steps)
                if event.message:  # why a new model started: the session had one for another algorithm
                    progress.console.print(f"Note: {event.message}", highlight=False, markup=False)
                how = {"fresh": f"A new {event.algorithm} model",
                       "warm": f"Warm start from the session's {event.algorithm} model",
                       "resumed": f"Resuming the interrupted {event.algorithm} run"}[event.start]
                progress.console.print(f"{how} on {', '.join(trainer.track_names)} with {trainer.num_cars} "
                                       f"cars: episodes {event.episode + 1}-{event.episodes}",
                                       highlight=False, markup=False)
            if isinstance(event, EpisodeFinished):
                rate = (event.steps - start["steps"]) / max(event.elapsed, 1e-9)
                progress.update(task, completed=event.episode, total=max(trainer.target_episodes, 1),
                                status=f"score {event.score:g} · record {event.record:g} · "
                                f"{rate:,.0f} steps/s")

        with _stop_on_ctrl_c(trainer):
            try:
                result = trainer.run(show)
            except TrainingError as exc:
                progress.stop()
                fail(f"training stopped: {exc}", code=1)
    how = "stopped" if result.stopped else "finished"
    record = "-" if result.record is None else f"{result.record:g}"
    episodes, steps = result.episodes - start["episode"], result.steps - start["steps"]
    rate = steps / max(result.elapsed, 1e-9)
    in_all = f" ({result.episodes:,} episodes, {result.steps:,} steps in all)" if start["episode"] else ""
    console.print(f"Training {how}: {episodes:,} episodes, record {record}, {steps:,} steps in "
                  f"{result.elapsed:.1f} s ({rate:,.0f} steps/s){in_all}. "
                  f"Model saved in {store.paths(session).model}", highlight=False)


def _track(text: str) -> int | str:
    text = text.strip()
    return int(text) if text.isdigit() else text


@contextmanager
def _stop_on_ctrl_c(trainer: Trainer) -> Iterator[None]:
    """First Ctrl-C asks the run to stop cleanly (it saves); a second one aborts."""

    def handle(signum: int, frame: Any) -> None:
        errors.print("\nstopping after this step (Ctrl-C again to abort)...")
        trainer.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@command("evaluate")
def evaluate_command(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Session id.")],
    mode: Annotated[str, typer.Option(metavar="MODE", help="training or evaluation.")] = "training",
    track: Annotated[str, typer.Option(metavar="TRACK", help="Track: training 1-3, evaluation 1, or "
                                       "random:SEED.")] = "1",
    trials: Annotated[int, typer.Option(help="Trials to run.", min=1, max=100)] = DEFAULT_TRIALS,
    as_json: Annotated[bool, typer.Option("--json", help="Print the track's metrics and each trial as "
                                          "JSON.")] = False,
) -> None:
    """Evaluate the session's best model with greedy trials; records evaluation_metrics.json."""
    store = _store(ctx)
    if mode not in ("training", "evaluation"):
        fail(f"--mode {mode!r} is not valid: use training or evaluation")
    with user_errors():
        _check_session(store, session)
        if not store.paths(session).model.exists():
            fail(f"session {session!r} has no trained model yet: train it first (rewards-api train "
                 f"{session})")
        _check_tracks((_track(track),), mode, "--track")
    from .runs.evaluate import evaluate
    from .runs.events import TrialFinished, score_value
    from .scores import lap_text

    trial_results: list[dict[str, Any]] = []

    def keep(event: Event) -> None:
        if isinstance(event, TrialFinished):
            trial_results.append({"trial": event.trial, "laps": int(event.lap_complete),
                                  "progress": round(event.progress, 2), "steps": event.steps,
                                  "score": score_value(event.score), "time": event.time,
                                  "offtrack": event.offtrack})

    with user_errors():
        metrics = evaluate(store, session, mode=mode, track=_track(track), num_trials=trials, on_event=keep)
    if as_json:
        sys.stdout.write(json.dumps({**metrics, "trials": trial_results}) + "\n")
        return
    each = Table(title=f"{session} · {mode} track {track} · trials")
    for column in ("trial", "laps", "progress %", "steps", "score", "time s", "ended"):
        each.add_column(column, justify="right")
    for result in trial_results:
        ended = "lap" if result["laps"] else "off track" if result["offtrack"] else "out of time"
        shown = (_shown(result[key]) for key in ("trial", "laps", "progress", "steps", "score", "time"))
        each.add_row(*shown, ended)
    console.print(each)
    totals = Table.grid(padding=(0, 2))
    totals.add_column(style="bold")
    totals.add_column()
    for label, key, unit in (("trials", "num_trials", ""), ("record", "record", ""),
                             ("mean score", "mean_score", ""), ("laps completed", "laps_completed", ""),
                             ("mean progress", "mean_progress", " %")):
        totals.add_row(label, _shown(metrics[key]) + unit)
    best = lap_text(metrics.get("best_lap_time"), metrics.get("best_lap_ratio"))
    mean = metrics.get("mean_lap_time")
    totals.add_row("best lap", best or "no lap")
    totals.add_row("mean lap", "-" if mean is None else f"{mean:g} s")
    totals.add_row("reference lap", _shown(metrics.get("reference_lap_time")) + " s (from the start line)")
    totals.add_row("off track", f"{_shown(metrics.get('off_track_count'))} of {metrics['num_trials']} trials")
    totals.add_row("car", _shown(metrics.get("car")))
    for label, key, unit in (("total elapsed time", "total_elapsed_time", " seconds"),
                             ("evaluated at", "evaluated_at", "")):
        totals.add_row(label, _shown(metrics[key]) + unit)
    console.print(totals)


@command()
def sessions(ctx: typer.Context) -> None:
    """List the sessions with their track, model and training record."""
    store = _store(ctx)
    ids = store.list_sessions()
    if not ids:
        console.print(f"No sessions in {store.home}. Create one: rewards-api create my_session")
        return
    table = Table(title=f"sessions in {store.home}")
    for column in ("session", "track", "algorithm", "model", "episodes", "record", "last trained"):
        table.add_column(column)
    for session in ids:
        with user_errors():
            everything = store.all_params(session)
            history = store.read(session, "model_history")
        trained = history.get("last_trained") or {}
        table.add_row(
            session,
            str(everything["env_params"].get("environment_world", "-")),
            str(_stored_algorithm(everything["training_params"])),
            str(everything["agent_params"].get("model_configuration", "-")),
            str(len(everything["training_metrics"].get("plot_scores", []))),
            str(trained.get("record", "-")),
            f"{trained['date']} {trained['time'][:8]}" if trained else "never",
        )
    console.print(table)


@command()
def delete(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Session id.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking (for scripts).")] = False,
) -> None:
    """Delete a session and everything in it (its model too), after asking."""
    store = _store(ctx)
    with user_errors():
        if not store.exists(session):
            from .store import SessionNotFound

            raise SessionNotFound(session)
    if not yes:
        if not _interactive():
            fail(f"not deleting session {session!r} without a confirmation: no one can answer here (stdin is "
                 "not a terminal); add --yes (-y) to delete it")
        if not typer.confirm(f"Delete session {session} and everything in it, its model too?"):
            console.print(f"Kept session {session}.", highlight=False, markup=False)
            raise typer.Exit(1)
    with user_errors():
        store.delete(session)
    console.print(f"Deleted session {session}", highlight=False, markup=False)


def _interactive() -> bool:
    """Whether someone can answer a question: stdin is a terminal."""
    return sys.stdin is not None and sys.stdin.isatty()


S3Bucket = Annotated[str | None, typer.Option(metavar="NAME", help="S3 bucket for pushed models and the "
                                              "shared leaderboard (default: $REWARDS_S3_BUCKET). "
                                              "Credentials: the standard AWS chain (AWS_ACCESS_KEY_ID, "
                                              "AWS_PROFILE...).")]
S3EndpointUrl = Annotated[str | None, typer.Option(metavar="URL", help="URL of S3-compatible storage, e.g. "
                                                   "MinIO's http://127.0.0.1:9000 (default: "
                                                   "$REWARDS_S3_ENDPOINT_URL, else AWS S3).")]
S3Region = Annotated[str | None, typer.Option(metavar="REGION", help="The bucket's region (default: "
                                              "$REWARDS_S3_REGION, else the AWS chain's).")]


def _s3_settings(ctx: typer.Context, bucket: str | None, endpoint_url: str | None, region: str | None
                 ) -> Settings:
    """Settings with the S3 options given, the ``REWARDS_S3_*`` variables for the others (checked)."""
    from .config import Settings

    given = {"s3_bucket": bucket, "s3_endpoint_url": endpoint_url, "s3_region": region}
    with user_errors(SETTINGS_FLAGS):
        return Settings(home=_store(ctx).home, **{name: value for name, value in given.items()
                                                  if value is not None})


@command()
def push(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Session id.")],
    user_id: Annotated[str, typer.Option("--user-id", metavar="ID", help="Whose model: its folder in the "
                                         "bucket is Models/<user id>/<session>/.")],
    user: Annotated[str, typer.Option(metavar="NAME", help="The name shown on the leaderboards.")],
    s3_bucket: S3Bucket = None,
    s3_endpoint_url: S3EndpointUrl = None,
    s3_region: S3Region = None,
) -> None:
    """Push a trained and evaluated session (files, model, user.json, summary.json with its final evaluation
    score) to the S3 bucket, checksums verified."""
    from .cloud import CloudError, open_bucket, push_session

    settings = _s3_settings(ctx, s3_bucket, s3_endpoint_url, s3_region)
    if not settings.s3_bucket:
        fail("no S3 bucket configured: give --s3-bucket NAME or set REWARDS_S3_BUCKET")
    with user_errors():
        try:
            pushed = push_session(open_bucket(settings), _store(ctx), session, user_id=user_id, user=user)
        except CloudError as exc:
            fail(str(exc), code=1)
    console.print(f"Pushed session {session} to {pushed.url}: {len(pushed.keys)} files, final evaluation "
                  f"score {pushed.summary['score']:g}", highlight=False)


@command("leaderboard")
def leaderboard_command(
    ctx: typer.Context,
    s3_bucket: S3Bucket = None,
    s3_endpoint_url: S3EndpointUrl = None,
    s3_region: S3Region = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the standings as JSON.")] = False,
) -> None:
    """Rank the evaluated sessions (every user's) by laps completed on the evaluation track, then best lap
    time, then progress, with each best lap beside the reference; with a bucket, its pushed models too. The
    final evaluation score (in each reward function's units) is shown, never ranked by."""
    from .cloud import leaderboard, open_bucket

    home, bucket = _store(ctx).home, None
    # Without a bucket flag or $REWARDS_S3_BUCKET (any case, as the settings read it) there is no bucket:
    # the settings (pydantic-settings, ~0.1 s to import) are not needed for the local standings.
    if (s3_bucket, s3_endpoint_url, s3_region) != (None, None, None) or any(
            name.upper() == "REWARDS_S3_BUCKET" and value for name, value in os.environ.items()):
        settings = _s3_settings(ctx, s3_bucket, s3_endpoint_url, s3_region)
        if settings.s3_bucket:
            bucket = lambda: open_bucket(settings)  # noqa: E731
    with user_errors():
        standings, bucket_error = leaderboard(home, bucket)
    if bucket_error:
        errors.print(f"[bold yellow]warning:[/] {bucket_error}", highlight=False)
    if as_json:
        rows = [{"rank": place, **standing.entry()} for place, standing in enumerate(standings, 1)]
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    if not standings:
        console.print("No evaluated sessions yet: rewards-api evaluate SESSION --mode evaluation")
        return
    table = Table(title="leaderboard · by laps, then best lap time, then progress on the evaluation track")
    for column in ("rank", "user", "session", "laps", "best lap", "progress %", "car", "algorithm", "score",
                   "from"):
        table.add_column(column)
    for place, standing in enumerate(standings, 1):
        laps = "-" if standing.laps_completed is None else (
            f"{standing.laps_completed}/{standing.num_trials}" if standing.num_trials
            else str(standing.laps_completed))
        table.add_row(str(place), standing.user or "(owner)", standing.session_id, laps,
                      standing.best_lap or "-",
                      "-" if standing.mean_progress is None else f"{standing.mean_progress:g}",
                      standing.car or "-", standing.algorithm or "-", f"{standing.score:g}", standing.source)
    console.print(table)


@command()
def info(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Session id.")],
    plot: Annotated[Path | None, typer.Option(metavar="FILE", help="Also save the score chart to this PNG "
                                              "file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the card as JSON.")] = False,
) -> None:
    """Show a session's model card: dates, model, record, evaluations and runs."""
    from .cards import model_card, session_plot_png

    store = _store(ctx)
    with user_errors():
        card = model_card(store, session)
        algorithm, agent = _session_algorithm(store, session)
        if plot is not None:
            png = session_plot_png(store, session)
            try:
                plot.write_bytes(png)
            except OSError as exc:
                fail(f"--plot {plot}: {exc.strerror}; give the path of a PNG file in an existing folder")
    if as_json:
        sys.stdout.write(json.dumps(card) + "\n")
        return
    _print_card(card, algorithm, agent)
    if plot is not None:
        console.print(f"Score chart saved in {plot}", highlight=False)


def _when(stamp: dict[str, str] | None) -> str:
    return f"{stamp['date']} {stamp['time'][:8]}" if stamp else "never"


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _session_algorithm(store: SessionStore, session: str) -> tuple[str, Any]:
    """The session's learning algorithm and its agent params (None if they are not valid for its car)."""
    from .params import EnvParams, session_agent_params

    stored = store.all_params(session)
    algorithm = str(_stored_algorithm(stored["training_params"]))
    try:
        return algorithm, session_agent_params(EnvParams(**stored["env_params"]), stored["agent_params"])
    except ValueError:
        return algorithm, None


def _print_card(card: dict[str, Any], algorithm: str = "dqn", agent: Any = None) -> None:
    from rich.panel import Panel

    model = card["model"]
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("created", _when(card["created"]) + ("" if model["configured"] else " (default model)"))
    facts.add_row("last trained", _when(card["last_trained"]))
    facts.add_row("model", f"{model['layers']} · {model['parameters']:,} parameters")
    facts.add_row("saved model", "yes" if card["trained_model"] else "no (train it first)")
    facts.add_row("algorithm", algorithm if agent is None else _algorithm_text(algorithm, agent))
    epsilon = "" if algorithm == "ppo" else f" · epsilon {model['epsilon']:g}"
    normalized = "" if agent is None else (" · rewards normalized" if agent.normalize_rewards
                                           else " · rewards not normalized")
    facts.add_row("hyper-parameters", f"{model['loss_fn']} · {model['optimizer']} · lr "
                  f"{model['learning_rate']:g} · gamma {model['gamma']:g}{epsilon}{normalized}")
    facts.add_row("episodes", f"{card['episodes_trained']:,} trained · {model['num_episodes']:,} per run")
    facts.add_row("track", f"{card['track']} ({card['environment']['environment_name']})")
    facts.add_row("latest record", f"{_shown(card['record'])} · last mean score "
                  f"{_shown(card['last_mean_score'])}")
    facts.add_row("final eval score", _shown(card["final_eval_score"]))
    console.print(Panel(facts, title=f"[bold]{card['session_id']}[/] · model card", expand=False))

    evaluations = Table(title="evaluation results")
    for column in ("mode", "track", "trials", "record", "mean score", "laps", "progress %"):
        evaluations.add_column(column)
    for mode, tracks in card["evaluation"].items():
        for track, metrics in tracks.items():
            if metrics is None:
                evaluations.add_row(mode, track, "not evaluated", style="dim")
                continue
            evaluations.add_row(mode, track, *(_shown(metrics.get(key)) for key in (
                "num_trials", "record", "mean_score", "laps_completed", "mean_progress")))
    console.print(evaluations)
    timed = [(mode, track, figures) for mode, tracks in card["lap_times"].items()
             for track, figures in tracks.items() if figures is not None and figures["reference_lap_time"]]
    if timed:  # evaluations made before lap times were recorded have none
        laps = Table(title="lap times (simulated seconds)")
        for column in ("mode", "track", "best lap", "mean lap", "reference lap"):
            laps.add_column(column)
        for mode, track, figures in timed:
            laps.add_row(mode, track, figures["best_lap"] or "no lap", *(
                "-" if figures[key] is None else f"{figures[key]:g} s"
                for key in ("mean_lap_time", "reference_lap_time")))
        console.print(laps)

    if not card["runs"]:
        console.print("No runs recorded yet.")
        return
    runs = Table(title="runs")
    columns = ("date", "time", "start", "track", "episodes", "record", "steps", "duration")
    for column in columns:
        runs.add_column(column)
    for run in card["runs"]:
        if isinstance(run, dict):
            shown = {key: _shown(run.get(key)) for key in columns}
            shown["time"] = shown["time"][:8]
            if isinstance(run.get("duration"), (int, float)):
                shown["duration"] = f"{run['duration']:.1f} s"
            runs.add_row(*shown.values())
    console.print(runs)


@command("export")
def export_command(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Session id.")],
    file: Annotated[Path, typer.Argument(help="The zip archive to write, e.g. my_session.zip.")],
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
) -> None:
    """Write a session with its model to a zip archive, to import on another machine."""
    from .archive import export_session

    if file.exists() and not force:
        fail(f"{file} exists: choose another file name, or add --force to replace it")
    with user_errors():
        manifest = export_session(_store(ctx), session, file)
    console.print(f"Exported session [bold]{session}[/] to {file} ({len(manifest['files'])} files, "
                  f"{file.stat().st_size:,} bytes). Import it with: rewards-api import {file}",
                  highlight=False)


@command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A zip archive made by `rewards-api export`.")],
    as_id: Annotated[str | None, typer.Option("--as", metavar="SESSION", help="Import under this session id "
                                              "instead of the archive's.")] = None,
) -> None:
    """Import a session archive as a new session (never over an existing one)."""
    from .archive import import_session

    with user_errors():
        imported = import_session(_store(ctx), file, as_id)
    console.print(f"Imported {file} as session [bold]{imported}[/]. See it with: rewards-api info {imported}",
                  highlight=False)


users_app = typer.Typer(cls=_Group, help="The people who may use this server besides you: each has a token "
                        "and sessions of their own.", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _users(ctx: typer.Context) -> UserRegistry:
    from .users import UserRegistry

    return UserRegistry(_store(ctx).home)


@command("add", users_app)
def users_add(ctx: typer.Context, name: Annotated[str, typer.Argument(help="User name: lower-case letters, "
                                                                     "digits, '_' or '-'.")]) -> None:
    """Add a user and print their token (shown once: only its hash is kept)."""
    with user_errors():
        token = _users(ctx).add(name)
    console.print(f"Added user [bold]{name}[/]. Their token (shown only now; give it to them):",
                  highlight=False)
    print(token)


@command("list", users_app)
def users_list(ctx: typer.Context) -> None:
    """List the users (not their tokens: only hashes are kept)."""
    from .store import SessionStore

    with user_errors():
        everyone = _users(ctx).list()
    if not everyone:
        console.print("No users yet: only the server's token works. Add one: rewards-api users add NAME")
        return
    table = Table(title=f"users of {_store(ctx).home}")
    for column in ("user", "added", "sessions", "folder"):
        table.add_column(column)
    for user in everyone:
        sessions = SessionStore(user.home).list_sessions()
        table.add_row(user.name, user.created, str(len(sessions)), str(user.home))
    console.print(table)


@command("remove", users_app)
def users_remove(ctx: typer.Context, name: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Revoke a user's token at once; their sessions are kept on disk."""
    with user_errors():
        removed = _users(ctx).remove(name)
    console.print(f"Removed user [bold]{name}[/]: their token no longer works. Their sessions are kept in "
                  f"{removed.home}", highlight=False)


@command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8000,
    token: Annotated[str | None, typer.Option(help="The token clients must send (default: $REWARDS_TOKEN, "
                                              "else one kept in the home folder).")] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="No token (loopback only), for the original "
                                          "UI.")] = False,
    max_jobs: Annotated[int | None, typer.Option(help="Trainings at once (default: the cores).")] = None,
    cors_origin: Annotated[list[str] | None, typer.Option(metavar="ORIGIN", help="Also allow this browser "
                                                          "origin, e.g. http://example.test:8080 (repeat for "
                                                          "more; the original UI's localhost and 127.0.0.1 "
                                                          "on 3000 and 5173 are always allowed).")] = None,
    ui_metrics_file: Annotated[Path | None, typer.Option(metavar="FILE", help="Keep this JSON file a copy of "
                                                         "the running session's training_metrics.json, for "
                                                         "the original UI's live chart: give its "
                                                         "src/assets/temp.json (off by default).")] = None,
    s3_bucket: S3Bucket = None,
    s3_endpoint_url: S3EndpointUrl = None,
    s3_region: S3Region = None,
) -> None:
    """Start the rewards server: the original /api/v1 API, with docs at /docs."""
    import uvicorn

    from .config import Settings, server_token
    from .server.app import create_app

    overrides: dict[str, Any] = {"home": _store(ctx).home, "host": host, "port": port, "no_auth": no_auth}
    for name, value in (("token", token), ("max_jobs", max_jobs), ("cors_origins", cor_list(cors_origin)),
                        ("s3_bucket", s3_bucket), ("s3_endpoint_url", s3_endpoint_url),
                        ("s3_region", s3_region), ("ui_metrics_file", ui_metrics_file)):
        if value is not None:
            overrides[name] = value
    with user_errors(SETTINGS_FLAGS):
        settings = Settings(**overrides)
        settings.check()
        settings.check_home()
        settings.check_ui_metrics_file()
        secret = None if settings.no_auth else server_token(settings)
        application = create_app(settings, secret)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    console.print(f"rewards server on {url}  (web lab: {url} · API docs: {url}docs)", highlight=False)
    console.print(f"  sessions in {settings.home}", highlight=False)
    if settings.s3_bucket:
        storage = f" at {settings.s3_endpoint_url}" if settings.s3_endpoint_url else ""
        console.print(f"  models pushed to s3://{settings.s3_bucket}{storage}", highlight=False)
    if settings.ui_metrics_file:
        console.print(f"  the running session's scores kept in {settings.ui_metrics_file}", highlight=False)
    if secret is None:
        console.print("  auth is OFF (--no-auth): only this machine can reach it", highlight=False)
    else:
        console.print(f"  open the web lab, signed in: {url}?token={secret}", highlight=False)
        console.print("  send it as 'Authorization: Bearer <token>' or '?token=<token>'", highlight=False)
    from .server.log_queue import queued_logging

    config = uvicorn.Config(application, host=host, port=port, log_level="info")  # configures logging
    with queued_logging():  # a log stream nobody reads never blocks the event loop
        uvicorn.Server(config).run()


def cor_list(origins: list[str] | None) -> list[str] | None:
    return list(origins) if origins else None


def start_rewards_server() -> None:
    """The original package's command name: ``start-rewards-server`` is ``rewards-api serve``."""
    app(["serve", *sys.argv[1:]])


if __name__ == "__main__":  # pragma: no cover
    app()
