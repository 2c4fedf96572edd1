"""Creating a model in five steps: name, track, car, network and training, reward function.

The rules are the server's: the name is checked with the store's own validator, the hyper-parameters
with the API's own parameter model, and the reward function by the API (which runs it in a sandbox on
sample cars and names the line of any error). The session is written through the API at the end.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic
from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from ..envs.reward import EXAMPLE_REWARDS, PARAM_DESCRIPTIONS
from ..params import (
    LOSS_FUNCTIONS,
    MAX_CAR_SPEED,
    OPTIMIZERS,
    PPO_DEFAULTS,
    PPO_KEYS,
    AgentParams,
    CarShape,
    EnvParams,
    TrainingParams,
    configuration_from_hidden,
    hidden_sizes,
    validation_errors,
)
from ..store import SESSION_ID_RULE, InvalidSessionId, validate_session_id
from .car import CarPicker
from .client import ApiError, LabClient
from .frame import (
    TRAINING_TRACKS,
    attempt,
    difficulty_badge,
    load_catalogue,
    open_page,
    page_body,
    track_facts,
    track_label,
)

DEFAULT_AGENT = AgentParams()
DEFAULT_ENV = EnvParams()

ALGORITHMS: dict[str, tuple[str, str]] = {
    "dqn": ("DQN", "Learns the value of each action and picks the best: the original's algorithm."),
    "ppo": ("PPO", "Learns a policy directly, for every car including the continuous one: DeepRacer's "
                   "algorithm."),
}
"""The learning algorithms the wizard offers (training_params.json ``learning_algorithm``): (name, what)."""
DQN_ONLY_REASON = "Not for the continuous car: DQN picks from a list of actions."
ALGORITHM_DEFAULTS: dict[str, dict[str, Any]] = {
    "dqn": {"learning_rate": DEFAULT_AGENT.learning_rate, "num_episodes": DEFAULT_AGENT.num_episodes},
    "ppo": dict(PPO_DEFAULTS),
}
"""What a new session of each algorithm is given (see params.PPO_DEFAULTS): filled into the fields that the
user has not changed when the algorithm changes."""

HELP = {
    "loss_fn": "How the network's error is measured: mse squares it, huber is gentler on outliers.",
    "optimizer": "How the weights are nudged after each batch; adam is a safe default.",
    "learning_rate": "How big each nudge is: too big and learning wobbles, too small and it crawls.",
    "hidden": "Neurons per hidden layer, comma-separated: 9 is small and quick, '32, 32' can learn more.",
    "num_episodes": "How many drives (from the start line until a crash or a lap) to learn from.",
    "gamma": "How much future rewards count against immediate ones (0 to 1; 0.9 looks ahead a little).",
    "epsilon": "Per cent of random moves at the start, to explore; it falls as the car learns (DQN only).",
    "car_speed": "Frames per second of the live video (the training itself runs at full speed).",
    "normalize_rewards": "divide rewards by the return's running spread, so a reward of 1,000,000 a step "
                         "learns like one of 1",
    "batch_size": "Steps in each gradient step, from 16 to 65536: an update learns in batches of this size.",
    "num_epochs": "Passes over each rollout in an update, 1 to 100: more learns more from it, or overshoots.",
    "beta_entropy": "Bonus for keeping the choices varied, from 0 to 1: more explores for longer.",
    "rollout_length": "Steps each car drives between two updates (4 to 4096); an update learns from all "
                      "cars' steps.",
    "clip_range": "How far one update may move the policy: above 0, at most 1 (0.2 is usual).",
    "gae_lambda": "How far ahead an action's advantage looks, from 0 to 1 (0.95 is usual).",
}

PPO_FIELDS: dict[str, tuple[str, float]] = {
    "batch_size": ("Batch size", 256), "num_epochs": ("Epochs per update", 1),
    "beta_entropy": ("Entropy bonus (beta)", 0.005), "rollout_length": ("Rollout length (steps per car)", 8),
    "clip_range": ("Clip range", 0.05), "gae_lambda": ("GAE lambda", 0.01),
}
"""PPO's hyper-parameters (agent_params.json keys): readable label and the step of the field."""
INTEGER_KEYS = ("num_episodes", "batch_size", "num_epochs", "rollout_length")
FIELD_OF_PARAMETER = {"model_configuration": "hidden"}
"""A wizard field by the parameter a server message names, where the two differ."""


def hidden_text(configuration: Any) -> str:
    """The hidden layer sizes of a ``model_configuration`` ("9" for ``[[5, 9], [9, 3]]``), whatever the car's
    inputs and outputs."""
    layers = configuration
    for _ in range(2):  # a JSON text, or one encoded twice (see params.MAX_LAYERS_DECODES)
        if isinstance(layers, str):
            layers = json.loads(layers)
    return ", ".join(str(size) for size in hidden_sizes(layers))


def parse_hidden(text: str) -> list[int]:
    """``"16, 16"`` as ``[16, 16]``; ValueError naming the fix for anything else."""
    parts = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    if not all(part.isdigit() for part in parts):
        raise ValueError("hidden layer sizes: write whole numbers separated by commas, such as 16, 16")
    return [int(part) for part in parts]


def whole(name: str, value: Any) -> Any:
    """A number field's value as the API takes it: ``4096`` for a whole-number key given as ``4096.0``."""
    if name in INTEGER_KEYS and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@ui.page("/new")
async def new_model_page(request: Request) -> RedirectResponse | None:
    lab = await open_page(request, "New model")
    if isinstance(lab, RedirectResponse):
        return lab
    existing = set(await attempt(lab.session_ids(), "list your models") or [])
    catalogue = await load_catalogue(lab)
    with page_body():
        ui.label("New model").classes("text-2xl font-bold")
        Wizard(lab, existing, catalogue)
    return None


class Wizard:
    def __init__(self, lab: LabClient, existing: set[str],
                 catalogue: dict[tuple[str, str], dict[str, Any]] | None = None) -> None:
        self.lab = lab
        self.existing = existing
        self.catalogue = catalogue or {}
        self.created: str | None = None  # set once the session exists, so that a retry does not re-create it
        self.track = DEFAULT_ENV.environment_world
        with ui.stepper().props("vertical header-nav=false").classes("w-full") as self.stepper:
            self.name_step()
            self.track_step()
            self.car_step()
            self.model_step()
            self.reward_step()

    # ----- 1. name ---------------------------------------------------------------------------------------
    def name_step(self) -> None:
        with ui.step("Name"):
            ui.label("A name to find it by in your models and on the leaderboard.").classes("text-sm")
            self.name = ui.input("Model name", placeholder="my_first_car",
                                 validation=self.name_problem).classes("w-80") \
                .props('autofocus data-testid="name"')
            ui.label(f"Names {SESSION_ID_RULE.removeprefix('use ')}: no spaces.") \
                .classes("text-xs text-gray-500")
            with ui.stepper_navigation():
                ui.button("Next", on_click=self.after_name).props('data-testid="next-name"')

    def name_problem(self, value: str) -> str | None:
        try:
            validate_session_id(value)
        except InvalidSessionId:
            return f"Not a valid name: {SESSION_ID_RULE}"
        if value in self.existing and value != self.created:
            return f"You already have a model named {value}: pick another name"
        return None

    def after_name(self) -> None:
        if self.name.validate():
            self.stepper.next()

    # ----- 2. track --------------------------------------------------------------------------------------
    def track_step(self) -> None:
        with ui.step("Track"):
            ui.label("The track the car learns on. It is evaluated later on a track it has never seen.") \
                .classes("text-sm")
            self.track_cards: dict[int | str, ui.card] = {}
            with ui.element("div").classes("grid grid-cols-1 sm:grid-cols-3 gap-3 w-full"):
                for number in TRAINING_TRACKS:
                    self.track_card(number, f"tracks/track-{number}.png")
            named = [key for mode, key in self.catalogue if mode == "training" and not key.isdigit()]
            if named:
                ui.label("More tracks, for racing: hairpins, chicanes, long straights into braking zones, "
                         "narrower asphalt.").classes("text-sm mt-2")
                with ui.element("div").classes("grid grid-cols-2 sm:grid-cols-4 gap-3 w-full"):
                    for name in named:
                        self.track_card(name, f"tracks/{name}.png")
            if self.catalogue:
                ui.label("The reference lap is the fastest lap the racing car's grip, acceleration and "
                         "brakes allow: the time to race against.") \
                    .classes("text-xs text-gray-500")
            self.pick_track(self.track)
            self.car_speed = ui.slider(min=1, max=MAX_CAR_SPEED, value=DEFAULT_ENV.car_speed) \
                .props("label-always").classes("w-80 mt-8")
            ui.label(f"Video speed (frames per second): {HELP['car_speed']}").classes("text-xs text-gray-500")
            with ui.stepper_navigation():
                ui.button("Next", on_click=self.stepper.next).props('data-testid="next-track"')
                ui.button("Back", on_click=self.stepper.previous).props("flat")

    def track_card(self, key: int | str, picture: str) -> None:
        """A track to pick: its picture, name, difficulty and reference lap (from the catalogue)."""
        entry = self.catalogue.get(("training", str(key)))
        with ui.card().classes("cursor-pointer p-2 gap-1 track-choice") \
                .props(f'data-testid="track-{key}"') \
                .on("click", lambda key=key: self.pick_track(key)) as card:
            ui.image(self.lab.url(picture)).classes("w-full rounded")
            with ui.row().classes("w-full justify-center items-center gap-2"):
                ui.label(track_label("training", key)).classes("font-medium")
                difficulty_badge(entry)
            if entry:
                ui.label(track_facts({**entry, "difficulty": None})) \
                    .classes("text-xs text-gray-500 text-center w-full") \
                    .props(f'data-testid="track-{key}-facts"')
        self.track_cards[key] = card

    def pick_track(self, key: int | str) -> None:
        self.track = key
        for other, card in self.track_cards.items():
            card.classes(add="chosen" if other == key else "", remove="" if other == key else "chosen")

    # ----- 3. car ----------------------------------------------------------------------------------------
    def car_step(self) -> None:
        self.network_default: str | None = None  # the hidden sizes the car's default network has
        with ui.step("Car"):
            ui.label("The car and what it can do: the classic car of the original, or a racing car whose "
                     "speed your reward function has to earn.").classes("text-sm")
            self.car = CarPicker(self.car_changed)
            with ui.stepper_navigation():
                ui.button("Next", on_click=self.after_car).props('data-testid="next-car"')
                ui.button("Back", on_click=self.stepper.previous).props("flat")

    def car_shape(self) -> CarShape | None:
        """What the chosen car asks of the network (inputs, outputs); ``None`` while its actions are wrong."""
        space = self.car.car
        try:
            return CarShape.of(space, self.car.actions if space == "discrete" else None)
        except ValueError:
            return None

    def car_changed(self) -> None:
        """The network follows the car: its default hidden layers (unless the user changed them) and its
        inputs and outputs; the continuous car makes PPO the algorithm (DQN cannot drive it)."""
        if not hasattr(self, "shape"):  # the car's first draw, before the network's step exists
            return
        continuous = self.car.car == "continuous"
        if continuous and self.algorithm != "ppo":
            self.pick_algorithm("ppo")
        self.algorithm_cards["dqn"].classes(add="opacity-60" if continuous else "",
                                            remove="" if continuous else "opacity-60")
        self.dqn_reason.set_visibility(continuous)
        shape = self.car_shape()
        if shape is not None:
            default = hidden_text(shape.default())
            field = self.fields["hidden"]
            if self.network_default is None or field.value == self.network_default:
                field.value = default
            self.network_default = default
            what = "the 5 radars" if shape.action_space == "classic" else "the 5 radars and the speed"
            gives = "the steering angle and the speed" if continuous else "one per action"
            critic = (" PPO's critic has the same hidden layers and one output (the value of where the car "
                      "is)." if self.algorithm == "ppo" else "")
            self.shape.text = (f"For this car the network takes {shape.inputs} inputs ({what}) and gives "
                               f"{shape.outputs} outputs ({gives}).{critic}")

    def after_car(self) -> None:
        if self.car.check():
            self.stepper.next()

    # ----- 4. network and training -----------------------------------------------------------------------
    def model_step(self) -> None:
        self.algorithm = TrainingParams().learning_algorithm
        with ui.step("Network and training"):
            ui.label("The algorithm that learns, its network and its training. The defaults are a good start."
                     ).classes("text-sm")
            self.algorithm_cards: dict[str, ui.card] = {}
            with ui.element("div").classes("grid grid-cols-1 md:grid-cols-2 gap-3 w-full") \
                    .props('data-testid="learning_algorithm"'):
                for key, (title, text) in ALGORITHMS.items():
                    with ui.card().classes("cursor-pointer p-3 gap-1 car-choice algorithm-choice") \
                            .props(f'data-testid="algorithm-{key}"') \
                            .on("click", lambda key=key: self.choose_algorithm(key)) as card:
                        ui.label(title).classes("font-medium")
                        ui.label(text).classes("text-xs text-gray-600")
                        if key == "dqn":
                            self.dqn_reason = ui.label(DQN_ONLY_REASON).classes("text-xs text-negative") \
                                .props('data-testid="algorithm-dqn-reason"')
                            self.dqn_reason.set_visibility(False)
                    self.algorithm_cards[key] = card
            self.fields: dict[str, Any] = {}
            with ui.element("div").classes("grid grid-cols-1 md:grid-cols-2 gap-x-6 gap-y-2 w-full"):
                self.field("loss_fn", ui.select(list(LOSS_FUNCTIONS), label="Loss",
                                                value=DEFAULT_AGENT.loss_fn))
                self.field("optimizer", ui.select(list(OPTIMIZERS), label="Optimizer",
                                                  value=DEFAULT_AGENT.optimizer))
                self.field("learning_rate", ui.number("Learning rate", value=DEFAULT_AGENT.learning_rate,
                                                      step=0.001, format="%g"))
                self.field("hidden", ui.input("Hidden layer sizes",
                                              value=hidden_text(DEFAULT_AGENT.model_configuration)))
                self.field("num_episodes", ui.number("Episodes", value=DEFAULT_AGENT.num_episodes, step=50,
                                                     precision=0))
                self.field("gamma", ui.number("Gamma (discount)", value=DEFAULT_AGENT.gamma, step=0.01,
                                              format="%g"))
                self.field("epsilon", ui.number("Epsilon (exploration, %)", value=DEFAULT_AGENT.epsilon,
                                                step=1, format="%g"))
            with ui.column().classes("gap-0"):
                self.fields["normalize_rewards"] = ui.checkbox(
                    "Normalize rewards", value=DEFAULT_AGENT.normalize_rewards) \
                    .props('data-testid="normalize_rewards"')
                ui.label(HELP["normalize_rewards"].capitalize() + ".").classes("text-xs text-gray-500 ml-10")
            self.ppo_fields = ui.column().classes("w-full gap-1").props('data-testid="ppo-fields"')
            with self.ppo_fields:
                ui.label("PPO: each car drives a rollout, then the policy and its critic learn from all "
                         "cars' steps, a clipped step at a time.").classes("text-sm mt-2")
                with ui.element("div").classes("grid grid-cols-1 md:grid-cols-2 gap-x-6 gap-y-2 w-full"):
                    for key, (label, step) in PPO_FIELDS.items():
                        shown = {"precision": 0} if key in INTEGER_KEYS else {"format": "%g"}
                        self.field(key, ui.number(label, value=AgentParams.model_fields[key].default,
                                                  step=step, **shown))
            self.shape = ui.label().classes("text-xs text-gray-500").props('data-testid="network-shape"')
            self.model_error = ui.label().classes("text-negative").props('data-testid="model-error"')
            self.show_algorithm()
            self.car_changed()
            with ui.stepper_navigation():
                ui.button("Next", on_click=self.after_model).props('data-testid="next-model"')
                ui.button("Back", on_click=self.stepper.previous).props("flat")

    def field(self, name: str, element: Any) -> None:
        self.fields[name] = element
        element.classes("w-full").props(f'data-testid="{name}"')
        with element.add_slot("hint"):
            ui.label(HELP[name])
        element.props("bottom-slots")
        if name in AgentParams.model_fields:  # the server's word on the value, beside it, as it is typed
            element.validation = lambda value, name=name: self.problem(name, value)

    def problem(self, name: str, value: Any) -> str | None:
        """What the server says of ``value`` for the agent parameter ``name``, or ``None`` if it takes it."""
        try:
            AgentParams.model_validate({name: whole(name, value)})
        except pydantic.ValidationError as exc:
            return "; ".join(problem["message"] for problem in validation_errors(exc))
        return None

    def choose_algorithm(self, algorithm: str) -> None:
        """The user's choice; DQN is not offered for the continuous car."""
        if algorithm == "dqn" and self.car.car == "continuous":
            ui.notify(DQN_ONLY_REASON, type="warning")
            return
        self.pick_algorithm(algorithm)

    def pick_algorithm(self, algorithm: str) -> None:
        """Choose ``algorithm``: its fields shown, and its defaults in the fields the user has not changed."""
        was, self.algorithm = self.algorithm, algorithm
        if was != algorithm:
            for key, value in ALGORITHM_DEFAULTS[algorithm].items():
                if self.fields[key].value == ALGORITHM_DEFAULTS[was][key]:
                    self.fields[key].value = value
        self.show_algorithm()
        self.car_changed()

    def show_algorithm(self) -> None:
        for key, card in self.algorithm_cards.items():
            card.classes(add="chosen" if key == self.algorithm else "",
                         remove="" if key == self.algorithm else "chosen")
        self.ppo_fields.set_visibility(self.algorithm == "ppo")
        self.fields["epsilon"].set_visibility(self.algorithm == "dqn")

    def agent_params(self) -> dict[str, Any]:
        """The network and training fields as the API takes them; ValueError with the fix if one is wrong
        (the fields it is about marked with it). PPO's keys are sent for a PPO session only, and
        ``normalize_rewards`` for DQN only when it is off (a DQN session's file keeps the original keys)."""
        names = ["loss_fn", "optimizer", "learning_rate", "num_episodes", "gamma"]
        if self.algorithm == "ppo":
            names += [*PPO_KEYS, "normalize_rewards"]
        else:
            names.append("epsilon")
            if not self.fields["normalize_rewards"].value:
                names.append("normalize_rewards")
        values = {name: whole(name, self.fields[name].value) for name in names}
        self.fields["hidden"].error = None
        shape = self.car_shape()
        if shape is None:
            raise ValueError("the car's actions are not valid: correct them in the Car step")
        try:
            hidden = parse_hidden(self.fields["hidden"].value)
        except ValueError as exc:
            self.fields["hidden"].error = str(exc)
            raise
        values["model_configuration"] = configuration_from_hidden(hidden, shape.inputs, shape.outputs)
        try:  # the API's own parameter model, checking the network against the car: the same rules and words
            AgentParams.model_validate(values, context=shape.context())
        except pydantic.ValidationError as exc:
            problems = validation_errors(exc)
            self.mark(problems)
            raise ValueError("; ".join(problem["message"] for problem in problems)) from None
        return values

    def mark(self, problems: list[dict[str, Any]]) -> bool:
        """Show each of the server's ``problems`` beside the field it names; whether one named a field of
        this step."""
        marked = False
        for problem in problems:
            parameter = problem.get("parameter")
            field = self.fields.get(FIELD_OF_PARAMETER.get(parameter, parameter))
            if field is not None and hasattr(field, "error"):
                field.error = problem.get("message")
                marked = True
        return marked

    def after_model(self) -> None:
        try:
            self.agent_params()
        except ValueError as exc:
            self.model_error.text = str(exc)
            return
        self.model_error.text = ""
        self.stepper.next()

    # ----- 5. reward function ----------------------------------------------------------------------------
    def reward_step(self) -> None:
        with ui.step("Reward function"):
            ui.label("Python: reward_function(params) returns a number after every step. The car learns to "
                     "do what earns the most.").classes("text-sm")
            with ui.row().classes("gap-2 items-center"):
                ui.label("Start from:").classes("text-sm")
                for title, source in EXAMPLE_REWARDS.items():
                    ui.button(title, on_click=lambda source=source: self.load_example(source)) \
                        .props(f'outline dense no-caps data-testid="example-{title.split()[-1].lower()}"')
            with ui.element("div").classes("grid grid-cols-1 lg:grid-cols-3 gap-4 w-full"):
                with ui.column().classes("lg:col-span-2 gap-2"):
                    self.editor = ui.codemirror(EXAMPLE_REWARDS["Stay alive"], language="Python",
                                                on_change=self.edited) \
                        .classes("w-full h-80 border rounded").props('data-testid="reward-editor"')
                    self.verdict = ui.label().classes("text-sm whitespace-pre-wrap") \
                        .props('data-testid="reward-verdict"')
                with ui.expansion("params reference", icon="menu_book", value=True) \
                        .classes("w-full border rounded text-sm"), \
                        ui.column().classes("gap-1 max-h-72 overflow-auto w-full"):
                    for key, text in PARAM_DESCRIPTIONS.items():
                        with ui.row().classes("gap-1 no-wrap"):
                            ui.label(key).classes("font-mono text-primary")
                            ui.label(text).classes("text-gray-600")
            with ui.stepper_navigation():
                ui.button("Validate", icon="fact_check", on_click=self.validate) \
                    .props('outline data-testid="validate"')
                ui.button("Create model", icon="check", on_click=self.create).props('data-testid="create"')
                ui.button("Back", on_click=self.stepper.previous).props("flat")

    def load_example(self, source: str) -> None:
        self.editor.value = source

    def edited(self) -> None:
        if self.editor.decorations:  # the marked line may not be the error any more
            self.editor.decorations = []
            self.editor.line_tooltips = {}

    def show_problem(self, exc: ApiError) -> None:
        line = exc.line
        self.verdict.classes(replace="text-sm whitespace-pre-wrap text-negative")
        self.verdict.text = (f"Line {line}: " if line else "") + exc.message
        if line is not None and 1 <= line <= self.editor.value.count("\n") + 1:
            self.editor.decorations = [{"kind": "line", "line": line, "class": "reward-error-line"}]
            self.editor.line_tooltips = {line: exc.message}
            self.editor.reveal_line(line)

    async def validate(self) -> bool:
        self.verdict.classes(replace="text-sm text-gray-500")
        self.verdict.text = "Checking…"
        try:
            await self.lab.check_reward(self.editor.value)
        except ApiError as exc:
            self.show_problem(exc)
            return False
        self.edited()
        self.verdict.classes(replace="text-sm text-positive")
        self.verdict.text = "Valid: it ran on sample cars and returned numbers."
        return True

    async def create(self) -> None:
        name = self.name.value
        if self.name_problem(name) is not None:
            self.stepper.set_value("Name")
            self.name.validate()
            return
        if not self.car.check():
            self.stepper.set_value("Car")
            return
        try:
            agent = self.agent_params()
        except ValueError as exc:
            self.stepper.set_value("Network and training")
            self.model_error.text = str(exc)
            return
        if not await self.validate():
            return
        if self.created != name:
            if await attempt(self.lab.call("POST", "/create_session", params={"session_id": name}),
                             f"create {name}") is None:
                return
            self.created = name
            self.existing.add(name)
        env = {"session_id": name, "environment_name": DEFAULT_ENV.environment_name,
               "environment_world": self.track, "mode": "training", "car_speed": int(self.car_speed.value),
               **self.car.env_params()}
        training = {"session_id": name, "learning_algorithm": self.algorithm,
                    "enable_wandb": False, "reward_function": self.editor.value}
        agent = {"session_id": name, **agent}
        for path, body, step in (("/write_env_params", env, "Car"),
                                 ("/write_agent_params", agent, "Network and training"),
                                 ("/write_training_params", training, None)):
            try:
                await self.lab.call("POST", path, json=body)
            except ApiError as exc:
                if step == "Network and training" and self.mark(exc.errors):  # beside the field it names
                    self.model_error.text = exc.message
                    self.stepper.set_value(step)
                    return
                ui.notify(f"Could not save {name}: {exc.message}", type="negative", multi_line=True,
                          timeout=10000, close_button=True)
                if step is not None:
                    self.stepper.set_value(step)
                return
        ui.notify(f"{name} created", type="positive")
        ui.navigate.to(f"/models/{name}/train")
