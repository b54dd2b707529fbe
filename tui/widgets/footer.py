"""A footer that drops keys rather than cutting them.

Textual's Footer lays its keys out in one line and docks the command palette's key on the right,
over whatever is there: at 60 columns the keys run under it and their tail shows after it
("^p paletteH"). :class:`FittedFooter` hides the keys that do not fit, least needed first, so
every key shown is whole. Nothing is lost: the help screen and the palette list every key.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

KEPT_LAST = ("help", "quit")
"""Actions whose keys go last: how to find everything else, and how to leave."""


def drop_rank(action: str) -> int:
    """Which keys go first when there is no room: the screen switches (the palette has them), then the
    screen's own keys, then help and quit."""
    if action.startswith("switch_mode"):
        return 0
    return 2 if action.removeprefix("app.") in KEPT_LAST else 1


def key_width(key: FooterKey) -> int:
    """Cells of a compact key as FooterKey renders it ("^g Start"), and the margin after it."""
    text = key.key_display + (f" {key.description}" if key.description else "")
    return cell_len(text) + 1


def keys_to_hide(keys: list[FooterKey], room: int) -> set[FooterKey]:
    """The keys to hide so that the rest fit ``room`` cells: lowest rank first, rightmost first."""
    used = sum(key_width(key) for key in keys)
    hidden: set[FooterKey] = set()
    order = sorted(range(len(keys)), key=lambda i: (drop_rank(keys[i].action), -i))
    for i in order:
        if used <= room:
            break
        hidden.add(keys[i])
        used -= key_width(keys[i])
    return hidden


class FittedFooter(Footer):
    """The compact Footer, showing only whole keys (see the module's docstring)."""

    def __init__(self) -> None:
        super().__init__(compact=True)

    def compose(self) -> ComposeResult:
        """Textual's keys in its order, except help and quit, which go last (before the palette's):
        always in the same place, whatever screen is shown."""
        widgets = list(super().compose())
        last = lambda w: isinstance(w, FooterKey) and "-command-palette" not in w.classes and (  # noqa: E731
            drop_rank(w.action) == 2
        )
        palette = lambda w: isinstance(w, FooterKey) and "-command-palette" in w.classes  # noqa: E731
        yield from sorted(widgets, key=lambda w: (palette(w), last(w)))

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    async def recompose(self) -> None:
        """The footer makes its keys anew whenever the bindings change (focus moves, a screen opens)."""
        await super().recompose()
        self._fit()

    def _fit(self) -> None:
        keys = [key for key in self.query_children(FooterKey) if "-command-palette" not in key.classes]
        palette = [key for key in self.query_children(FooterKey) if "-command-palette" in key.classes]
        # The palette's key: its text, the bar left of it and its margin, which shows what is under it.
        room = self.size.width - sum(key_width(key) + 1 for key in palette)
        hidden = keys_to_hide(keys, room)
        for key in keys:
            key.display = key not in hidden
