"""The help screen (``?`` / F1): every key of the app and of each screen, made from their bindings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.keys import format_key
from textual.screen import ModalScreen
from textual.widgets import Markdown

INTRO = """\
# cfg-tui

Train a class-conditional generator of MNIST digits (flow matching, classifier-free
guidance, the lab's U-Net) and sample from it. Everything here is also a command:
`cfg-tui train`, `cfg-tui sample`, `cfg-tui eval`, `cfg-tui runs`.
"""
EVERYWHERE = (
    ("ctrl+p", "command palette: every action by name"),
    ("tab / shift+tab", "next / previous field"),
)
"""Keys that Textual itself binds, which the app's bindings do not list."""
KEY_NAMES = {"enter": "enter"}
"""Where the help says a key differently from Textual's footer (its ⏎ is easily missed in a table)."""
CLOSE = Binding("escape,f1,q,question_mark", "dismiss", "Close")
"""The help's own keys; its first line names them (a user could not find how to close it)."""


def _key(binding: Binding) -> str:
    """A key as the user reads it: ``ctrl+g``, ``?``, ``+``, ``esc``, ``pgdn`` (not ``question_mark``)."""
    if binding.key_display:
        return binding.key_display
    modifiers, key = binding.parse_key()
    return "+".join([*modifiers, KEY_NAMES.get(key) or format_key(key)])


def key_rows(bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
    """(keys, what they do) per action, in binding order. Bindings that do the same (one action,
    or one description, as the digit keys) share a row: ``f1, ?`` or ``0 … 9``."""
    rows: dict[str, list[str]] = {}
    for binding in Binding.make_bindings(bindings):
        if binding.action == "command_palette":
            continue
        what = binding.tooltip or binding.description
        rows.setdefault(what, []).append(_key(binding))
    return [(keys[0] if len(keys) == 1 else _join(keys), what) for what, keys in rows.items()]


def close_line() -> str:
    """The help's title: the keys that close it, from its binding (so it cannot drift from them)."""
    *keys, last = (_key(binding) for binding in Binding.make_bindings([CLOSE]))
    return f"Help · {', '.join(keys)} or {last} closes it"


def _join(keys: list[str]) -> str:
    return f"{keys[0]} … {keys[-1]}" if len(keys) > 3 else ", ".join(keys)


def _table(title: str, rows: Iterable[tuple[str, str]]) -> str:
    lines = [f"## {title}", "| key | action |", "|---|---|"]
    lines += [f"| `{keys}` | {what} |" for keys, what in rows]
    return "\n".join(lines) + "\n"


def help_markdown(app_bindings: Iterable[BindingType], screens: Mapping[str, Iterable[BindingType]]) -> str:
    parts = [INTRO, _table("Everywhere", [*key_rows(app_bindings), *EVERYWHERE])]
    parts += [_table(name.capitalize(), key_rows(bindings)) for name, bindings in screens.items()]
    return "\n".join(parts)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [CLOSE]

    def __init__(
        self, app_bindings: Iterable[BindingType], screens: Mapping[str, Iterable[BindingType]]
    ) -> None:
        super().__init__()
        self.text = help_markdown(app_bindings, screens)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help") as box:
            box.border_title = close_line()
            yield Markdown(self.text)
