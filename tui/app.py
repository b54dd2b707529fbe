"""The cfg-tui terminal app: Sample, Train and Evaluate screens over ``core`` and run directories.

The screens import torch (seconds); this module does not, so the app paints at once (a start screen)
and imports them in a worker, then shows the Sample screen.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from importlib import import_module
from pathlib import Path

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from tui.screens.base import AppScreen
from tui.screens.help import HelpScreen
from tui.screens.start import StartScreen
from tui.settings import AppSettings

METRICS = "accuracy, Fréchet distance, diversity"
TRAINING_GOES_ON = "training goes on in its own process"
SCREENS = {
    "sample": ("tui.screens.sample", "SampleScreen"),
    "train": ("tui.screens.train", "TrainScreen"),
    "evaluate": ("tui.screens.evaluate", "EvaluateScreen"),
}
"""The app's modes: module and class of each screen, imported once torch may be."""


def slow_imports_pending() -> bool:
    """Is importing the screens slow (torch not imported yet)? Else they are imported at once."""
    return "torch" not in sys.modules


def screen_classes() -> dict[str, type[AppScreen]]:
    return {mode: getattr(import_module(module), name) for mode, (module, name) in SCREENS.items()}


class CfgTuiApp(App[None]):
    """Sample from a model, train one and watch it, measure it; every action has a key."""

    TITLE = "cfg-tui"
    CSS_PATH = "cfg_tui.tcss"
    # The tooltips are the help screen's words (tui/screens/help.py makes it from the bindings).
    BINDINGS = [
        Binding("ctrl+t", "switch_mode('train')", "Train", priority=True, tooltip="Train screen"),
        Binding("ctrl+s", "switch_mode('sample')", "Sample", priority=True, tooltip="Sample screen"),
        Binding("ctrl+n", "switch_mode('evaluate')", "Eval", priority=True, tooltip=f"Evaluate: {METRICS}"),
        Binding("f1", "help", "Help", tooltip="this help"),
        Binding("question_mark", "help", "Help", show=False, tooltip="this help"),
        Binding("ctrl+q", "quit", "Quit", priority=True, tooltip=f"quit ({TRAINING_GOES_ON})"),
    ]  # fmt: skip

    def __init__(self, settings: AppSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or AppSettings()
        self.screen_types: dict[str, type[AppScreen]] = {}

    def get_default_screen(self) -> Screen:
        return StartScreen()

    def on_mount(self) -> None:
        if slow_imports_pending():
            self.run_worker(screen_classes, name="Loading", thread=True, exit_on_error=False)
        else:  # nothing slow left to import (tests, or a second app)
            self._install_screens(screen_classes())

    @on(Worker.StateChanged)
    def _loaded(self, event: Worker.StateChanged) -> None:
        if event.worker.name != "Loading":
            return
        if event.state is WorkerState.SUCCESS:
            self._install_screens(event.worker.result)
        elif event.state is WorkerState.ERROR and isinstance(self.screen, StartScreen):
            self.screen.failed(f"{type(event.worker.error).__name__}: {event.worker.error}")

    def _install_screens(self, screens: dict[str, type[AppScreen]]) -> None:
        self.screen_types = screens
        for mode, screen in screens.items():
            self.add_mode(mode, screen)
        self.switch_mode("sample")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the key of the screen already shown (it would do nothing), leaving room in the
        footer, and the screens' keys until they are loaded."""
        if action == "switch_mode" and parameters:
            return parameters[0] in self.screen_types and parameters[0] != self.current_mode
        return True

    async def action_quit(self) -> None:
        """Say so at once: a generation in progress ends at its next step, which can take a moment."""
        self.screen.sub_title = "quitting…"
        self.notify("quitting…", timeout=30)
        for mode in self.screen_types:
            for screen in self.get_screen_stack(mode) if mode in self._screen_stacks else []:
                if isinstance(screen, AppScreen):
                    screen.before_quit()
        for worker in self.workers:
            worker.cancel()
        self.set_timer(0.1, self.exit)  # a frame to show it

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            screens = {name: [*mode.BINDINGS, *mode.HELP_KEYS] for name, mode in self.screen_types.items()}
            self.push_screen(HelpScreen(self.BINDINGS, screens))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if not self.screen_types:
            return
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
        from tui.screens.sample import SampleScreen  # loaded by now: it is the first screen

        self.switch_mode("sample")
        if isinstance(self.screen, SampleScreen):
            self.screen.use_checkpoint(checkpoint)

    def follow_run(self, path: Path) -> None:
        """Switch to the Train screen following the run at ``path`` (the Sample screen's f6)."""
        from core.runs import RunDir
        from tui.screens.train import TrainScreen  # loaded by now: the screens are installed

        # The first time, the Train screen is made by the switch: follow once it is mounted (its
        # own mount follows the newest running run, which this then replaces).
        mounted = self.switch_mode("train")

        async def follow() -> None:
            await mounted
            for screen in self.get_screen_stack("train"):
                if isinstance(screen, TrainScreen):
                    screen.follow(RunDir(path))

        self.call_later(follow)
