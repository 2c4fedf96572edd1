"""The ``rewards-api`` command line: the whole loop without a server.

    rewards-api [--home DIR] create SESSION [--track 1] [--model "[[5, 9], [9, 3]]"] [--reward-file F] ...
    rewards-api [--home DIR] train SESSION          # live progress bar; Ctrl-C stops and keeps the model
    rewards-api [--home DIR] evaluate SESSION --mode evaluation --track 1 [--trials 5] [--json]
    rewards-api [--home DIR] sessions
    rewards-api [--home DIR] delete SESSION
    rewards-api [--home DIR] push SESSION --user-id ID --user NAME [--s3-bucket B] [--s3-endpoint-url URL]
    rewards-api [--home DIR] leaderboard [--s3-bucket B] [--json]
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
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .envs.reward import DEFAULT_REWARD_SOURCE
from .params import REWARD_CHECKED, AgentParams, EnvParams, TrainingParams, first_error_message
from .server.reward_check import check_reward_source
from .store import SessionError, SessionStore
from .users import UserRegistry

if TYPE_CHECKING:
    from .config import Settings
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
    track: Annotated[str | None, typer.Option(help="Train on this track this time, e.g. 2 or random:42 "
                                              "(default: the session's track).")] = None,
    tracks: Annotated[str | None, typer.Option(help="Train on these tracks at once, e.g. 1,2,3 "
                                               "(default: the session's track).")] = None,
    seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
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
    from .envs.tracks import get_track

    store = _store(ctx)
    if track is not None and tracks is not None:
        fail(f"--track {track} and --tracks {tracks} cannot be used together: give one track with --track, "
             "or several with --tracks")
    if restart:
        errors.print("--restart is deprecated: use --fresh", highlight=False)
    track_list = tuple(_track(t) for t in tracks.split(",")) if tracks else None
    if track is not None:
        track_list = (_track(track),)
    with user_errors():
        for chosen in track_list or ():
            get_track(chosen)  # a bad track is refused at once, before PyTorch loads
    from .runs.events import EpisodeFinished, TrainingStarted
    from .runs.train import Trainer, TrainingError, TrainingOptions

    with user_errors():
        trainer = Trainer(store, session, TrainingOptions(num_cars=cars, tracks=track_list, seed=seed,
                                                          fresh=fresh or restart, max_seconds=seconds))
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("training", total=trainer.setup.config.num_episodes, status="starting")

        def show(event: Event) -> None:
            if isinstance(event, TrainingStarted):
                how = {"fresh": "A new model", "warm": "Warm start from the session's model",
                       "resumed": "Resuming the interrupted run"}[trainer.start_kind]
                progress.console.print(f"{how} on {', '.join(trainer.track_names)}: episodes "
                                       f"{event.episode + 1}-{event.episodes}", highlight=False)
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


S3Bucket = Annotated[str | None, typer.Option(help="S3 bucket for pushed models and the shared leaderboard "
                                              "(default: $REWARDS_S3_BUCKET). Credentials: the standard AWS "
                                              "chain (AWS_ACCESS_KEY_ID, AWS_PROFILE...).")]
S3EndpointUrl = Annotated[str | None, typer.Option(help="URL of S3-compatible storage, e.g. MinIO's "
                                                   "http://127.0.0.1:9000 (default: "
                                                   "$REWARDS_S3_ENDPOINT_URL, else AWS S3).")]
S3Region = Annotated[str | None, typer.Option(help="The bucket's region (default: $REWARDS_S3_REGION, else "
                                              "the AWS chain's).")]


def _s3_settings(ctx: typer.Context, bucket: str | None, endpoint_url: str | None, region: str | None
                 ) -> Settings:
    """Settings with the S3 options given, the ``REWARDS_S3_*`` variables for the others (checked)."""
    from .config import Settings

    given = {"s3_bucket": bucket, "s3_endpoint_url": endpoint_url, "s3_region": region}
    with user_errors():
        return Settings(home=_store(ctx).home, **{name: value for name, value in given.items()
                                                  if value is not None})


@app.command()
def push(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Session id.")],
    user_id: Annotated[str, typer.Option("--user-id", help="Whose model: its folder in the bucket is "
                                         "Models/<user id>/<session>/.")],
    user: Annotated[str, typer.Option(help="The name shown on the leaderboards.")],
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


@app.command("leaderboard")
def leaderboard_command(
    ctx: typer.Context,
    s3_bucket: S3Bucket = None,
    s3_endpoint_url: S3EndpointUrl = None,
    s3_region: S3Region = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the standings as JSON.")] = False,
) -> None:
    """Rank the evaluated sessions (every user's) by final evaluation score, with laps completed and mean
    progress on the evaluation track; with a bucket, its pushed models too."""
    from .cloud import leaderboard, open_bucket

    settings = _s3_settings(ctx, s3_bucket, s3_endpoint_url, s3_region)
    with user_errors():
        standings, bucket_error = leaderboard(settings.home, (lambda: open_bucket(settings))
                                              if settings.s3_bucket else None)
    if bucket_error:
        errors.print(f"[bold yellow]warning:[/] {bucket_error}", highlight=False)
    if as_json:
        rows = [{"rank": place, **standing.entry()} for place, standing in enumerate(standings, 1)]
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    if not standings:
        console.print("No evaluated sessions yet: rewards-api evaluate SESSION --mode evaluation")
        return
    table = Table(title="leaderboard")
    for column in ("rank", "user", "session", "score", "record", "laps", "progress %", "from"):
        table.add_column(column)
    for place, standing in enumerate(standings, 1):
        table.add_row(str(place), standing.user or "(owner)", standing.session_id, f"{standing.score:g}",
                      *("-" if value is None else f"{value:g}" for value in
                        (standing.record, standing.laps_completed, standing.mean_progress)),
                      standing.source)
    console.print(table)


@app.command()
def info(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Session id.")],
    plot: Annotated[Path | None, typer.Option(help="Also save the score chart to this PNG file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the card as JSON.")] = False,
) -> None:
    """Show a session's model card: dates, model, record, evaluations and runs."""
    from .cards import model_card, session_plot_png

    store = _store(ctx)
    with user_errors():
        card = model_card(store, session)
        if plot is not None:
            png = session_plot_png(store, session)
            try:
                plot.write_bytes(png)
            except OSError as exc:
                fail(f"--plot {plot}: {exc.strerror}; give the path of a PNG file in an existing folder")
    if as_json:
        sys.stdout.write(json.dumps(card) + "\n")
        return
    _print_card(card)
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


def _print_card(card: dict[str, Any]) -> None:
    model = card["model"]
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("created", _when(card["created"]) + ("" if model["configured"] else " (default model)"))
    facts.add_row("last trained", _when(card["last_trained"]))
    facts.add_row("model", f"{model['layers']} · {model['parameters']:,} parameters")
    facts.add_row("saved model", "yes" if card["trained_model"] else "no (train it first)")
    facts.add_row("hyper-parameters", f"{model['loss_fn']} · {model['optimizer']} · lr "
                  f"{model['learning_rate']:g} · gamma {model['gamma']:g} · epsilon {model['epsilon']:g}")
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


@app.command("export")
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


@app.command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A zip archive made by `rewards-api export`.")],
    as_id: Annotated[str | None, typer.Option("--as", help="Import under this session id instead of the "
                                              "archive's.")] = None,
) -> None:
    """Import a session archive as a new session (never over an existing one)."""
    from .archive import import_session

    with user_errors():
        imported = import_session(_store(ctx), file, as_id)
    console.print(f"Imported {file} as session [bold]{imported}[/]. See it with: rewards-api info {imported}",
                  highlight=False)


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
    cors_origin: Annotated[list[str] | None, typer.Option(help="Also allow this browser origin, e.g. "
                                                          "http://example.test:8080 (repeat for more; the "
                                                          "original UI's localhost and 127.0.0.1 on 3000 "
                                                          "and 5173 are always allowed).")] = None,
    ui_metrics_file: Annotated[Path | None, typer.Option(help="Keep this JSON file a copy of the running "
                                                         "session's training_metrics.json, for the "
                                                         "original UI's live chart: give its "
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
    with user_errors():
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
