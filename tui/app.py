"""The cfg-tui terminal app: a Train screen and a Sample screen over ``core`` and run directories."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from core.assets import BUNDLED_MODEL
from core.runs import default_runs_folder
from tui.screens.evaluate import EvaluateScreen
from tui.screens.help import HelpScreen
from tui.screens.sample import SampleScreen
from tui.screens.train import TrainScreen


class CfgTuiApp(App[None]):
    """Train on the left of your SSH session, sample on the right; every action has a key."""

    TITLE = "cfg-tui"
    CSS_PATH = "cfg_tui.tcss"
    MODES = {"train": TrainScreen, "sample": SampleScreen, "evaluate": EvaluateScreen}
    DEFAULT_MODE = "sample"
    BINDINGS = [
        Binding("ctrl+t", "switch_mode('train')", "Train", priority=True),
        Binding("ctrl+s", "switch_mode('sample')", "Sample", priority=True),
        Binding("ctrl+n", "switch_mode('evaluate')", "Eval", priority=True),
        Binding("f1", "help", "Help"),
        Binding("question_mark", "help", "Help", show=False),
        # Not in the footer, to leave room at 80 columns; the help screen lists it.
        Binding("ctrl+q", "quit", "Quit", priority=True, show=False),
    ]

    def __init__(
        self, runs_folder: Path | None = None, checkpoint: Path | None = None, data_root: Path | None = None
    ) -> None:
        super().__init__()
        self.runs_folder = runs_folder or default_runs_folder()
        self.checkpoint = checkpoint or BUNDLED_MODEL
        self.data_root = data_root

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the key of the screen already shown (it would do nothing), leaving room in the footer."""
        return not (action == "switch_mode" and bool(parameters) and parameters[0] == self.current_mode)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Train", "Start, follow and stop training runs", lambda: self.switch_mode("train")
        )
        yield SystemCommand("Sample", "Generate digits from a checkpoint", lambda: self.switch_mode("sample"))
        yield SystemCommand(
            "Evaluate",
            "Accuracy, Fréchet distance, diversity of samples",
            lambda: self.switch_mode("evaluate"),
        )
        yield SystemCommand("Help", "Every key of the app", self.action_help)
        yield from getattr(screen, "commands", lambda: ())()

    def open_in_sample(self, checkpoint: Path) -> None:
        """Switch to the Sample screen with ``checkpoint`` selected (used by the Train screen)."""
        self.checkpoint = checkpoint
        self.switch_mode("sample")
        sample = self.screen
        if isinstance(sample, SampleScreen):
            sample.use_checkpoint(checkpoint)
