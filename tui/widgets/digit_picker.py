"""The row picker of the Sample screen: digits 0-9 and null, toggled with their keys."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

NULL_KEY = "n"


class DigitPicker(Widget, can_focus=True):
    """Shows ``0 1 … 9 ∅`` with the chosen ones highlighted. ``selected`` holds labels, ∅ = 10."""

    selected: reactive[frozenset[int]] = reactive(frozenset(range(10)))

    def __init__(self, num_classes: int = 10, id: str | None = None) -> None:
        super().__init__(id=id)
        self.num_classes = num_classes

    def toggle(self, label: int) -> None:
        self.selected = self.selected ^ {label}

    def labels(self) -> list[int]:
        """The chosen labels in display order: digits, then null."""
        return sorted(self.selected)

    def render(self) -> Text:
        text = Text()
        for label in range(self.num_classes + 1):
            name = "∅" if label == self.num_classes else str(label)
            text.append(name, style="bold reverse" if label in self.selected else "dim")
            text.append(" ")
        return text
