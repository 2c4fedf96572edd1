"""The ``rewards-api`` command line: the whole loop without a server.

    rewards-api [--home DIR] create SESSION [--track 1] [--model "[[5, 9], [9, 3]]"] [--reward-file F] ...
    rewards-api [--home DIR] train SESSION          # live progress bar; Ctrl-C stops and keeps the model
    rewards-api [--home DIR] evaluate SESSION --mode evaluation --track 1 [--trials 5] [--json]
    rewards-api [--home DIR] sessions
    rewards-api [--home DIR] delete SESSION
    rewards-api [--home DIR] users add NAME | users list | users remove NAME
"""

from __future__ import annotations

import json
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pydantic
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .envs.reward import DEFAULT_REWARD_SOURCE
from .params import REWARD_CHECKED, AgentParams, EnvParams, TrainingParams, first_error_message
from .server.reward_check import check_reward_source
from .store import SessionError, SessionStore
from .users import UserRegistry

if TYPE_CHECKING:
    from .runs.events import Event
    from .runs.train import Trainer

# PyTorch takes seconds to import: only `train` and `evaluate` load the learning engine.
DEFAULT_TRIALS = 5
DEFAULT_MODEL = "[[5, 9], [9, 3]]"

app = typer.Typer(
    help="rewards: write a reward function, train a car to race, evaluate it. Sessions live in "
    "$REWARDS_HOME (default ~/.rewards_ai).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """Print a user error (what is wrong and how to fix it) and exit."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Any:
    """Turn the errors a user can cause into one clear line instead of a traceback."""
    try:
        yield
    except pydantic.ValidationError as exc:
        fail(first_error_message(exc))
    except (SessionError, ValueError) as exc:
        fail(str(exc))
    except RuntimeError as exc:
        from .runs.evaluate import ModelNotTrained

        if not isinstance(exc, ModelNotTrained):
            raise
        fail(str(exc))


@app.callback()
def main(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option("--home", help="Folder of the sessions "
                                              "(default: $REWARDS_HOME or ~/.rewards_ai).")] = None,
) -> None:
    ctx.obj = SessionStore(home)


def _store(ctx: typer.Context) -> SessionStore:
    return ctx.obj


@app.command()
def create(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Session id: letters, digits and underscores.")],
    track: Annotated[int, typer.Option(help="Training track, 1-3.")] = 1,
    car_speed: Annotated[int, typer.Option(help="Frames per second of the live stream, 1-60.")] = 20,
    model: Annotated[str, typer.Option(help="Q-network layers as JSON [[in, out], ...].")] = DEFAULT_MODEL,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate, > 0 and <= 1.5.")] = 0.01,
    loss: Annotated[str, typer.Option(help="mse, rmse, mae or huber.")] = "mse",
    optimizer: Annotated[str, typer.Option(help="adam, rmsprop or adagrad.")] = "adam",
    gamma: Annotated[float, typer.Option(help="Discount: a fraction 0-1 or a percentage.")] = 0.9,
    epsilon: Annotated[float, typer.Option(help="Starting exploration: fraction or percentage.")] = 20,
    episodes: Annotated[int, typer.Option(help="Episodes to train, 1-100000.")] = 700,
    reward_file: Annotated[Path | None, typer.Option(help="Python file defining reward_function(params); "
                                                     "default: +1 while on the track.")] = None,
) -> None:
    """Create a session with its parameters (the original UI's defaults unless given)."""
    store = _store(ctx)
    with user_errors():
        source = DEFAULT_REWARD_SOURCE
        if reward_file is not None:
            try:
                source = reward_file.read_text(encoding="utf-8")
            except OSError as exc:
                fail(f"--reward-file {reward_file}: {exc.strerror}; give the path of a Python file")
        # Every parameter is checked before anything is written: a mistake leaves no half-made session.
        env = EnvParams(environment_world=track, car_speed=car_speed)
        agent = AgentParams(model_configuration=model, learning_rate=lr, loss_fn=loss, optimizer=optimizer,
                            gamma=_plain(gamma), epsilon=_plain(epsilon), num_episodes=episodes)
        check_reward_source(source)  # in a child process with CPU and memory limits, like the server
        training = TrainingParams.model_validate({"reward_function": source}, context=REWARD_CHECKED)
        created = store.create(session)
        store.write_env_params(session, env)
        store.write_agent_params(session, agent)
        store.write_training_params(session, training)
    console.print(f"Created session [bold]{session}[/] in {created['dir_paths']['session_root_dir']}")
    console.print(f"  track {track} · model {model} · lr {lr} · {loss} · {optimizer} · gamma {_plain(gamma)} "
                  f"· epsilon {_plain(epsilon)} · {episodes} episodes")


def _plain(value: float) -> float | int:
    """90.0 -> 90: keep the numbers the way the user typed them in the session files."""
    return int(value) if float(value).is_integer() else value


@app.command()
def train(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Session id.")],
    cars: Annotated[int, typer.Option(help="Cars driving at once.", min=1, max=4096)] = 64,
    tracks: Annotated[str | None, typer.Option(help="Train on these tracks at once, e.g. 1,2,3 "
                                               "(default: the session's track).")] = None,
    seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    restart: Annotated[bool, typer.Option(help="Start a new model instead of resuming.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Train the session's agent with a live progress bar. Ctrl-C stops and keeps what was learned."""
    from .runs.events import EpisodeFinished
    from .runs.train import Trainer, TrainingError, TrainingOptions

    store = _store(ctx)
    with user_errors():
        track_list = tuple(_track(t) for t in tracks.split(",")) if tracks else None
        trainer = Trainer(store, session, TrainingOptions(num_cars=cars, tracks=track_list, seed=seed,
                                                          restart=restart, max_seconds=seconds))
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("training", total=trainer.setup.config.num_episodes, status="starting")

        def show(event: Event) -> None:
            if isinstance(event, EpisodeFinished):
                rate = event.steps / max(event.elapsed, 1e-9)
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
    rate = result.steps / max(result.elapsed, 1e-9)
    console.print(f"Training {how}: {result.episodes} episodes, record {record}, "
                  f"{result.steps:,} steps in {result.elapsed:.1f} s ({rate:,.0f} steps/s). "
                  f"Model saved in {store.paths(session).model}")


def _track(text: str) -> int | str:
    text = text.strip()
    return int(text) if text.isdigit() else text


@contextmanager
def _stop_on_ctrl_c(trainer: Trainer) -> Any:
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


@app.command("evaluate")
def evaluate_command(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Session id.")],
    mode: Annotated[str, typer.Option(help="training or evaluation.")] = "training",
    track: Annotated[str, typer.Option(help="Track: training 1-3, evaluation 1, or random:SEED.")] = "1",
    trials: Annotated[int, typer.Option(help="Trials to run.", min=1, max=100)] = DEFAULT_TRIALS,
    as_json: Annotated[bool, typer.Option("--json", help="Print the track's metrics as JSON.")] = False,
) -> None:
    """Evaluate the session's best model with greedy trials; records evaluation_metrics.json."""
    from .runs.evaluate import evaluate

    store = _store(ctx)
    with user_errors():
        if mode not in ("training", "evaluation"):
            fail(f"--mode {mode!r} is not valid: use training or evaluation")
        metrics = evaluate(store, session, mode=mode, track=_track(track), num_trials=trials)
    if as_json:
        sys.stdout.write(json.dumps(metrics) + "\n")
        return
    table = Table(title=f"{session} · {mode} track {track}")
    for key in metrics:
        table.add_column(key.replace("_", " "))
    table.add_row(*(f"{value:g}" if isinstance(value, float) else str(value) for value in metrics.values()))
    console.print(table)


@app.command()
def sessions(ctx: typer.Context) -> None:
    """List the sessions with their track, model and training record."""
    store = _store(ctx)
    ids = store.list_sessions()
    if not ids:
        console.print(f"No sessions in {store.home}. Create one: rewards-api create my_session")
        return
    table = Table(title=f"sessions in {store.home}")
    for column in ("session", "track", "model", "episodes", "record", "last trained"):
        table.add_column(column)
    for session in ids:
        with user_errors():
            everything = store.all_params(session)
            history = store.read(session, "model_history")
        trained = history.get("last_trained") or {}
        table.add_row(
            session,
            str(everything["env_params"].get("environment_world", "-")),
            str(everything["agent_params"].get("model_configuration", "-")),
            str(len(everything["training_metrics"].get("plot_scores", []))),
            str(trained.get("record", "-")),
            f"{trained['date']} {trained['time'][:8]}" if trained else "never",
        )
    console.print(table)


@app.command()
def delete(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Session id.")],
) -> None:
    """Delete a session and everything in it."""
    with user_errors():
        _store(ctx).delete(session)
    console.print(f"Deleted session {session}")


users_app = typer.Typer(help="The people who may use this server besides you: each has a token and sessions "
                        "of their own.", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _users(ctx: typer.Context) -> UserRegistry:
    return UserRegistry(_store(ctx).home)


@users_app.command("add")
def users_add(ctx: typer.Context, name: Annotated[str, typer.Argument(help="User name: lower-case letters, "
                                                                     "digits, '_' or '-'.")]) -> None:
    """Add a user and print their token (shown once: only its hash is kept)."""
    with user_errors():
        token = _users(ctx).add(name)
    console.print(f"Added user [bold]{name}[/]. Their token (shown only now; give it to them):",
                  highlight=False)
    print(token)


@users_app.command("list")
def users_list(ctx: typer.Context) -> None:
    """List the users (not their tokens: only hashes are kept)."""
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


@users_app.command("remove")
def users_remove(ctx: typer.Context, name: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Revoke a user's token at once; their sessions are kept on disk."""
    with user_errors():
        removed = _users(ctx).remove(name)
    console.print(f"Removed user [bold]{name}[/]: their token no longer works. Their sessions are kept in "
                  f"{removed.home}", highlight=False)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8000,
    token: Annotated[str | None, typer.Option(help="The token clients must send (default: $REWARDS_TOKEN, "
                                              "else one kept in the home folder).")] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="No token (loopback only), for the original "
                                          "UI.")] = False,
    max_jobs: Annotated[int | None, typer.Option(help="Trainings at once (default: the cores).")] = None,
    cors_origin: Annotated[list[str] | None, typer.Option(help="Allow this browser origin (repeat the "
                                                          "option for more).")] = None,
) -> None:
    """Start the rewards server: the original /api/v1 API, with docs at /docs."""
    import uvicorn

    from .config import Settings, server_token
    from .server.app import create_app

    overrides: dict[str, Any] = {"home": _store(ctx).home, "host": host, "port": port, "no_auth": no_auth}
    for name, value in (("token", token), ("max_jobs", max_jobs), ("cors_origins", cor_list(cors_origin))):
        if value is not None:
            overrides[name] = value
    with user_errors():
        settings = Settings(**overrides)
        settings.check()
        settings.check_home()
        secret = None if settings.no_auth else server_token(settings)
        application = create_app(settings, secret)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    console.print(f"rewards server on {url}  (API docs: {url}docs)", highlight=False)
    console.print(f"  sessions in {settings.home}", highlight=False)
    if secret is None:
        console.print("  auth is OFF (--no-auth): only this machine can reach it", highlight=False)
    else:
        console.print(f"  token: {url}?token={secret}", highlight=False)
        console.print("  send it as 'Authorization: Bearer <token>' or '?token=<token>'", highlight=False)
    uvicorn.run(application, host=host, port=port, log_level="info")


def cor_list(origins: list[str] | None) -> list[str] | None:
    return list(origins) if origins else None


def start_rewards_server() -> None:
    """The original package's command name: ``start-rewards-server`` is ``rewards-api serve``."""
    app(["serve", *sys.argv[1:]])


if __name__ == "__main__":  # pragma: no cover
    app()
