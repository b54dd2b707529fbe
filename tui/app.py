"""The cfg-tui terminal app: Sample, Train and Evaluate screens over ``core`` and run directories."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from tui.screens.base import AppScreen
from tui.screens.evaluate import EvaluateScreen
from tui.screens.help import HelpScreen
from tui.screens.sample import SampleScreen
from tui.screens.train import TrainScreen
from tui.settings import AppSettings

METRICS = "accuracy, Fréchet distance, diversity"
TRAINING_GOES_ON = "training goes on in its own process"


class CfgTuiApp(App[None]):
    """Sample from a model, train one and watch it, measure it; every action has a key."""

    TITLE = "cfg-tui"
    CSS_PATH = "cfg_tui.tcss"
    MODES = {"train": TrainScreen, "sample": SampleScreen, "evaluate": EvaluateScreen}
    DEFAULT_MODE = "sample"
    # The tooltips are the help screen's words (tui/screens/help.py makes it from the bindings).
    BINDINGS = [
        Binding("ctrl+t", "switch_mode('train')", "Train", priority=True, tooltip="Train screen"),
        Binding("ctrl+s", "switch_mode('sample')", "Sample", priority=True, tooltip="Sample screen"),
        Binding("ctrl+n", "switch_mode('evaluate')", "Eval", priority=True, tooltip=f"Evaluate: {METRICS}"),
        Binding("f1", "help", "Help", tooltip="this help"),
        Binding("question_mark", "help", "Help", show=False, tooltip="this help"),
        # Not in the footer, to leave room at 80 columns; the help screen lists it.
        Binding("ctrl+q", "quit", "Quit", priority=True, show=False, tooltip=f"quit ({TRAINING_GOES_ON})"),
    ]  # fmt: skip

    def __init__(self, settings: AppSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or AppSettings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the key of the screen already shown (it would do nothing), leaving room in the footer."""
        return not (action == "switch_mode" and bool(parameters) and parameters[0] == self.current_mode)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            screens = {name: [*mode.BINDINGS, *mode.HELP_KEYS] for name, mode in self.MODES.items()}
            self.push_screen(HelpScreen(self.BINDINGS, screens))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Train", "Start, follow and stop training runs", lambda: self.switch_mode("train")
        )
        yield SystemCommand("Sample", "Generate digits from a checkpoint", lambda: self.switch_mode("sample"))
        yield SystemCommand(
            "Evaluate",
            f"{METRICS.capitalize()} of samples",
            lambda: self.switch_mode("evaluate"),
        )
        yield SystemCommand("Help", "Every key of the app", self.action_help)
        if isinstance(screen, AppScreen):
            yield from screen.commands()

    def open_in_sample(self, checkpoint: Path) -> None:
        """Switch to the Sample screen with ``checkpoint`` selected (used by the Train screen)."""
        self.switch_mode("sample")
        sample = self.screen
        if isinstance(sample, SampleScreen):
            sample.use_checkpoint(checkpoint)
