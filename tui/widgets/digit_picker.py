"""The row picker of the Sample screen: the model's classes and null, toggled with their keys or a click."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.reactive import reactive
from textual.widget import Widget

from tui.defaults import NULL_NAME

NULL_KEY = "n"


class DigitPicker(Widget, can_focus=True):
    """Shows ``0 1 … 9 null`` (as many classes as the model has) with the chosen ones highlighted."""

    digits: reactive[frozenset[int]] = reactive(frozenset(range(10)))
    null: reactive[bool] = reactive(False)
    num_classes: reactive[int] = reactive(10)

    def __init__(self, num_classes: int = 10, id: str | None = None) -> None:
        super().__init__(id=id)
        self.set_classes(num_classes)

    def set_classes(self, num_classes: int) -> None:
        """Offer ``num_classes`` classes; a changed count selects them all again."""
        if num_classes != self.num_classes or not self.digits:
            self.num_classes = num_classes
            self.digits = frozenset(range(num_classes))

    def choose(self, digits: list[int], null: bool) -> None:
        """Select exactly ``digits`` (those the model has) and null or not."""
        self.digits = frozenset(d for d in digits if 0 <= d < self.num_classes)
        self.null = null

    def toggle(self, digit: int) -> None:
        if 0 <= digit < self.num_classes:
            self.digits = self.digits ^ {digit}

    def toggle_null(self) -> None:
        self.null = not self.null

    def labels(self) -> list[int]:
        """The chosen labels in display order: classes, then null (label ``num_classes``)."""
        return sorted(self.digits) + ([self.num_classes] if self.null else [])

    def _names(self) -> list[tuple[int, str]]:
        return [(label, NULL_NAME if label == self.num_classes else str(label))
                for label in range(self.num_classes + 1)]  # fmt: skip

    def label_at(self, x: int) -> int | None:
        """The label drawn at column ``x`` (each name is followed by one space), if any."""
        start = 0
        for label, name in self._names():
            if start <= x < start + len(name):
                return label
            start += len(name) + 1
        return None

    def on_click(self, event: events.Click) -> None:
        label = self.label_at(event.x)
        if label == self.num_classes:
            self.toggle_null()
        elif label is not None:
            self.toggle(label)

    def render(self) -> Text:
        text = Text()
        for label, name in self._names():
            chosen = self.null if label == self.num_classes else label in self.digits
            text.append(name, style="bold reverse" if chosen else "dim")
            text.append(" ")
        return text
