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
    LEARNING_ALGORITHMS,
    LOSS_FUNCTIONS,
    MAX_CAR_SPEED,
    OPTIMIZERS,
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

HELP = {
    "learning_algorithm": "Deep Q-learning: a network learns the value of each move from the rewards.",
    "loss_fn": "How the network's error is measured: mse squares it, huber is gentler on outliers.",
    "optimizer": "How the weights are nudged after each batch; adam is a safe default.",
    "learning_rate": "How big each nudge is: too big and learning wobbles, too small and it crawls.",
    "hidden": "Neurons per hidden layer, comma-separated: 9 is small and quick, '32, 32' can learn more.",
    "num_episodes": "How many drives (from the start line until a crash or a lap) to learn from.",
    "gamma": "How much future rewards count against immediate ones (0 to 1; 0.9 looks ahead a little).",
    "epsilon": "Per cent of random moves at the start, to explore; it falls as the car learns.",
    "car_speed": "Frames per second of the live video (the training itself runs at full speed).",
}


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
        inputs and outputs."""
        if not hasattr(self, "shape"):  # the car's first draw, before the network's step exists
            return
        shape = self.car_shape()
        if shape is not None:
            default = hidden_text(shape.default())
            field = self.fields["hidden"]
            if self.network_default is None or field.value == self.network_default:
                field.value = default
            self.network_default = default
            what = "the 5 radars" if shape.action_space == "classic" else "the 5 radars and the speed"
            self.shape.text = (f"For this car the network takes {shape.inputs} inputs ({what}) and gives "
                               f"{shape.outputs} outputs (one per action).")

    def after_car(self) -> None:
        if self.car.check():
            self.stepper.next()

    # ----- 4. network and training -----------------------------------------------------------------------
    def model_step(self) -> None:
        with ui.step("Network and training"):
            ui.label("The original's defaults are a good start.").classes("text-sm")
            self.fields: dict[str, Any] = {}
            with ui.element("div").classes("grid grid-cols-1 md:grid-cols-2 gap-x-6 gap-y-2 w-full"):
                self.field("learning_algorithm", ui.select(list(LEARNING_ALGORITHMS), label="Algorithm",
                                                           value=TrainingParams().learning_algorithm))
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
            self.shape = ui.label().classes("text-xs text-gray-500").props('data-testid="network-shape"')
            self.car_changed()
            self.model_error = ui.label().classes("text-negative").props('data-testid="model-error"')
            with ui.stepper_navigation():
                ui.button("Next", on_click=self.after_model).props('data-testid="next-model"')
                ui.button("Back", on_click=self.stepper.previous).props("flat")

    def field(self, name: str, element: Any) -> None:
        self.fields[name] = element
        element.classes("w-full").props(f'data-testid="{name}"')
        with element.add_slot("hint"):
            ui.label(HELP[name])
        element.props("bottom-slots")

    def agent_params(self) -> dict[str, Any]:
        """The network and training fields as the API takes them; ValueError with the fix if one is wrong."""
        values = {name: self.fields[name].value for name in
                  ("loss_fn", "optimizer", "learning_rate", "num_episodes", "gamma", "epsilon")}
        if values["num_episodes"] is not None and float(values["num_episodes"]).is_integer():
            values["num_episodes"] = int(values["num_episodes"])
        shape = self.car_shape()
        if shape is None:
            raise ValueError("the car's actions are not valid: correct them in the Car step")
        hidden = parse_hidden(self.fields["hidden"].value)
        values["model_configuration"] = configuration_from_hidden(hidden, shape.inputs, shape.outputs)
        try:  # the API's own parameter model, checking the network against the car: the same rules and words
            AgentParams.model_validate(values, context=shape.context())
        except pydantic.ValidationError as exc:
            raise ValueError("; ".join(problem["message"] for problem in validation_errors(exc))) from None
        return values

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
        training = {"session_id": name, "learning_algorithm": self.fields["learning_algorithm"].value,
                    "enable_wandb": False, "reward_function": self.editor.value}
        for path, body in (("/write_env_params", env), ("/write_agent_params", {"session_id": name, **agent}),
                           ("/write_training_params", training)):
            if await attempt(self.lab.call("POST", path, json=body), f"save {name}") is None:
                return
        ui.notify(f"{name} created", type="positive")
        ui.navigate.to(f"/models/{name}/train")
